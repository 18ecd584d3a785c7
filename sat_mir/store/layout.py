"""Where everything of a dataset lives inside its output folder: the one place that decides it.

::

    <output>/catalog.json                              the tracks (sat_mir.store.dataset)
    <output>/tracks/<track id>/features.json           a track's sidecar and artefacts
    <output>/tracks/<track id>/stems/                  stems the separation wrote
    <output>/crops/<track id>/crops.json               what the crop cutter made of it
    <output>/crops/<track id>/<crop id>.<ext>          a crop's mix (and <crop id>_<stem>.<ext>)
    <output>/crops/<track id>/<crop id>/features.json  a crop's sidecar and artefacts

A crop id is ``<track id>_<nnn>``; track ids never hold ``_`` (see ``catalog.track_id``),
so an item id says by itself whether it is a crop and of which track.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["CATALOG", "CROPS_MANIFEST", "SIDECAR_NAME", "catalog_path", "crop_audio_name", "crop_folder", "crop_id",
           "crop_of",
           "crops_manifest_path", "is_crop_id", "sidecar_path", "source_track_id", "track_dir"]

CATALOG = "catalog.json"
SIDECAR_NAME = "features.json"
CROPS_MANIFEST = "crops.json"
_CROP_SEP = "_"


def catalog_path(output: str | Path) -> Path:
    return Path(output) / CATALOG


def crop_id(track_id: str, index: int) -> str:
    return f"{track_id}{_CROP_SEP}{index:03d}"


def is_crop_id(item_id: str) -> bool:
    return _CROP_SEP in item_id


def crop_audio_name(cid: str, signal: str, ext: str) -> str:
    """The file of a crop's mix (``<crop id>.<ext>``) or of one of its stems (``<crop id>_<stem>.<ext>``)."""
    return f"{cid}.{ext}" if signal == "mix" else f"{cid}{_CROP_SEP}{signal}.{ext}"


def crop_of(name: str, track_id: str) -> str | None:
    """The crop id a file or folder name in a track's crop folder belongs to, or None when it
    is not one of that track's crops (``crops.json``, a user's file)."""
    m = re.match(re.escape(track_id + _CROP_SEP) + r"\d+", name)
    return m.group(0) if m else None


def source_track_id(item_id: str) -> str:
    """The track an item comes from (itself for a track)."""
    return item_id.split(_CROP_SEP, 1)[0]


def crop_folder(output: str | Path, track_id: str) -> Path:
    """The folder holding a track's crops, their audio and ``crops.json``."""
    return Path(output) / "crops" / track_id


def crops_manifest_path(output: str | Path, track_id: str) -> Path:
    return crop_folder(output, track_id) / CROPS_MANIFEST


def track_dir(output: str | Path, item_id: str) -> Path:
    """The work folder of a track or crop: ``tracks/<id>/`` or ``crops/<track id>/<crop id>/``."""
    if is_crop_id(item_id):
        return crop_folder(output, source_track_id(item_id)) / item_id
    return Path(output) / "tracks" / item_id


def sidecar_path(output: str | Path, item_id: str) -> Path:
    return track_dir(output, item_id) / SIDECAR_NAME
