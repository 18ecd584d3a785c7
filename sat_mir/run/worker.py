"""Process one track: decode lazily once, run each pending extractor, merge results.

Runs in a worker process (or inline for ``jobs=1``).  Each extractor's result
is merged into the sidecar as soon as it is computed, so a killed run loses at
most the extractor in flight.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sat_mir.audio.context import SIGNALS_MB, TrackContext
from sat_mir.catalog import Track
from sat_mir.errors import AudioReadError, ExtractorError, SatMirError
from sat_mir.features.registry import Extractor, ExtractorResult
from sat_mir.fsutil import atomic_write_bytes, atomic_write_text
from sat_mir.run.allocator import keep_freed_memory
from sat_mir.store.dataset import item_values
from sat_mir.store.sidecar import (
    ExtractorRecord,
    fingerprint_inputs,
    merge_extractor,
    read_sidecar,
    records,
    sidecar_path,
    track_dir,
    update_track,
)

__all__ = ["TrackOutcome", "TrackTask", "extractor_inputs", "extractor_signals", "process_batch", "process_track",
           "release_stems", "track_label"]

log = logging.getLogger("sat_mir.run")

# When the stems are let go, so are the mix's large analysis arrays made with them (its 22.05 kHz
# mono and STFT magnitude: recomputed when a mix-only extractor asks) where they hold more than
# this: a 10-minute track's timbral analysis beside them (153 MB) peaked at 1.5 GB.  A shorter
# track keeps them, as the mix-only extractors read them again: a 3-minute track's 46 MB took
# 0.13 s of its 5 s to make again.  At 15 MB a minute, tracks up to 8 minutes keep them, unless
# the signals already hold more than their bound (signals_mb).
MIX_ANALYSIS_KEPT_MB = 128.0


@dataclass(frozen=True)
class TrackTask:
    track: Track
    root: Path
    output: Path
    extractors: tuple[Extractor, ...]
    overwrite: bool = False
    signals_mb: float | None = SIGNALS_MB  # what the track's signals may hold (TrackContext)
    run_id: str = ""  # the run this task belongs to, written on every record it makes


@dataclass
class TrackOutcome:
    track_id: str
    label: str  # the mix file, relative to the library root: what a user recognises
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # extractor → reason
    flags: dict[str, str] = field(default_factory=dict)  # key → out-of-range message
    unavailable: list[str] = field(default_factory=list)  # model extractors that could not run at all


def extractor_signals(extractor: Extractor, track: Track) -> list[str]:
    """The signals whose files an extractor's values depend on."""
    out = []
    if "mix" in extractor.signals:
        out.append("mix")
    if "stems" in extractor.signals:
        out.extend(s for s in track.sources if s != "mix")
    return out


def track_label(task: TrackTask) -> str:
    return _rel(task.track.mix, task.root)


