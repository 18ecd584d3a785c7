"""The corpus the builder works on: tracks read back from the extraction outputs,
cut into the items SAT trains on.

An item is a view (track, start, duration) until a writer materialises it. Two kinds
(:func:`corpus_items`, ``items`` in ``conf/build.yaml``):

* **crops**, when the extraction cut them (``python -m sat_mir.extract crops=div4``): each
  crop listed in ``crops/<track id>/crops.json`` is one item, read whole from its own file
  (already cut on the beat grid, faded and padded), with the features of its sidecar;
* **chunks**: consecutive fixed-length slices of the track's mix (the model's
  ``sample_size`` unless ``chunks.seconds`` says otherwise), with the track's features.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sat_mir.errors import ConfigError, SidecarError
from sat_mir.catalog import Track
from sat_mir.store.dataset import Dataset, item_values, list_crops
from sat_mir.store.sidecar import read_sidecar, sidecar_path

__all__ = ["ITEM_KINDS", "BuildItem", "CorpusTrack", "chunk_items", "corpus_items", "crop_items", "load_corpus"]

# ``items``: crops where the extraction made them and chunks elsewhere, only crops, only chunks.
ITEM_KINDS = ("auto", "crops", "chunks")


@dataclass(frozen=True)
class CorpusTrack:
    id: str
    name: str
    mix: Path
    features: dict[str, Any]
    errors: dict[str, str]  # extractor → error, from provenance
    entry: Track | None = None  # the catalog entry

    @property
    def duration_s(self) -> float | None:
        d = self.features.get("duration_s")
        return float(d) if isinstance(d, (int, float)) else None


@dataclass(frozen=True)
class BuildItem:
    """One training example: ``duration_s`` seconds of ``track`` from ``start_s``.

    ``source`` is the item's own audio file, decoded whole (a crop: ``duration_s`` is its
    length as written, ``pad_s`` of it trailing silence the crop writer added); None means
    the slice ``[start_s, start_s + duration_s)`` of the track's mix (a chunk).
    """

    id: str  # no dots (WebDataset splits keys at dots)
    track: CorpusTrack
    index: int
    start_s: float
    duration_s: float
    features: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None
    pad_s: float = 0.0

    @property
    def kind(self) -> str:
        return "chunk" if self.source is None else "crop"

    @property
    def seconds_start(self) -> int:
        """SAT's ``seconds_start``: whole seconds into the source track."""
        return int(math.floor(self.start_s))

    @property
    def seconds_total(self) -> int:
        """SAT's ``seconds_total``: the source track's length in whole seconds (rounded up),
        the timing convention Stable Audio was trained with."""
        return int(math.ceil(self.track.duration_s or self.duration_s))


def load_corpus(output: Path) -> tuple[Dataset, list[CorpusTrack]]:
    """The dataset and every catalogued track with its sidecar features.

    Raises
    ------
    ConfigError
        The extraction has not been run for this output folder.
    """
    ds = Dataset.open(output)
    tracks = []
    for entry in ds.tracks:
        sidecar = ds.sidecar_or_empty(entry.id)
        errors = {k: v["error"] for k, v in sidecar["provenance"].items() if v.get("error")}
        tracks.append(CorpusTrack(id=entry.id, name=entry.name, mix=entry.mix, features=dict(sidecar["features"]),
                                  errors=errors, entry=entry))
    return ds, tracks


def chunk_items(tracks: list[CorpusTrack], *, chunk_s: float, min_fraction: float = 0.5) -> Iterator[BuildItem]:
    """Consecutive ``chunk_s``-second chunks of each track; a last chunk shorter than
    ``min_fraction`` of a chunk is dropped (it would be mostly padding)."""
    if chunk_s <= 0:
        raise ConfigError(f"chunk length must be positive, got {chunk_s} s")
    for track in tracks:
        total = track.duration_s
        if total is None:
            continue
        n = max(1, math.ceil(total / chunk_s))
        for i in range(n):
            start = i * chunk_s
            dur = min(chunk_s, total - start)
            if i > 0 and dur < min_fraction * chunk_s:
                break
            yield BuildItem(id=f"{track.id}-c{i:03d}", track=track, index=i, start_s=start, duration_s=dur,
                            features=track.features)


def crop_items(output: Path, track: CorpusTrack) -> tuple[list[BuildItem], dict[str, str]]:
    """The crops of ``track`` listed in its ``crops.json`` as items (``[]`` when it was never cut
    or has no crops), and ``{crop id: reason}`` for listed crops that cannot be used (audio file
    or ``crop`` sidecar section missing, sidecar unreadable)."""
    items, bad = [], {}
    for crop in list_crops(output, track.id):
        if not crop.mix.is_file():
            bad[crop.id] = f"crop audio {crop.mix} is missing (cut the crops again: python -m sat_mir.extract)"
            continue
        try:
            sidecar = read_sidecar(sidecar_path(output, crop.id))
        except SidecarError as exc:
            bad[crop.id] = str(exc)
            continue
        info = sidecar.get("crop") or {}
        if not all(isinstance(info.get(k), (int, float)) for k in ("index", "start_s", "duration_s")):
            bad[crop.id] = f"{sidecar_path(output, crop.id)} has no crop section (cut the crops again)"
            continue
        sr = info.get("sample_rate")
        pad_s = float(info.get("pad_samples") or 0) / sr if isinstance(sr, (int, float)) and sr > 0 else 0.0
        items.append(BuildItem(id=crop.id, track=track, index=int(info["index"]), start_s=float(info["start_s"]),
                               duration_s=float(info["duration_s"]), features=item_values(sidecar),
                               source=crop.mix, pad_s=pad_s))
    return items, bad


def corpus_items(
    output: Path, tracks: Sequence[CorpusTrack], *, kind: str = "auto", chunk_s: float | None,
    min_fraction: float = 0.5,
) -> tuple[list[BuildItem], dict[str, str]]:
    """The items of ``tracks``, track by track, and ``{track name or crop id: reason}`` for what
    is left out.

    kind : "auto" (a track's crops when its ``crops.json`` lists any, else its chunks),
        "crops" (tracks without crops are left out) or "chunks" (crops are ignored).
    chunk_s : chunk length in seconds; may be None when no track needs chunks.

    Raises
    ------
    ConfigError
        ``kind`` is unknown, or a track needs chunks and ``chunk_s`` is None.
    """
    if kind not in ITEM_KINDS:
        raise ConfigError(f"items must be one of {list(ITEM_KINDS)}, got {kind!r}")
    items: list[BuildItem] = []
    left_out: dict[str, str] = {}
    for track in tracks:
        if kind != "chunks":
            crops, bad = crop_items(output, track)
            left_out.update(bad)
            if crops or bad or kind == "crops":
                items.extend(crops)
                if not crops and not bad:
                    left_out[track.name] = ("no crops (items=crops): cut them with `python -m sat_mir.extract "
                                            "crops=div4`, or build chunks with items=auto")
                continue
        if chunk_s is None:
            raise ConfigError(f"track {track.name} has no crops and chunks.seconds is not set (no model config "
                              f"to take sample_size from: set dataset.models / model.dir or chunks.seconds)")
        items.extend(chunk_items([track], chunk_s=chunk_s, min_fraction=min_fraction))
    return items, left_out
