"""User metadata for prompts: artist, title, album, year, genre from the files' tags or a CSV.

Off by default (``prompts.metadata.enabled``): names of real artists in prompts
are a choice the user makes.  A CSV row wins over the file's tags.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sat_mir.audio.tags import read_tags
from sat_mir.errors import ConfigError

__all__ = ["read_metadata_csv", "read_tags", "track_metadata"]

def read_metadata_csv(path: Path) -> dict[str, dict[str, str]]:
    """Rows keyed by the value of their ``track_id``, ``path`` or ``name`` column (first present).

    Raises
    ------
    ConfigError
        The file is missing or has none of those key columns.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"prompts.metadata.csv={str(path)!r} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        key = next((c for c in ("track_id", "path", "name") if c in cols), None)
        if key is None:
            raise ConfigError(f"{path}: needs a 'track_id', 'path' or 'name' column, has {cols}")
        return {row[key].strip(): {k: v.strip() for k, v in row.items() if k != key and v and v.strip()}
                for row in reader if row.get(key)}


def track_metadata(
    *, track_id: str, name: str, rel_paths: list[str], mix: Path, fields: list[str],
    csv_rows: dict[str, dict[str, str]] | None,
) -> dict[str, str]:
    """The requested ``fields`` of one track: the CSV row (by id, relative path or name) over its tags."""
    values = read_tags(mix)
    row = None
    for key in (track_id, *rel_paths, name):
        if csv_rows and key in csv_rows:
            row = csv_rows[key]
            break
    values.update(row or {})
    return {f: values[f] for f in fields if values.get(f)}
