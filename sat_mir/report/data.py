"""What a dataset report shows, read from the output folder (through :mod:`sat_mir.store`):
one row per track and per crop with its values, every failure and flag with its reason, and,
when the build has run, each item's prompt material."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sat_mir.store import Dataset, item_values, read_crops_manifest

__all__ = ["Problem", "ReportData", "collect"]


@dataclass(frozen=True)
class Problem:
    """A failed or flagged measurement: where, which extractor or key, and why."""

    item: str  # track name or crop id
    kind: str  # "failed" | "flagged" | "left out" | "note"
    what: str  # extractor or key
    reason: str


@dataclass
class ReportData:
    output: Path
    tracks: list[dict[str, Any]] = field(default_factory=list)  # {"id", "name", **values}
    crops: list[dict[str, Any]] = field(default_factory=list)  # {"id", "track", "audio", **values}
    problems: list[Problem] = field(default_factory=list)
    # from the build, when it has run: item id -> manifest entry; the manifest's header
    items: dict[str, dict] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


def _problems(name: str, sidecar: dict) -> list[Problem]:
    out = []
    for extractor, rec in (sidecar.get("provenance") or {}).items():
        if rec.get("error"):
            out.append(Problem(name, "failed", extractor, rec["error"]))
        for key, msg in (rec.get("flags") or {}).items():
            out.append(Problem(name, "flagged", key, msg))
    return out


def _built_items(sat: Path) -> tuple[dict, dict[str, dict]]:
    header_path, store = sat / "custom_metadata" / "manifest.json", sat / "custom_metadata" / "items.sqlite"
    if not header_path.is_file() or not store.is_file():
        return {}, {}
    from sat_mir.build.manifest import read_items_store

    return json.loads(header_path.read_text()), read_items_store(store)


def collect(output: Path) -> ReportData:
    """Everything the report shows.  Raises :class:`~sat_mir.errors.ConfigError` when the
    extraction has not run for ``output``."""
    ds = Dataset.open(output)
    data = ReportData(output=Path(output))
    for track in ds.tracks:
        sidecar = ds.sidecar_or_empty(track.id)
        data.tracks.append({"id": track.id, "name": track.name, **sidecar.get("features", {})})
        data.problems += _problems(track.name, sidecar)
        data.problems += [Problem(track.name, "note", "input", n) for n in track.notes]
        cut = read_crops_manifest(output, track.id) or {}
        if cut.get("doubt"):  # its crops claim no bar lines, or it has none: say why beside the failures
            how = "cut in sequence from the first sound" if cut.get("crops") else "no crops"
            data.problems.append(Problem(track.name, "note", "crops",
                                         f"{how}, not on its beat grid: {cut['doubt']}"))
        for crop in ds.crops(track.id):
            csidecar = ds.sidecar_or_empty(crop.id)
            data.crops.append({"id": crop.id, "track": track.name, "audio": crop.mix, **item_values(csidecar)})
            data.problems += _problems(crop.id, csidecar)
    data.manifest, data.items = _built_items(Path(output) / "sat")
    return data