def _rel(path: str | Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


@dataclass
class _Prepared:
    task: TrackTask
    outcome: TrackOutcome
    path: Path
    fps: dict
    recs: dict[str, ExtractorRecord]
    info: dict
    ctx: TrackContext
    wrote: bool = False
    old_track: dict = field(default_factory=dict)


def _prepare(task: TrackTask) -> _Prepared | TrackOutcome:
    """Read the sidecar and fingerprint the inputs; an outcome with every extractor failed when impossible."""
    track = task.track
    outcome = TrackOutcome(track.id, track_label(task))
    path = sidecar_path(task.output, track.id)
    try:
        sidecar = read_sidecar(path)
        fps = fingerprint_inputs(track.sources, sidecar["track"].get("inputs"))
    except (SatMirError, OSError) as exc:
        reason = str(exc) if isinstance(exc, SatMirError) else f"{exc.filename}: {exc.strerror}"
        outcome.failed = {ex.name: reason for ex in task.extractors}
        return outcome
    known = item_values(sidecar)
    return _Prepared(task, outcome, path, fps, records(sidecar), {**track.to_dict(task.root), "inputs": fps},
                     TrackContext(track.sources, features=known, track_id=track.id, signals_mb=task.signals_mb),
                     old_track=sidecar["track"])


def extractor_inputs(ex: Extractor, track: Track, hashes: dict[str, str], features: dict) -> dict[str, str]:
    """What ``ex``'s values on this item depend on: the sha256 of each file it reads, and, for an
    extractor that reads measured values (:attr:`Extractor.reads_features`), a digest of those."""
    inputs = {sig: hashes.get(sig) for sig in extractor_signals(ex, track)}
    keys = ex.reads_features
    if keys:
        blob = json.dumps({k: features.get(k) for k in keys}, sort_keys=True, default=str)
        inputs["features"] = hashlib.sha1(blob.encode()).hexdigest()[:16]
    return inputs


def _pending(p: _Prepared, ex: Extractor) -> dict[str, str] | None:
    """The input hashes ``ex`` would record on this item, or None when its record is current."""
    inputs = extractor_inputs(ex, p.task.track, {s: v["sha256"] for s, v in p.fps.items()}, p.ctx.features)
    rec = p.recs.get(ex.name)
    if not p.task.overwrite and rec and rec.is_current(version=ex.version, config_hash=ex.config_hash, inputs=inputs):
        return None
    return inputs


def _current(p: _Prepared, ex: Extractor) -> None:
    """``ex``'s record is current: skipped, unless this run wrote it.  That happens when a pool
    worker died and took with it the result of a track another worker had finished, so the
    track is run again (:mod:`sat_mir.run.pool`): its work was done in this run, and the
    summary says so, as an uninterrupted run's would."""
    rec = p.recs[ex.name]
    if p.task.run_id and rec.run_id == p.task.run_id:
        p.outcome.done.append(ex.name)
        p.outcome.flags.update(rec.flags)
    else:
        p.outcome.skipped.append(ex.name)


def _store(p: _Prepared, ex: Extractor, inputs: dict[str, str], result: ExtractorResult | BaseException,
           seconds: float) -> None:
    record, values = _record(ex, result, p.task, inputs, old=p.recs.get(ex.name), seconds=seconds)
    merge_extractor(p.path, extractor=ex.name, record=record, values=values, track=p.info)
    p.ctx.features.update(values)
    p.wrote = True
    if record.error is None:
        p.outcome.done.append(ex.name)
        p.outcome.flags.update(record.flags)
    elif isinstance(result, _Unavailable):
        p.outcome.unavailable.append(ex.name)  # said once per run by the runner, not once per file
    else:
        p.outcome.failed[ex.name] = record.error


def _close(p: _Prepared) -> TrackOutcome:
    if not p.wrote and p.old_track != p.info:
        update_track(p.path, p.info)
    return p.outcome


def process_track(task: TrackTask) -> TrackOutcome:
    """Run the task's extractors on one item, one after the other (CPU extractors, in a worker)."""
    keep_freed_memory()  # once per process: the analysis' large temporaries reuse the heap's pages
    return _each_pending(task, _compute)


def record_crash(task: TrackTask, reason: str) -> TrackOutcome:
    """The worker running ``task`` died: record ``reason`` on each extractor it had not finished
    (those that did finish wrote their values before it died), so the sidecar says what happened
    and the next run retries them."""
    return _each_pending(task, lambda ex, ctx: ExtractorError(reason))


def _compute(ex: Extractor, ctx: TrackContext) -> ExtractorResult | BaseException:
    try:
        return ex.gate(ctx) or ex.compute(ctx)
    except Exception as exc:  # noqa: BLE001 - recorded by _record
        return exc


def run_order(extractors) -> list[Extractor]:
    """The order a worker runs a track's extractors in: those that read stems first (the stems
    are let go after them), then the mix-only ones beside the mix alone, those with a large
    analysis of their own (timbral's) first, before a long track's shared spectrograms of the mix
    are made again (:data:`MIX_ANALYSIS_KEPT_MB`)."""
    return sorted(extractors, key=lambda ex: ("stems" not in ex.signals, not ex.own_analysis))


def _each_pending(task: TrackTask, compute: Callable[[Extractor, TrackContext], ExtractorResult | BaseException],
                  ) -> TrackOutcome:
    p = _prepare(task)
    if isinstance(p, TrackOutcome):
        return p
    order = run_order(task.extractors)
    if compute is _compute:  # (whether one is current is asked again below: earlier values may change it)
        _prepare_stems(p.ctx, [ex for ex in order if "stems" in ex.signals and _pending(p, ex) is not None])
    last_stem_reader = max((i for i, ex in enumerate(order) if "stems" in ex.signals), default=-1)
    for i, ex in enumerate(order):
        inputs = _pending(p, ex)
        if inputs is None:
            _current(p, ex)
        else:
            t0 = time.perf_counter()
            result = compute(ex, p.ctx)
            _store(p, ex, inputs, result, time.perf_counter() - t0)
        if i == last_stem_reader:
            release_stems(p.ctx)
    return _close(p)


def release_stems(ctx: TrackContext) -> None:
    """Let go of the stems once every extractor that reads them has run, and of the mix's large
    analysis made with them on a long track or beyond the signals' bound (:data:`MIX_ANALYSIS_KEPT_MB`)."""
    ctx.release(ctx.stem_names)
    ctx.drop_large(["mix"], beyond=MIX_ANALYSIS_KEPT_MB * 2**20 if ctx.within_bound else 0)


def _prepare_stems(ctx: TrackContext, readers: list[Extractor]) -> None:
    """Stem after stem, let the extractors that read stems measure what they will read of it
    (:meth:`Extractor.prepare`), so each stem is decoded once and a long track's stems need
    not be held together.  A failure here is met again by ``compute``, which records it."""
    for stem in ctx.stem_names if readers else ():
        for ex in readers:
            try:
                ex.prepare(ctx, stem)
            except Exception:  # noqa: BLE001 - compute() reports it
                log.debug("%s could not prepare %s", ex.name, stem, exc_info=True)


def process_batch(tasks: list[TrackTask], extractors: tuple[Extractor, ...],
                  unavailable: dict[str, str] | None = None) -> list[TrackOutcome]:
    """Run model extractors on several items at once: each extractor gets one ``compute_batch``
    call with every item that needs it, so a model sees a batch and is loaded once per process.

    ``unavailable``: extractor → reason (its weights are missing); recorded on every item
    that needs it, without computing.
    """
    unavailable = unavailable or {}
    prepared: list[_Prepared] = []
    outcomes: list[TrackOutcome] = []
    for task in tasks:
        p = _prepare(task)
        if isinstance(p, TrackOutcome):
            outcomes.append(p)
        else:
            prepared.append(p)
    for ex in extractors:
        todo = []
        for p in prepared:
            inputs = _pending(p, ex)
            if inputs is None:
                _current(p, ex)
            else:
                todo.append((p, inputs))
        if not todo:
            continue
        if ex.name in unavailable:
            for p, inputs in todo:
                _store(p, ex, inputs, _Unavailable(unavailable[ex.name]), 0.0)
            continue
        gated = [(p, inputs, ex.gate(p.ctx)) for p, inputs in todo]
        for p, inputs, result in gated:
            if result is not None:
                _store(p, ex, inputs, result, 0.0)
        todo = [(p, inputs) for p, inputs, result in gated if result is None]
        if not todo:
            continue
        t0 = time.perf_counter()
        try:
            results = ex.compute_batch([p.ctx for p, _ in todo])
            if len(results) != len(todo):
                raise RuntimeError(f"{ex.name}.compute_batch returned {len(results)} results for {len(todo)} items")
        except Exception as exc:  # noqa: BLE001 - a failing batch fails its items, not the run
            results = [exc] * len(todo)
        each = (time.perf_counter() - t0) / len(todo)
        for (p, inputs), result in zip(todo, results):
            _store(p, ex, inputs, result, each)
    return outcomes + [_close(p) for p in prepared]


class _Unavailable(SatMirError):
    """An extractor that cannot run at all this run (e.g. missing weights), said once per run."""


def _record(ex: Extractor, result: ExtractorResult | BaseException, task: TrackTask, inputs: dict[str, str],
            old: ExtractorRecord | None, seconds: float) -> tuple[ExtractorRecord, dict]:
    folder = track_dir(task.output, task.track.id)
    error = None
    values: dict = {}
    record = ExtractorRecord(version=ex.version, config_hash=ex.config_hash, inputs=inputs, seconds=round(seconds, 4),
                             run_id=task.run_id)
    try:
        if isinstance(result, BaseException):
            raise result
        record.flags = ex.check(result)
        for name, data in result.artifacts.items():
            (atomic_write_bytes if isinstance(data, bytes) else atomic_write_text)(folder / name, data)
        values, record.absent, record.files = result.values, result.absent, sorted(result.artifacts)
    except AudioReadError as exc:
        # The sidecar and the log line already name the track; name the file only
        # when it is a stem.
        error = exc.reason if Path(exc.path) == task.track.mix else f"{_rel(exc.path, task.root)}: {exc.reason}"
    except SatMirError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - isolate bugs too; the traceback goes to the debug log
        error = f"{type(exc).__name__}: {exc}"
        log.debug("%s on %s:\n%s", ex.name, task.track.rel,
                  "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    record.error = error
    if error is not None and old is not None:
        for name in old.files:  # a failure leaves no stale artefact behind
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
    return record, values
