"""Time series on the latent grid: each item's ``<item>.series.npz`` beside its latents.

The extraction wrote each track's (and each measured crop's) series at the analysis grid
(:mod:`sat_mir.features.series`, about 43 frames per second).  A latent frame ``j`` of an item
stands for the item's samples ``[j * hop, (j + 1) * hop)`` at the model's rate (``hop``: the
autoencoder's downsampling ratio, 2048 for Stable Audio Open, 4096 for Stable Audio 3), so its
value is read from the analysis frames whose instants fall in that span:

- the mean for levels (``loudness_momentary``, ``chroma``, ``spectral_centroid``, ``rms_*``),
- the maximum for ``onset_strength`` (an onset anywhere in the span marks the frame),
- the frame nearest the span's middle for the phases (a mean of a phase that wraps is not one).

A span holding no analysis instant (a hop finer than the analysis grid) takes the nearest frame.
Frames past the item's audio (the latent's zero padding) are 0 and ``padding_mask`` is 0 there,
the same mask as the latent's.  The file holds every series, ``padding_mask`` (int8),
``frame_rate`` (latent frames per second) and ``start_s`` (the item's start in the series).

An item reads its own series when it has one (a crop measured on its own audio, fades
included), else its track's from the item's start in the track (a chunk, or a crop whose
features were not measured).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sat_mir.features.series import SERIES_FILE, npz_bytes

__all__ = ["ITEM_SUFFIX", "LatentGrid", "SeriesSummary", "item_series_bytes", "latent_grid", "load_series",
           "on_latent_grid", "write_item_series"]

log = logging.getLogger("sat_mir.build")

ITEM_SUFFIX = ".series.npz"
_MAX = ("onset_strength",)
_NEAREST = ("beat_phase", "downbeat_phase")


@dataclass(frozen=True)
class LatentGrid:
    """The latent frames of one item: ``hop`` samples each at ``sample_rate``, ``frames`` of them,
    the first ``real_frames`` holding audio."""

    sample_rate: int
    hop: int
    frames: int
    real_frames: int

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @classmethod
    def of_item(cls, *, samples: int, sample_rate: int, hop: int, frames: int | None = None) -> LatentGrid:
        """The grid of an item of ``samples`` real samples; ``frames`` None = as many as it fills."""
        real = -(-samples // hop)
        total = real if frames is None else frames
        return cls(sample_rate=sample_rate, hop=hop, frames=total, real_frames=min(real, total))


def load_series(path: Path) -> tuple[dict[str, np.ndarray], float]:
    with np.load(path) as data:
        fps = float(data["fps"])
        return {k: data[k] for k in data.files if k != "fps"}, fps


def on_latent_grid(series: dict[str, np.ndarray], fps: float, grid: LatentGrid, *, start_s: float = 0.0
                   ) -> dict[str, np.ndarray]:
    """Every series resampled onto ``grid``, read from ``start_s`` seconds into the series."""
    n = next(iter(series.values())).shape[-1]
    j = np.arange(grid.real_frames)
    lo = start_s + j * grid.hop / grid.sample_rate
    hi = lo + grid.hop / grid.sample_rate
    first = np.clip(np.ceil(lo * fps - 1e-9).astype(np.int64), 0, n - 1)
    last = np.clip(np.ceil(hi * fps - 1e-9).astype(np.int64) - 1, 0, n - 1)  # inclusive
    middle = np.clip(np.round((lo + hi) / 2 * fps).astype(np.int64), 0, n - 1)
    empty = last < first
    first, last = np.where(empty, middle, first), np.where(empty, middle, last)
    out = {}
    for key, values in series.items():
        x = np.asarray(values, dtype=np.float64)
        shape = x.shape[:-1] + (grid.frames,)
        y = np.zeros(shape, dtype=np.float32)
        if key in _NEAREST:
            y[..., : grid.real_frames] = x[..., middle]
        elif key in _MAX:
            y[..., : grid.real_frames] = [x[..., a : b + 1].max(axis=-1) for a, b in zip(first, last)]
        else:
            csum = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(x, axis=-1)], axis=-1)
            y[..., : grid.real_frames] = (csum[..., last + 1] - csum[..., first]) / (last - first + 1)
        out[key] = y
    return out


def item_series_bytes(series: dict[str, np.ndarray], grid: LatentGrid, start_s: float) -> bytes:
    mask = np.zeros(grid.frames, dtype=np.int8)
    mask[: grid.real_frames] = 1
    return npz_bytes({"padding_mask": mask, "frame_rate": np.float64(grid.frame_rate),
                      "start_s": np.float64(start_s), **series})


@dataclass
class SeriesSummary:
    written: int = 0
    skipped: int = 0
    missing: dict[str, str] = field(default_factory=dict)  # item id -> why it has no series


def series_source(item, dataset) -> tuple[Path, float] | None:
    """Where an item's series are read and from which second: its own file, else its track's."""
    from sat_mir.store.layout import track_dir

    if item.kind == "crop":
        own = track_dir(dataset.output, item.id) / SERIES_FILE
        if own.is_file():
            return own, 0.0
    track = track_dir(dataset.output, item.track.id) / SERIES_FILE
    return (track, item.start_s) if track.is_file() else None


def latent_grid(latent_json: Path, *, sample_rate: int, hop: int) -> LatentGrid:
    """The grid of an encoded item, from its latent's own ``padding_mask`` (so the series' mask
    is the latent's, frame for frame)."""
    import json

    mask = json.loads(latent_json.read_text())["padding_mask"]
    return LatentGrid(sample_rate=sample_rate, hop=hop, frames=len(mask), real_frames=int(sum(mask)))


def write_item_series(items, dataset, folder: Path, grid_of) -> SeriesSummary:
    """``folder/<item id>.series.npz`` for every item whose track (or crop) has series.

    ``grid_of(item)`` gives ``(LatentGrid, the file it was read from or None)``, or None for an
    item without a latent; a file newer than its series and that file is current and kept."""
    from sat_mir.fsutil import atomic_write_bytes

    summary = SeriesSummary()
    cache: dict[Path, tuple[dict[str, np.ndarray], float]] = {}
    for item in items:
        src = series_source(item, dataset)
        of = grid_of(item)
        if src is None or of is None:
            summary.missing[item.id] = ("no series.npz for its track (run the series extractor)" if src is None
                                        else "no latent")
            continue
        (path, start_s), (grid, grid_file) = src, of
        target = folder / f"{item.id}{ITEM_SUFFIX}"
        deps = [path] + ([grid_file] if grid_file is not None else [])
        if target.is_file() and all(target.stat().st_mtime_ns >= p.stat().st_mtime_ns for p in deps):
            summary.skipped += 1
            continue
        if path not in cache:
            cache.clear()  # items come track by track: keep one track's series in memory
            cache[path] = load_series(path)
        series, fps = cache[path]
        atomic_write_bytes(target, item_series_bytes(on_latent_grid(series, fps, grid, start_s=start_s), grid,
                                                     start_s))
        summary.written += 1
    return summary
