"""Cut every track of a run into crops, in a pool of worker processes, with a progress bar."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from tqdm.auto import tqdm

from sat_mir.catalog import Track
from sat_mir.crops.cut import CropSettings, CutOutcome, cut_track
from sat_mir.run.executor import LOCAL, ExecutorSettings, execute
from sat_mir.run.pool import Crashed

__all__ = ["cut_tracks"]

log = logging.getLogger("sat_mir.crops")


def cut_tracks(tracks: Sequence[Track], output: Path, settings: CropSettings, *, jobs: int | None = None,
               progress: bool = True, executor: ExecutorSettings = LOCAL) -> tuple[list[Track], bool]:
    """Cut every track (or find its crops current); returns (every crop, whether a track failed).

    Each failed track gets one log line naming it and the reason; the others go on.
    """
    tracks = list(tracks)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tracks) or 1))
    cut = current = failures = empty = doubted = 0
    by_track: dict[str, list[Track]] = {}
    work = partial(_cut_guarded, output=output, settings=settings)
    with tqdm(total=len(tracks), desc="crops", unit="track", disable=not progress, dynamic_ncols=True) as bar:
        for track, outcome in execute(work, tracks, jobs, executor):
            error = outcome.reason if isinstance(outcome, Crashed) else outcome.error
            if error:
                failures += 1
                log.error("FAILED %s: crops: %s", track.rel, error)
            else:
                by_track[track.id] = outcome.crops
                cut += outcome.cut
                current += not outcome.cut
                if outcome.doubt:
                    doubted += 1
                    if outcome.cut and outcome.crops:
                        log.info("%s: crops cut in sequence from its first sound, not on its beat grid (%s)",
                                 track.rel, outcome.doubt)
                if not outcome.crops:
                    empty += 1
                    log.warning("no crops from %s: %s", track.rel, outcome.no_crops or "the plan is empty")
            bar.update(1)
    # completion order varies with the pool; the crops keep the library's order
    crops = [c for t in tracks for c in by_track.get(t.id, ())]
    minimums = " / ".join(f"crops.min_{key}" for key in settings.min_confidence)
    doubts = (f", {doubted} {'cut in sequence' if settings.doubtful_grid == 'sequential' else 'not cut'}: "
              f"their beat grid is below {minimums}") if doubted else ""
    (log.warning if failures or empty else log.info)(
        "crops (%s): %d tracks cut, %d already cut, %d failed, %d gave no crop (see above)%s; %d crops",
        settings.mode, cut, current, failures, empty, doubts, len(crops))
    return crops, failures > 0


def _cut_guarded(track: Track, *, output: Path, settings: CropSettings) -> CutOutcome:
    try:
        return cut_track(track, output, settings)
    except Exception as exc:  # noqa: BLE001 - a bug must not end the run for every other track
        return CutOutcome(track.id, error=f"{type(exc).__name__}: {exc}")
