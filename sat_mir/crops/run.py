"""Cut every track of a run into crops, in a pool of worker processes, with a progress bar."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from tqdm.auto import tqdm

from sat_mir.catalog import Track
from sat_mir.crops.cut import CropSettings, cut_track

__all__ = ["cut_tracks"]

log = logging.getLogger("sat_mir.crops")


def cut_tracks(tracks: Sequence[Track], output: Path, settings: CropSettings, *, jobs: int | None = None,
               progress: bool = True) -> tuple[list[Track], bool]:
    """Cut every track (or find its crops current); returns (every crop, whether a track failed).

    Each failed track gets one log line naming it and the reason; the others go on.
    """
    tracks = list(tracks)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tracks) or 1))
    crops: list[Track] = []
    cut = current = failures = 0
    pool = None
    if jobs == 1:
        outcomes = (cut_track(t, output, settings) for t in tracks)
    else:
        # spawn, like the extraction pool: forking a process that holds BLAS threads can deadlock
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"))
        outcomes = pool.map(cut_track, tracks, [output] * len(tracks), [settings] * len(tracks))
    bar = tqdm(total=len(tracks), desc="crops", unit="track", disable=not progress, dynamic_ncols=True)
    try:
        for track, outcome in zip(tracks, outcomes):
            if outcome.error:
                failures += 1
                log.error("FAILED %s: crops: %s", track.rel, outcome.error)
            else:
                crops.extend(outcome.crops)
                cut += outcome.cut
                current += not outcome.cut
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    (log.warning if failures else log.info)(
        "crops (%s): %d tracks cut, %d already cut, %d failed; %d crops", settings.mode, cut, current, failures,
        len(crops))
    return crops, failures > 0
