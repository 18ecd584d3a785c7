"""Stem separation: Demucs v4 run in process from local weights, and stem writers.

The names below load on first use: the separation stage's bookkeeping (``stage``) is
imported by every run, and a run that separates nothing must not pay for importing torch.
"""

from __future__ import annotations

import importlib

__all__ = [
    "EXTRA_STEMS",
    "STEMS",
    "STEM_FORMATS",
    "DemucsSeparator",
    "WrittenStems",
    "load_separator",
    "write_stems",
]

_WHERE = {
    "EXTRA_STEMS": "demucs_separator", "STEMS": "demucs_separator", "DemucsSeparator": "demucs_separator",
    "load_separator": "demucs_separator", "STEM_FORMATS": "stem_io", "WrittenStems": "stem_io",
    "write_stems": "stem_io",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"sat_mir.separation.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'sat_mir.separation' has no attribute {name!r}")
