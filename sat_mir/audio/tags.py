"""Read the text tags of an audio file (title, artist, album, date, genre)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import soundfile as sf

__all__ = ["read_tags"]

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
    except (sf.LibsndfileError, RuntimeError, OSError):
        pass  # not a container libsndfile reads tags from (mp3, m4a): ffprobe below
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
