"""Scan a music library (read-only) into :class:`Track` entries.

Two layouts are recognised, and may be mixed in one library:

* the seed layout: a folder holding ``full_mix.<ext>`` is one track, named after
  the folder, and ``drums|bass|other|vocals.<ext>`` beside it are its stems;
* plain files: every other audio file is a track; files named
  ``<base>_<stem>.<ext>`` or ``<base>.<stem>.<ext>`` beside ``<base>.<ext>`` are
  that track's stems.

When one name exists in several formats, the first of :data:`AUDIO_SUFFIXES`
wins (lossless first), so the choice never depends on directory order.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sat_mir.audio.context import STEM_NAMES
from sat_mir.errors import ConfigError

__all__ = ["AUDIO_SUFFIXES", "Track", "scan_library", "track_id"]

log = logging.getLogger("sat_mir.catalog")

# Preference order when the same name exists in several formats.
AUDIO_SUFFIXES = (".flac", ".wav", ".aiff", ".aif", ".ogg", ".opus", ".mp3", ".m4a")
SEED_MIX = "full_mix"
_STEM_SUFFIX = re.compile(r"^(?P<base>.+?)[._](?P<stem>" + "|".join(STEM_NAMES) + r")$", re.IGNORECASE)


@dataclass(frozen=True)
class Track:
    """One track of the library.  Paths are absolute; ``rel`` is the posix path of the
    track's key relative to the library root (the seed folder, or the mix without suffix)."""

    id: str
    name: str
    rel: str
    mix: Path
    stems: dict[str, Path] = field(default_factory=dict)
    layout: str = "file"
    notes: tuple[str, ...] = ()  # what was adapted or left out where the files entered (catalog.check)

    @property
    def sources(self) -> dict[str, Path]:
        """Signal name → file: ``mix`` first, then the stems in canonical order."""
        out = {"mix": self.mix}
        out.update({s: self.stems[s] for s in STEM_NAMES if s in self.stems})
        return out

    def to_dict(self, root: Path) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "rel": self.rel,
            "layout": self.layout,
            "mix": _rel(self.mix, root),
            "stems": {k: _rel(v, root) for k, v in self.sources.items() if k != "mix"},
            **({"notes": list(self.notes)} if self.notes else {}),
        }

    @classmethod
    def from_dict(cls, d: dict, root: Path) -> Track:
        """The inverse of :meth:`to_dict` (relative paths are taken under ``root``)."""
        def at(p: str) -> Path:
            return Path(p) if Path(p).is_absolute() else Path(root) / p

        return cls(id=d["id"], name=d["name"], rel=d["rel"], mix=at(d["mix"]),
                   stems={k: at(v) for k, v in (d.get("stems") or {}).items()}, layout=d.get("layout", "file"),
                   notes=tuple(d.get("notes") or ()))


def track_id(rel: str) -> str:
    """Stable id for a track key: a readable slug plus 8 hex digits of its SHA-1.

    Ids hold only ``[a-z0-9-]`` (no dots: WebDataset splits sample keys at dots).
    """
    slug = re.sub(r"[^a-z0-9]+", "-", rel.lower()).strip("-")[:48].strip("-") or "track"
    digest = hashlib.sha1(rel.encode("utf-8")).hexdigest()[:8]
    return f"{slug}-{digest}"


def scan_library(root: str | Path, *, exclude: list[Path] | None = None) -> list[Track]:
    """All tracks under ``root``, sorted by ``rel``.  Reads directory listings only.

    Hidden files and folders (``.name``) and the folders in ``exclude`` are skipped.  What is
    not used is said, one log line each: a name in several formats (which file is kept), a
    folder of stems without a mix, a broken symbolic link.

    Raises
    ------
    ConfigError
        ``root`` does not exist or is not a folder.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"dataset.root={str(root)!r} is not an existing folder")
    skip = {Path(p).resolve() for p in (exclude or [])}
    tracks: list[Track] = []
    for folder, files in _walk(root, skip):
        tracks.extend(_tracks_in_folder(root, folder, files))
    tracks.sort(key=lambda t: t.rel)
    return tracks


def _walk(root: Path, skip: set[Path]) -> Iterator[tuple[Path, list[str]]]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in skip)
        audio = []
        for f in sorted(filenames):
            if f.startswith(".") or Path(f).suffix.lower() not in AUDIO_SUFFIXES:
                continue
            if not (here / f).exists():  # a symbolic link to nothing
                log.warning("skipped %s: a broken symbolic link (to %s)", _rel(here / f, root),
                            os.readlink(here / f))
                continue
            audio.append(f)
        if audio:
            yield here, audio


def _pick(candidates: list[str], folder: Path | None = None, root: Path | None = None) -> str:
    chosen = min(candidates, key=lambda f: AUDIO_SUFFIXES.index(Path(f).suffix.lower()))
    if folder is not None and len(candidates) > 1:
        others = ", ".join(f for f in sorted(candidates) if f != chosen)
        log.warning("%s: kept %s, not %s (one name in several formats; lossless first)",
                    _rel(folder, root) if root else folder, chosen, others)
    return chosen


def _tracks_in_folder(root: Path, folder: Path, files: list[str]) -> list[Track]:
    by_base: dict[str, list[str]] = {}
    for f in files:
        by_base.setdefault(Path(f).stem, []).append(f)
    lower = {b.lower(): b for b in by_base}

    if SEED_MIX in lower:
        rel = folder.relative_to(root).as_posix()
        rel = folder.name if rel == "." else rel
        stems = {s: folder / _pick(by_base[lower[s]], folder, root) for s in STEM_NAMES if s in lower}
        mix = folder / _pick(by_base[lower[SEED_MIX]], folder, root)
        return [Track(id=track_id(rel), name=folder.name, rel=rel, mix=mix, stems=stems, layout="seed")]
    bare_stems = sorted(b for b in by_base if b.lower() in STEM_NAMES)
    if bare_stems:
        # drums.flac with no full_mix beside it is a stem of a missing mix, not a track "drums"
        log.warning("%s: %s without a %s.<ext> beside them: not a track (add the mix, or rename the files)",
                    _rel(folder, root) or ".", ", ".join(by_base[b][0] for b in bare_stems), SEED_MIX)
        for b in bare_stems:
            del by_base[b]

    stems_of: dict[str, dict[str, Path]] = {}
    stem_bases: set[str] = set()
    for base in by_base:
        m = _STEM_SUFFIX.match(base)
        if m and m.group("base") in by_base:
            stems_of.setdefault(m.group("base"), {})[m.group("stem").lower()] = folder / _pick(by_base[base], folder,
                                                                                              root)
            stem_bases.add(base)
    out = []
    for base, candidates in sorted(by_base.items()):
        if base in stem_bases:
            continue
        rel = (folder / base).relative_to(root).as_posix()
        out.append(
            Track(
                id=track_id(rel),
                name=base,
                rel=rel,
                mix=folder / _pick(candidates, folder, root),
                stems=stems_of.get(base, {}),
            )
        )
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
