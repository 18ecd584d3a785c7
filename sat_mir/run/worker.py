"""Process one track: decode lazily once, run each pending extractor, merge results.

Runs in a worker process (or inline for ``jobs=1``).  Each extractor's result
is merged into the sidecar as soon as it is computed, so a killed run loses at
most the extractor in flight.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from sat_mir.audio.context import TrackContext
from sat_mir.catalog import Track
from sat_mir.errors import AudioReadError, SatMirError
from sat_mir.features.registry import Extractor
from sat_mir.fsutil import atomic_write_text
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

__all__ = ["TrackOutcome", "TrackTask", "extractor_signals", "process_track", "track_label"]

log = logging.getLogger("sat_mir.run")


@dataclass(frozen=True)
class TrackTask:
    track: Track
    root: Path
    output: Path
    extractors: tuple[Extractor, ...]
    overwrite: bool = False


@dataclass
class TrackOutcome:
    track_id: str
    label: str  # the mix file, relative to the library root: what a user recognises
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # extractor → reason
    flags: dict[str, str] = field(default_factory=dict)  # key → out-of-range message


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


def process_track(task: TrackTask) -> TrackOutcome:
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
    track_info = {**track.to_dict(task.root), "inputs": fps}
    recs = records(sidecar)
    ctx = TrackContext(track.sources)
    wrote = False
    for ex in task.extractors:
        inputs = {sig: fps[sig]["sha256"] for sig in extractor_signals(ex, track)}
        rec = recs.get(ex.name)
        if not task.overwrite and rec and rec.is_current(version=ex.version, config_hash=ex.config_hash, inputs=inputs):
            outcome.skipped.append(ex.name)
            continue
        record, values = _run_one(ex, ctx, task, inputs, old=rec)
        merge_extractor(path, extractor=ex.name, record=record, values=values, track=track_info)
        wrote = True
        if record.error is None:
            outcome.done.append(ex.name)
            outcome.flags.update(record.flags)
        else:
            outcome.failed[ex.name] = record.error
    if not wrote and sidecar["track"] != track_info:
        update_track(path, track_info)
    return outcome


def _run_one(
    ex: Extractor, ctx: TrackContext, task: TrackTask, inputs: dict[str, str], old: ExtractorRecord | None
) -> tuple[ExtractorRecord, dict]:
    folder = track_dir(task.output, task.track.id)
    t0 = time.perf_counter()
    error = None
    values: dict = {}
    record = ExtractorRecord(version=ex.version, config_hash=ex.config_hash, inputs=inputs, seconds=0.0)
    try:
        result = ex.compute(ctx)
        record.flags = ex.check(result)
        for name, text in result.artifacts.items():
            atomic_write_text(folder / name, text)
        values, record.absent, record.files = result.values, result.absent, sorted(result.artifacts)
    except AudioReadError as exc:
        # The sidecar and the log line already name the track; name the file only
        # when it is a stem.
        error = exc.reason if Path(exc.path) == task.track.mix else f"{_rel(exc.path, task.root)}: {exc.reason}"
    except SatMirError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - isolate bugs too; the traceback goes to the debug log
        error = f"{type(exc).__name__}: {exc}"
        log.debug("%s on %s:\n%s", ex.name, task.track.rel, traceback.format_exc())
    record.seconds = round(time.perf_counter() - t0, 4)
    record.error = error
    if error is not None and old is not None:
        for name in old.files:  # a failure leaves no stale artefact behind
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
    return record, values
