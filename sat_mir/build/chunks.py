"""Materialise items as audio files at the model's rate and channel count.

A chunk's source track is decoded and resampled once, then all of its chunks are cut
from it; a crop (an item with its own ``source`` file) is decoded whole and resampled.
Files are written atomically and skipped when present, so a killed build resumes
without redoing finished tracks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sat_mir.audio.channels import fit_channels
from sat_mir.audio.decode import load_audio
from sat_mir.audio.write import write_audio
from sat_mir.build.corpus import BuildItem
from sat_mir.audio.headroom import fit_full_scale
from sat_mir.errors import AudioRangeError, AudioReadError

__all__ = ["ChunkSummary", "write_item_audio"]

log = logging.getLogger("sat_mir.build")

_FULL_SCALE = 1.0 - 2.0**-22


@dataclass
class ChunkSummary:
    written: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # item id → reason
    left_out: dict[str, str] = field(default_factory=dict)  # item id → reason (peak_policy=reject)
    gains: dict[str, float] = field(default_factory=dict)  # item id → gain applied, dB (peak_policy=normalize)


def write_item_audio(
    items: Sequence[BuildItem], folder: Path, *, sample_rate: int, channels: int, ext: str = "flac",
    peak_policy: str = "normalize", progress: bool = True,
) -> ChunkSummary:
    """Write ``folder/<item id>.<ext>`` for every item; return what happened.

    A source over full scale follows ``peak_policy`` (:mod:`sat_mir.audio.headroom`): a
    track's chunks share one gain, a crop has its own.  Every written file is read back and
    must hold no sample at full scale that the policy did not put there.
    """
    folder.mkdir(parents=True, exist_ok=True)
    summary = ChunkSummary()
    by_track = [(k, list(g)) for k, g in groupby(items, key=lambda it: it.track.id)]
    for _, group in tqdm(by_track, desc="audio items", unit="track", disable=not progress):
        todo = [it for it in group if not _current(folder / f"{it.id}.{ext}", it.source or it.track.mix)]
        summary.skipped += len(group) - len(todo)
        if not todo:
            continue
        chunks = [it for it in todo if it.source is None]
        if chunks:
            try:
                audio = load_audio(chunks[0].track.mix, sr=sample_rate)
            except AudioReadError as exc:
                for it in chunks:
                    summary.failed[it.id] = exc.reason
                log.error("FAILED %s: %s", chunks[0].track.mix, exc.reason)
            else:
                x = _headroom(fit_channels(audio.samples, channels), chunks[0].track.mix, chunks, peak_policy,
                              summary)
                for it in chunks if x is not None else ():
                    start = int(round(it.start_s * sample_rate))
                    stop = start + int(round(it.duration_s * sample_rate))
                    _write_checked(folder / f"{it.id}.{ext}", x[:, start:stop], sample_rate, peak_policy, it, summary)
        for it in (it for it in todo if it.source is not None):  # crops: each its own file, whole
            try:
                audio = load_audio(it.source, sr=sample_rate)
            except AudioReadError as exc:
                summary.failed[it.id] = exc.reason
                log.error("FAILED %s: %s", it.source, exc.reason)
                continue
            x = _headroom(fit_channels(audio.samples, channels), it.source, [it], peak_policy, summary)
            if x is not None:
                _write_checked(folder / f"{it.id}.{ext}", x, sample_rate, peak_policy, it, summary)
    return summary


def _headroom(x: np.ndarray, source: Path, items: list[BuildItem], policy: str,
              summary: ChunkSummary) -> np.ndarray | None:
    try:
        fitted, headroom = fit_full_scale({"x": x}, policy)
    except AudioRangeError as exc:
        for it in items:
            summary.left_out[it.id] = str(exc)
        log.warning("left out %d item(s) of %s: %s", len(items), source, exc)
        return None
    if headroom.changed:
        log.warning("%s: %s (peak_policy=%s)", source, headroom.describe(), policy)
    for it in items:
        summary.gains[it.id] = headroom.gain_db
    return fitted["x"]


def _write_checked(path: Path, x: np.ndarray, sr: int, policy: str, it: BuildItem, summary: ChunkSummary) -> None:
    """Write an item and read it back: clipping the policy did not ask for fails the item."""
    # within 2 LSB of 24-bit full scale: PCM's largest positive value is 1 - 2**-23
    before = int(np.count_nonzero(np.abs(x) >= _FULL_SCALE))  # a source's own clipping is not ours
    write_audio(path, x, sr=sr)
    back = load_audio(path).samples
    after = int(np.count_nonzero(np.abs(back) >= _FULL_SCALE))
    if after > before and policy != "clip":
        path.unlink(missing_ok=True)
        summary.failed[it.id] = f"writing {path.name} put {after - before} samples at full scale"
        log.error("FAILED item %s: %s", it.id, summary.failed[it.id])
        return
    summary.written += 1


def _current(target: Path, source: Path) -> bool:
    """An item file is reused only while it is newer than what it was cut from: a re-cut crop
    keeps its id (``<track>_000``), so existence alone would keep the old audio."""
    try:
        return target.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except FileNotFoundError:
        return False
