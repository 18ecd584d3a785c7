"""Where the CPU work of a run executes: this machine's process pool, or a Ray cluster.

Both take the same function and items and yield ``(item, result)`` in completion order, or
``(item, Crashed(reason))`` for an item whose worker died, so the stages above them (feature
extraction, crop cutting) and their outputs are the same whichever runs them.  Results are
written by the workers into the output folder (sidecars, crops), so on a cluster that folder
must be on a filesystem every node sees; the resume rule is the same (sidecar provenance).

Ray (``executor=ray``): each item is one task of ``num_cpus`` CPUs, at most ``max_in_flight``
submitted at once (a 200k-track plan never holds 200k futures), no automatic retry (a task
that kills its worker is reported once, like the local pool's culprit, and a re-run finishes
it).  ``address``: null starts a local cluster in this process, ``auto`` joins the running
one, ``ray://host:10001`` a remote one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sat_mir.errors import ConfigError, MissingExtraError
from sat_mir.run.pool import Crashed, run_pool

__all__ = ["EXECUTORS", "ExecutorSettings", "execute"]

log = logging.getLogger("sat_mir.run")

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutorSettings:
    """Hydra group ``executor`` (``conf/executor/``)."""

    kind: str = "local"
    address: str | None = None  # ray: null = a local cluster, auto, or ray://host:port
    num_cpus: float = 1.0  # ray: CPUs per task
    max_in_flight: int | None = None  # ray: tasks submitted at once (null: twice the cluster's CPUs)

    def __post_init__(self):
        if self.kind not in EXECUTORS:
            raise ConfigError(f"executor.kind must be one of {list(EXECUTORS)}, got {self.kind!r}")
        if not self.num_cpus > 0 or (self.max_in_flight is not None and self.max_in_flight < 1):
            raise ConfigError("executor.num_cpus must be > 0 and executor.max_in_flight >= 1 or null")


LOCAL = ExecutorSettings()


def execute(fn: Callable[[T], R], items: Sequence[T], jobs: int,
            settings: ExecutorSettings = LOCAL) -> Iterator[tuple[T, R | Crashed]]:
    """``(item, fn(item))`` for every item, in completion order (``jobs``: local workers)."""
    if settings.kind == "ray":
        yield from _on_ray(fn, list(items), settings)
    else:
        yield from run_pool(fn, items, jobs)


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingExtraError("executor=ray needs Ray: pip install 'sat-mir[ray]'") from None
    return ray


def connect(settings: ExecutorSettings):
    """The Ray module, connected to the cluster ``settings.address`` names (once per process)."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=settings.address, include_dashboard=False, log_to_driver=True,
                 logging_level=logging.WARNING)
    return ray


def _call(fn: Callable[[T], R], item: T) -> R:
    return fn(item)


def _on_ray(fn: Callable[[T], R], items: list[T], settings: ExecutorSettings) -> Iterator[tuple[T, R | Crashed]]:
    if not items:
        return
    ray = connect(settings)
    remote = ray.remote(num_cpus=settings.num_cpus, max_retries=0)(_call)
    fn_ref = ray.put(fn)  # serialised once, not with every task
    limit = settings.max_in_flight or max(2, int(2 * ray.cluster_resources().get("CPU", 1) / settings.num_cpus))
    pending: dict = {}
    queue = iter(items)
    for item in queue:
        pending[remote.remote(fn_ref, item)] = item
        if len(pending) >= limit:
            break
    while pending:
        (done,), _ = ray.wait(list(pending), num_returns=1)
        item = pending.pop(done)
        try:
            yield item, ray.get(done)
        except ray.exceptions.RayError as exc:  # the task's worker or node died: this item only
            yield item, Crashed(f"the Ray worker died ({type(exc).__name__})")
        nxt = next(queue, None)
        if nxt is not None:
            pending[remote.remote(fn_ref, nxt)] = nxt
