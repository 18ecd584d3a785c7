"""A process pool that survives a dead worker and names the item that killed it.

``concurrent.futures`` fails every unfinished future once one worker dies (out of
memory, a segfault in native code), so one bad file would fail the rest of a run.
Here the unfinished items are run again one at a time in a fresh single worker:
the item in flight when that worker dies is the culprit, and only it is reported.
Items that died only beside others (two long tracks at once can run out of memory
where either alone would not) get their result on the second try.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import TypeVar

__all__ = ["DIED", "Crashed", "run_pool"]

log = logging.getLogger("sat_mir.run")

T = TypeVar("T")
R = TypeVar("R")

DIED = "the worker process died (out of memory or a crash in native code)"

# Libraries that start a thread pool per process: with one worker per core,
# letting each also use every core only makes them fight.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class Crashed:
    """In place of a result: the worker died while running the item; ``reason`` says so in words."""

    reason: str = DIED


def run_pool(fn: Callable[[T], R], items: Sequence[T], jobs: int) -> Iterator[tuple[T, R | Crashed]]:
    """Yield ``(item, fn(item))`` in completion order, ``(item, Crashed())`` for an item whose
    worker died.  ``fn`` must be picklable by name (spawned workers import it).

    ``jobs == 1`` runs in this process: nothing to isolate, and no start-up cost.
    """
    items = list(items)
    if not items:
        return
    if jobs <= 1:
        for item in items:
            yield item, fn(item)
        return
    for var in _THREAD_ENV:
        os.environ.setdefault(var, "1")
    unfinished: list[int] = []
    # spawn, not fork: forking a process that holds BLAS/OpenMP/TensorFlow threads can deadlock.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures: dict[Future, int] = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except BrokenProcessPool:
                unfinished.append(futures[fut])
                continue
            yield items[futures[fut]], result
    if unfinished:
        log.warning("a worker process died; running the %d unfinished items again one at a time",
                    len(unfinished))
        yield from _one_at_a_time(fn, [items[i] for i in sorted(unfinished)])


def _one_at_a_time(fn: Callable[[T], R], items: list[T]) -> Iterator[tuple[T, R | Crashed]]:
    """One worker, one item in flight: a death is that item's.  The worker is reused until it dies."""
    pool: ProcessPoolExecutor | None = None
    try:
        for item in items:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
            try:
                yield item, pool.submit(fn, item).result()
            except BrokenProcessPool:
                pool.shutdown(wait=True)
                pool = None
                yield item, Crashed()
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
