"""Write the custom_metadata folder SAT loads: the module, the prompt sampler and the manifest."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import custom_metadata
from sat_mir.build.corpus import BuildItem
from sat_mir.fsutil import atomic_path, atomic_write_json

__all__ = ["MODULE_FILE", "write_metadata_folder"]

_SOURCE = Path(custom_metadata.__file__).resolve().parent
MODULE_FILE = "sat_mir_metadata.py"


def write_metadata_folder(
    folder: Path,
    items: Sequence[BuildItem],
    *,
    materials: dict[str, dict],
    numbers: dict[str, dict[str, float]],
    recipe: dict[str, Any],
    seed: int,
    gains: dict[str, float] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``folder/{sat_mir_metadata.py, prompts.py, manifest.json}``; return the module path."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (MODULE_FILE, "prompts.py"):
        with atomic_path(folder / name, suffix=".py") as tmp:
            shutil.copyfile(_SOURCE / name, tmp)
    manifest = {
        "format": 1,
        "seed": int(seed),
        "recipe": recipe,
        **(extra or {}),
        "items": {
            it.id: {
                "track_id": it.track.id,
                "seconds_start": it.seconds_start,
                "seconds_total": it.seconds_total,
                "numbers": numbers[it.id],
                "gain_db": (gains or {}).get(it.id, 0.0),  # put into the item's audio (peak_policy)
                "material": materials[it.id],
            }
            for it in items
        },
    }
    atomic_write_json(folder / "manifest.json", manifest)
    return folder / MODULE_FILE
