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

The work with models (separation, model extractors, latent encoding: :func:`execute_batches`)
goes to Ray actors, which load each model once and keep it for every batch they take:
``num_gpus`` GPUs per actor (0: CPU actors) and ``model_actors`` of them (null: one per GPU
of the cluster, or one without GPUs; never more than the cluster can place), each given its
next batch as it returns one.  An actor that dies fails the batch it held; Ray restarts it,
and it takes its next batch once it answers again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sat_mir.errors import ConfigError, MissingExtraError
from sat_mir.run.pool import Crashed, run_pool

__all__ = ["EXECUTORS", "ExecutorSettings", "actor_room", "execute", "execute_batches"]

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
    num_gpus: float = 0.0  # ray: GPUs per model actor (0: the model stage's actors use CPUs)
    model_actors: int | None = None  # ray: model actors (null: one per GPU, or one without GPUs)

    def __post_init__(self):
        if self.kind not in EXECUTORS:
            raise ConfigError(f"executor.kind must be one of {list(EXECUTORS)}, got {self.kind!r}")
        if not self.num_cpus > 0 or (self.max_in_flight is not None and self.max_in_flight < 1):
            raise ConfigError("executor.num_cpus must be > 0 and executor.max_in_flight >= 1 or null")
        if self.num_gpus < 0 or (self.model_actors is not None and self.model_actors < 1):
            raise ConfigError("executor.num_gpus must be >= 0 and executor.model_actors >= 1 or null")


LOCAL = ExecutorSettings()


def execute(fn: Callable[[T], R], items: Sequence[T], jobs: int,
            settings: ExecutorSettings = LOCAL) -> Iterator[tuple[T, R | Crashed]]:
    """``(item, fn(item))`` for every item, in completion order (``jobs``: local workers)."""
    if settings.kind == "ray":
        yield from _on_ray(fn, list(items), settings)
    else:
        yield from run_pool(fn, items, jobs)


def execute_batches(fn: Callable[[T], R], batches: Sequence[T],
                    settings: ExecutorSettings = LOCAL) -> Iterator[tuple[T, R | Crashed]]:
    """``(batch, fn(batch))`` for every batch of the model stage: in this process, one after the
    other (local), or on Ray actors that keep their models loaded (see the module's text)."""
    if settings.kind == "ray":
        yield from _on_actors(fn, list(batches), settings)
    else:
        for batch in batches:
            yield batch, fn(batch)


class _Runner:
    """A Ray actor's body: calls ``fn`` on each batch it is given, in one long-lived process,
    so the models ``fn`` loads stay loaded."""

    def __init__(self, fn):
        self.fn = fn

    def run(self, batch):
        return self.fn(batch)

    def ready(self) -> bool:
        """Answers once the actor is up (after a restart): its next batch can be given."""
        return True


def actor_room(ray, settings: ExecutorSettings) -> int:
    """How many model actors the cluster can hold at once (an actor that cannot be placed would
    keep its first batch waiting for ever).

    Raises
    ------
    ConfigError
        Not even one fits.
    """
    resources = ray.cluster_resources()
    room = int(resources.get("CPU", 0.0) // settings.num_cpus)
    if settings.num_gpus > 0:
        room = min(room, int(resources.get("GPU", 0.0) // settings.num_gpus))
    if room < 1:
        raise ConfigError(f"the Ray cluster has no room for one model actor of {settings.num_cpus:g} CPU and "
                          f"{settings.num_gpus:g} GPU (it has {resources.get('CPU', 0):g} CPUs, "
                          f"{resources.get('GPU', 0):g} GPUs): lower executor.num_gpus or executor.num_cpus")
    return room


# An actor that died is restarted by Ray; a batch handed to it before it is back fails at once
# (ActorUnavailableError: Ray's actor tasks run at most once).  So it is asked whether it is back
# (a call that does nothing) every PROBE_PAUSE_S, for at most MAX_PROBES tries, before its next batch.
PROBE_PAUSE_S = 0.5
MAX_PROBES = 240


def _on_actors(fn: Callable[[T], R], batches: list[T], settings: ExecutorSettings
               ) -> Iterator[tuple[T, R | Crashed]]:
    if not batches:
        return
    ray = connect(settings)
    room = actor_room(ray, settings)
    count = min(settings.model_actors or (room if settings.num_gpus > 0 else 1), room)
    actor = ray.remote(num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, max_restarts=-1,
                       max_task_retries=0)(_Runner)
    # fn by value (it is small): a restarted actor must not depend on an object-store copy
    actors = [actor.remote(fn) for _ in range(min(count, len(batches)))]
    queue = iter(batches)
    pending: dict = {}  # call -> (actor, its batch or None for "are you back?", tries of that question)
    resting: list = []  # (actor, when to ask again, tries so far): restarting after a death

    def give(a) -> None:
        batch = next(queue, None)
        if batch is not None:
            pending[a.run.remote(batch)] = (a, batch, 0)

    for a in actors:
        give(a)
    try:
        while pending or resting:
            now = time.monotonic()
            for entry in [r for r in resting if r[1] <= now]:
                resting.remove(entry)
                pending[entry[0].ready.remote()] = (entry[0], None, entry[2] + 1)
            if not pending:
                time.sleep(max(0.0, min(r[1] for r in resting) - time.monotonic()))
                continue
            done, _ = ray.wait(list(pending), num_returns=1, timeout=PROBE_PAUSE_S if resting else None)
            if not done:
                continue
            a, batch, tries = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                if batch is not None:  # the actor died with this batch: the batch only
                    yield batch, Crashed(f"the Ray model actor died ({type(exc).__name__})")
                    pending[a.ready.remote()] = (a, None, 1)
                elif tries < MAX_PROBES:  # not back yet
                    resting.append((a, time.monotonic() + PROBE_PAUSE_S, tries))
                else:
                    log.warning("a Ray model actor did not come back within %.0f s; the other actors "
                                "take its batches", MAX_PROBES * PROBE_PAUSE_S)
                continue
            if batch is not None:
                yield batch, result
            give(a)
        for batch in queue:  # every actor gone for good
            yield batch, Crashed("no Ray model actor came back to take it")
    finally:
        for a in actors:
            ray.kill(a)


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
