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

from tqdm.auto import tqdm

from sat_mir.audio.channels import fit_channels
from sat_mir.audio.decode import load_audio
from sat_mir.audio.write import write_audio
from sat_mir.build.corpus import BuildItem
from sat_mir.errors import AudioReadError

__all__ = ["ChunkSummary", "write_item_audio"]

log = logging.getLogger("sat_mir.build")


@dataclass
class ChunkSummary:
    written: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # item id → reason


def write_item_audio(
    items: Sequence[BuildItem], folder: Path, *, sample_rate: int, channels: int, ext: str = "flac",
    progress: bool = True,
) -> ChunkSummary:
    """Write ``folder/<item id>.<ext>`` for every item; return what happened."""
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
                x = fit_channels(audio.samples, channels)
                for it in chunks:
                    start = int(round(it.start_s * sample_rate))
                    stop = start + int(round(it.duration_s * sample_rate))
                    write_audio(folder / f"{it.id}.{ext}", x[:, start:stop], sr=sample_rate)
                    summary.written += 1
        for it in (it for it in todo if it.source is not None):  # crops: each its own file, whole
            try:
                audio = load_audio(it.source, sr=sample_rate)
            except AudioReadError as exc:
                summary.failed[it.id] = exc.reason
                log.error("FAILED %s: %s", it.source, exc.reason)
                continue
            write_audio(folder / f"{it.id}.{ext}", fit_channels(audio.samples, channels), sr=sample_rate)
            summary.written += 1
    return summary


def _current(target: Path, source: Path) -> bool:
    """An item file is reused only while it is newer than what it was cut from: a re-cut crop
    keeps its id (``<track>_000``), so existence alone would keep the old audio."""
    try:
        return target.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except FileNotFoundError:
        return False
