"""The typed view of a dataset's output folder: the one reader (and writer) of ``catalog.json``
and ``crops.json``, and the one rule for what an item's known values are.

Every stage after the scan reads the folder through here: the runner's plan and its workers
(what an extractor may condition on), the crop cutter, the build, the preview.  Records are
plain dataclasses (:class:`~sat_mir.catalog.Track` for a track or a crop); no record holds more
than its files say, and nothing here measures or decides.

The precedence of an item's values (:func:`item_values`), lowest first:

1. ``inherited`` (crops only): the track's values that hold for any part of it (specs with
   ``holds="track"``: key, meter, tags...) and the track's ``bpm``/``duration_s`` renamed
   ``track_bpm``/``track_duration_s``;
2. the crop's beat-grid values in its ``crop`` section (:data:`CROP_SECTION_FEATURES`: its local
   ``bpm``, ``beat_count``, ``bars``, ``position``);
3. the item's own measured ``features``.

So a crop's own measurement always wins, and a crop never reads as its track's tempo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sat_mir.catalog import Track
from sat_mir.errors import ConfigError, SidecarError
from sat_mir.fsutil import atomic_write_json
from sat_mir.store.layout import catalog_path, crop_folder, crops_manifest_path, sidecar_path
from sat_mir.store.sidecar import read_sidecar

__all__ = ["CROP_SECTION_FEATURES", "INHERITED_RENAMED", "Dataset", "crop_tracks", "item_values", "list_crops",
           "read_crops_manifest",
           "write_catalog"]

# Values of a crop sidecar's ``crop`` section that are features of the crop (the rest, such as
# start_s or pad_samples, say where it comes from).
CROP_SECTION_FEATURES = {
    "bpm": "the crop's tempo from the track's beats inside it, BPM",
    "beat_count": "the track's beats inside the crop",
    "bars": "whole bars the crop holds (downbeat modes)",
    "position": "where the crop starts, as a fraction of the track's duration",
}
# Track values a crop inherits under another name, so the crop's own measurement of the same
# quantity never collides with them.
INHERITED_RENAMED = {"bpm": "track_bpm", "duration_s": "track_duration_s"}


def item_values(sidecar: dict[str, Any]) -> dict[str, Any]:
    """Everything known of an item, by the precedence in the module docstring."""
    crop = sidecar.get("crop") or {}
    return {
        **(sidecar.get("inherited") or {}),
        **{k: crop[k] for k in CROP_SECTION_FEATURES if isinstance(crop.get(k), (int, float))},
        **(sidecar.get("features") or {}),
    }


def write_catalog(output: Path, root: Path, tracks: list[Track]) -> None:
    """``catalog.json``: the library root and every track (paths relative to the root)."""
    atomic_write_json(catalog_path(output), {"root": str(root), "tracks": [t.to_dict(root) for t in tracks]})


def read_crops_manifest(output: Path, track_id: str) -> dict | None:
    """A track's ``crops.json`` (None when it was never cut, or the file is unreadable: the
    cutter then cuts it again)."""
    try:
        return json.loads(crops_manifest_path(output, track_id).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def list_crops(output: Path, track_id: str) -> list[Track]:
    """The crops listed in a track's ``crops.json`` (empty when it was never cut)."""
    manifest = read_crops_manifest(output, track_id)
    return crop_tracks(manifest, crop_folder(output, track_id)) if manifest else []


def crop_tracks(manifest: dict, folder: Path) -> list[Track]:
    """The crops a ``crops.json`` lists, as tracks whose files lie in ``folder``."""
    out = []
    for c in manifest.get("crops", []):
        cid = c["id"]
        out.append(Track(id=cid, name=cid, rel=f"crops/{folder.name}/{cid}", mix=folder / c["mix"],
                         stems={s: folder / f for s, f in c["stems"].items()}, layout="crop"))
    return out


@dataclass(frozen=True)
class Dataset:
    """An extracted dataset: its library root and catalogued tracks, opened once."""

    output: Path
    root: Path
    tracks: tuple[Track, ...]

    @classmethod
    def open(cls, output: str | Path) -> Dataset:
        """Raises :class:`ConfigError` when the extraction has not been run for ``output``."""
        output = Path(output)
        path = catalog_path(output)
        try:
            catalog = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist: run `python -m sat_mir.extract` for this dataset "
                              "first") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc.msg}): run the extraction again") from exc
        root = Path(catalog["root"])
        return cls(output, root, tuple(Track.from_dict(t, root) for t in catalog["tracks"]))

    def find(self, name_or_id: str) -> Track | None:
        """The track with this id, or else this name."""
        for t in self.tracks:
            if t.id == name_or_id:
                return t
        return next((t for t in self.tracks if t.name == name_or_id), None)

    def sidecar(self, item_id: str) -> dict[str, Any]:
        """An item's sidecar (empty sections when it has none yet); raises :class:`SidecarError`
        when it is unreadable."""
        return read_sidecar(sidecar_path(self.output, item_id))

    def sidecar_or_empty(self, item_id: str) -> dict[str, Any]:
        """An item's sidecar, empty when it is unreadable (the runner reports such files)."""
        try:
            return self.sidecar(item_id)
        except SidecarError:
            return {"features": {}, "provenance": {}}

    def crops(self, track_id: str) -> list[Track]:
        """The crops listed in a track's ``crops.json`` (empty when it was never cut)."""
        return list_crops(self.output, track_id)
