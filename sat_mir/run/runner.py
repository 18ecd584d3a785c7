"""Plan and run extraction over a library with a process pool, a progress bar and a summary."""

from __future__ import annotations

import functools
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from sat_mir.audio.context import SIGNALS_MB
from sat_mir.catalog import Track
from sat_mir.errors import EXIT_ITEMS_FAILED, EXIT_OK, EXIT_UNAVAILABLE, SatMirError, worst_exit
from sat_mir.features.registry import Extractor
from sat_mir.run.jit import prepare_jit_cache
from sat_mir.run.executor import LOCAL, ExecutorSettings, execute, execute_batches
from sat_mir.run.pool import Crashed
from sat_mir.run.worker import (
    TrackOutcome,
    TrackTask,
    extractor_inputs,
    process_batch,
    process_track,
    record_crash,
    track_label,
)
from sat_mir.store.dataset import item_values
from sat_mir.store.sidecar import read_sidecar, records, sidecar_path, stat_matches

__all__ = ["RunSummary", "plan_tracks", "run_extraction"]

log = logging.getLogger("sat_mir.run")

@dataclass
class RunSummary:
    tracks: int = 0
    done: int = 0  # extractor runs that produced values
    skipped: int = 0  # extractor runs already current
    failed: int = 0  # extractor runs that recorded an error
    failed_tracks: dict[str, str] = field(default_factory=dict)  # mix file → reason
    unavailable: dict[str, str] = field(default_factory=dict)  # model extractor → why it could not run
    flagged: int = 0
    seconds: float = 0.0
    unit: str = "track"  # what the items are ("track" or "crop"), for the summary line

    @property
    def exit_code(self) -> int:
        return worst_exit(EXIT_ITEMS_FAILED if self.failed else EXIT_OK,
                          EXIT_UNAVAILABLE if self.unavailable else EXIT_OK)

    def add(self, outcome: TrackOutcome) -> None:
        self.done += len(outcome.done)
        self.skipped += len(outcome.skipped)
        self.failed += len(outcome.failed)  # an extractor that could not run at all is in `unavailable`
        self.flagged += len(outcome.flags)
        if outcome.failed:
            before = self.failed_tracks.get(outcome.label)
            line = _one_line(outcome.failed)
            self.failed_tracks[outcome.label] = f"{before}; {line}" if before else line

    def line(self) -> str:
        text = (
            f"{self.tracks} {self.unit}s: {self.done} extractor runs done, {self.skipped} skipped (already current), "
            f"{self.failed} failed"
        )
        if self.failed_tracks:
            text += f" on {len(self.failed_tracks)} {self.unit}(s)"
        if self.unavailable:
            text += f"; not run (see above): {', '.join(sorted(self.unavailable))}"
        if self.flagged:
            text += f"; {self.flagged} value(s) flagged out of range (see provenance flags)"
        return text + f" in {self.seconds:.1f} s"


def plan_tracks(
    tracks: Sequence[Track], extractors: Sequence[Extractor], output: Path, *, overwrite: bool = False
) -> tuple[list[Track], int]:
    """Split tracks into those with pending work and a count of extractor runs already current.

    Cheap: reads each sidecar and ``stat``s the sources; files are hashed (to see
    whether a touched file really changed) only in the workers.
    """
    if overwrite:
        return list(tracks), 0
    todo: list[Track] = []
    current = 0
    for track in tracks:
        try:
            sidecar = read_sidecar(sidecar_path(output, track.id))
        except SatMirError:
            todo.append(track)  # the worker reports the broken sidecar
            continue
        known = sidecar["track"].get("inputs") or {}
        ok = stat_matches(track.sources, known)
        recs = records(sidecar)
        hashes = {s: (v or {}).get("sha256") for s, v in known.items()}
        measured = item_values(sidecar)
        n_current = 0
        for ex in extractors:
            rec = recs.get(ex.name)
            inputs = extractor_inputs(ex, track, hashes, measured)
            if ok and rec and rec.is_current(version=ex.version, config_hash=ex.config_hash, inputs=inputs):
                n_current += 1
        if n_current == len(extractors):
            current += n_current
        else:
            todo.append(track)
    return todo, current


