"""Write the custom_metadata folder SAT loads: the module, the prompt sampler, the manifest and
the item store."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from sat_mir.build.corpus import BuildItem
from sat_mir.fsutil import atomic_path, atomic_write_json

__all__ = ["ITEMS_DB", "MODULE_FILE", "prompts_module", "read_items_store", "source_dir",
           "write_items_store", "write_metadata_folder"]

MODULE_FILE = "sat_mir_metadata.py"
_PACKAGE = Path(__file__).resolve().parent.parent


def source_dir() -> Path:
    """The training-time module's files: ``sat_mir/custom_metadata`` inside an installed wheel
    (copied there from the clone's top-level ``custom_metadata/`` when the wheel is built), else
    the clone's own folder.  They are copied into every build, never imported as a package, so
    nothing named ``custom_metadata`` is installed into site-packages."""
    packaged = _PACKAGE / "custom_metadata"
    return packaged if (packaged / MODULE_FILE).is_file() else _PACKAGE.parent / "custom_metadata"


@lru_cache(maxsize=1)
def prompts_module() -> ModuleType:
    """``prompts.py`` of :func:`source_dir`: the prompt sampler the build checks prompts with, the
    same file training runs."""
    spec = importlib.util.spec_from_file_location("sat_mir_prompt_sampler", source_dir() / "prompts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
ITEMS_DB = "items.sqlite"


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
    """Write ``folder/{sat_mir_metadata.py, prompts.py, manifest.json, items.sqlite}``; return
    the module path.  ``manifest.json`` holds what every fetch needs (seed, recipe, bins),
    ``items.sqlite`` one row per item, looked up by id (see the module's docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (MODULE_FILE, "prompts.py"):
        with atomic_path(folder / name, suffix=".py") as tmp:
            shutil.copyfile(source_dir() / name, tmp)
    entries = (
        (it.id, it.track.id, {
            "track_id": it.track.id,
            "seconds_start": it.seconds_start,
            "seconds_total": it.seconds_total,
            "numbers": numbers[it.id],
            "gain_db": (gains or {}).get(it.id, 0.0),  # put into the item's audio (peak_policy)
            "material": materials[it.id],
        })
        for it in items
    )
    n = write_items_store(folder / ITEMS_DB, entries)
    atomic_write_json(folder / "manifest.json", {
        "format": 2, "seed": int(seed), "recipe": recipe, **(extra or {}), "store": ITEMS_DB, "items": n,
    })
    return folder / MODULE_FILE


def read_items_store(path: Path) -> dict[str, dict]:
    """``{item id: entry}`` of an item store, in build order (the report and tests; training
    looks items up one by one through the written module)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {iid: json.loads(item) for iid, item in conn.execute("SELECT id, item FROM items ORDER BY n")}
    finally:
        conn.close()


def write_items_store(path: Path, entries: Iterable[tuple[str, str, dict]]) -> int:
    """Write ``(item id, track id, entry)`` rows to the SQLite file ``path`` (atomically: a
    temporary file renamed at the end); return how many.  The same rows give the same bytes."""
    with atomic_path(path, suffix=".sqlite") as tmp:
        conn = sqlite3.connect(tmp)
        try:
            # a private temporary file until the rename: no journal, no fsync per page
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute("CREATE TABLE items (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
                         "track_id TEXT NOT NULL, item TEXT NOT NULL)")
            count = 0
            batch = []
            for iid, track_id, entry in entries:
                batch.append((count, iid, track_id, json.dumps(entry, ensure_ascii=False, allow_nan=False,
                                                               separators=(",", ":"))))
                count += 1
                if len(batch) >= 10_000:
                    conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", batch)
                    batch.clear()
            conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", batch)
            conn.commit()
        finally:
            conn.close()
    return count
