"""The corpus the builder works on: tracks read back from the extraction outputs,
cut into the items SAT trains on.

An item is a view (track, start, duration) until a writer materialises it. Items
are crops when the crop stage has made them (later), otherwise fixed-length
chunks of each track whose length is the model's ``sample_size``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sat_mir.errors import ConfigError, SidecarError
from sat_mir.store.sidecar import read_sidecar, sidecar_path

__all__ = ["BuildItem", "CorpusTrack", "chunk_items", "load_corpus"]


@dataclass(frozen=True)
class CorpusTrack:
    id: str
    name: str
    mix: Path
    features: dict[str, Any]
    errors: dict[str, str]  # extractor → error, from provenance

    @property
    def duration_s(self) -> float | None:
        d = self.features.get("duration_s")
        return float(d) if isinstance(d, (int, float)) else None


@dataclass(frozen=True)
class BuildItem:
    """One training example: ``duration_s`` seconds of ``track`` from ``start_s``."""

    id: str  # no dots (WebDataset splits keys at dots)
    track: CorpusTrack
    index: int
    start_s: float
    duration_s: float
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_start(self) -> int:
        """SAT's ``seconds_start``: whole seconds into the source track."""
        return int(math.floor(self.start_s))

    @property
    def seconds_total(self) -> int:
        """SAT's ``seconds_total``: the source track's length in whole seconds (rounded up),
        the timing convention Stable Audio was trained with."""
        return int(math.ceil(self.track.duration_s or self.duration_s))


def load_corpus(output: Path) -> tuple[Path, list[CorpusTrack]]:
    """The library root and every catalogued track with its sidecar features.

    Raises
    ------
    ConfigError
        The extraction has not been run for this output folder.
    """
    catalog_path = output / "catalog.json"
    if not catalog_path.exists():
        raise ConfigError(
            f"{catalog_path} does not exist: run `python -m sat_mir.extract` for this dataset first"
        )
    catalog = json.loads(catalog_path.read_text())
    root = Path(catalog["root"])
    tracks = []
    for entry in catalog["tracks"]:
        try:
            sidecar = read_sidecar(sidecar_path(output, entry["id"]))
        except SidecarError:
            sidecar = {"features": {}, "provenance": {}}
        errors = {k: v["error"] for k, v in sidecar["provenance"].items() if v.get("error")}
        mix = Path(entry["mix"])
        tracks.append(CorpusTrack(
            id=entry["id"], name=entry["name"], mix=mix if mix.is_absolute() else root / mix,
            features=dict(sidecar["features"]), errors=errors,
        ))
    return root, tracks


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