def run_extraction(
    tracks: Sequence[Track],
    extractors: Sequence[Extractor],
    *,
    root: Path,
    output: Path,
    jobs: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    batch_size: int = 8,
    unit: str = "track",
    executor: ExecutorSettings = LOCAL,
    signals_mb: float | None = SIGNALS_MB,
) -> RunSummary:
    """Run ``extractors`` on ``tracks``; results go to sidecars under ``output``.

    CPU extractors run first, in a pool of ``jobs`` worker processes (or as tasks on a Ray
    cluster: ``executor``, :mod:`sat_mir.run.executor`).  Model extractors
    (``device == "model"``) run afterwards in this process (or on Ray actors), ``batch_size``
    items at a time, so each model is loaded once and sees batches (and can use the values
    the CPU extractors just measured).  Their weights are checked once (``preflight``): a
    model that cannot load is reported in one log line and recorded on every item, not
    computed.  ``signals_mb`` bounds what one track's decoded signals and their shared
    analysis hold (:class:`~sat_mir.audio.context.TrackContext`).

    Failures are isolated per track and extractor: each failed file gets one log
    line (its path and the reason) and an error in its provenance; the run goes on.
    """
    t0 = time.perf_counter()
    summary = RunSummary(tracks=len(tracks), unit=unit)
    todo, summary.skipped = plan_tracks(tracks, extractors, output, overwrite=overwrite)
    run_id = uuid.uuid4().hex
    cpu = tuple(ex for ex in extractors if ex.device != "model")
    models = tuple(ex for ex in extractors if ex.device == "model")
    if cpu:
        tasks = [TrackTask(t, root, output, cpu, overwrite, signals_mb, run_id) for t in todo]
        n_jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks) or 1))
        with tqdm(total=len(tasks), unit=unit, desc="extract", disable=not progress or not tasks,
                  dynamic_ncols=True) as bar:
            for outcome in _execute(tasks, n_jobs, executor):
                _report(summary, outcome)
                bar.update(1)
    if models and todo:
        summary.unavailable = _preflight(models)
        tasks = [TrackTask(t, root, output, models, overwrite, signals_mb, run_id) for t in todo]
        batches = [tasks[i:i + max(1, batch_size)] for i in range(0, len(tasks), max(1, batch_size))]
        work = functools.partial(process_batch, extractors=models, unavailable=summary.unavailable)
        with tqdm(total=len(tasks), unit=unit, desc="models", disable=not progress, dynamic_ncols=True) as bar:
            for batch, outcomes in execute_batches(work, batches, executor):
                if isinstance(outcomes, Crashed):
                    outcomes = [_record_crash(task, outcomes.reason) for task in batch]
                for outcome in outcomes:
                    _report(summary, outcome)
                bar.update(len(batch))
    summary.seconds = time.perf_counter() - t0
    return summary


def _preflight(models: Sequence[Extractor]) -> dict[str, str]:
    """Check each model extractor's weights once; one log line for each that cannot run."""
    unavailable = {}
    for ex in models:
        try:
            ex.preflight()
        except SatMirError as exc:
            unavailable[ex.name] = str(exc)
            log.error("extractor %s cannot run, so it is skipped on every item this run: %s", ex.name, exc)
    return unavailable


def _report(summary: RunSummary, outcome: TrackOutcome) -> None:
    summary.add(outcome)
    if outcome.failed:
        log.error("FAILED %s: %s", outcome.label, _one_line(outcome.failed))
    for key, msg in outcome.flags.items():
        log.warning("flagged %s: %s = %s", outcome.label, key, msg)


def _execute(tasks: list[TrackTask], jobs: int, executor: ExecutorSettings) -> Iterator[TrackOutcome]:
    if not tasks:
        return
    prepare_jit_cache(list(dict.fromkeys(ex.name for ex in tasks[0].extractors)))
    for task, outcome in execute(_guarded, tasks, jobs, executor):
        yield _record_crash(task, outcome.reason) if isinstance(outcome, Crashed) else outcome


def _record_crash(task: TrackTask, reason: str) -> TrackOutcome:
    try:
        return record_crash(task, reason)
    except Exception as exc:  # noqa: BLE001 - the sidecar could not say it; the log line still does
        return _crashed(task, f"{reason}; recording that failed too: {exc}")


def _guarded(task: TrackTask) -> TrackOutcome:
    try:
        return process_track(task)
    except Exception as exc:  # noqa: BLE001 - a bug must not end the run for every other track
        return _crashed(task, f"{type(exc).__name__}: {exc}")


def _crashed(task: TrackTask, reason: str) -> TrackOutcome:
    return TrackOutcome(task.track.id, track_label(task), failed={ex.name: reason for ex in task.extractors})


def _one_line(failed: dict[str, str]) -> str:
    """One reason per distinct message: a file that cannot be decoded fails every
    extractor with the same message, and that is said once."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in failed.items():
        by_reason.setdefault(reason, []).append(name)
    return "; ".join(f"{reason} [{', '.join(names)}]" for reason, names in by_reason.items())
