"""One loaded copy of each model per process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["ModelCache"]

T = TypeVar("T")


class ModelCache(dict):
    """``key → loaded model``; :meth:`get_or_load` loads a key once, under a lock, and counts
    loads (``loads``), so a run can show that each model came from disk exactly once."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self.loads = 0

    def get_or_load(self, key: Hashable, load: Callable[[], T]) -> T:
        with self._lock:
            if key not in self:
                self[key] = load()
                self.loads += 1
            return self[key]
