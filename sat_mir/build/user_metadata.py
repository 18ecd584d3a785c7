"""User metadata for prompts: artist, title, album, year, genre from the files' tags or a CSV.

Off by default (``prompts.metadata.enabled``): names of real artists in prompts
are a choice the user makes.  A CSV row wins over the file's tags.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import soundfile as sf

from sat_mir.errors import ConfigError

__all__ = ["read_metadata_csv", "read_tags", "track_metadata"]

_SF_FIELDS = ("title", "artist", "album", "date", "genre")


def read_tags(path: Path) -> dict[str, str]:
    """Tags of an audio file (lower-case keys), via libsndfile, else ffprobe; {} when none."""
    tags: dict[str, str] = {}
    try:
        with sf.SoundFile(str(path)) as f:
            for name in _SF_FIELDS:
                value = getattr(f, name, "") or ""
                if value.strip():
                    tags[name] = value.strip()
    except Exception:  # noqa: BLE001 - no tags readable this way; try ffprobe
        pass
    exe = shutil.which("ffprobe")
    if not tags and exe:
        proc = subprocess.run([exe, "-v", "error", "-show_entries", "format_tags", "-of", "json", str(path)],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            raw = json.loads(proc.stdout or "{}").get("format", {}).get("tags", {})
            tags = {k.lower(): str(v).strip() for k, v in raw.items() if str(v).strip()}
    if "date" in tags and "year" not in tags:
        m = re.match(r"\s*(\d{4})", tags["date"])
        if m:
            tags["year"] = m.group(1)
    return tags


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
