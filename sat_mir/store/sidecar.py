"""The per-track sidecar ``<output>/tracks/<id>/features.json``.

Layout (``schema_version`` 1)::

    {"schema_version": 1,
     "track": {"id", "name", "rel", "layout", "mix", "stems",
               "inputs": {signal: {"size", "mtime_ns", "sha256"}}},
     "features": {flat key: value},
     "provenance": {extractor: {"version", "config_hash", "inputs", "seconds",
                                "error", "keys", "absent", "flags", "finished_at", "run_id"}}}

Every change is a merge under a file lock (read, update, atomic replace), so
concurrent runs and extractors never lose each other's keys, and a run killed
at any instant leaves either the previous or the next complete file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from sat_mir.errors import SidecarError
from sat_mir.fsutil import atomic_write_json, sha256_file
from sat_mir.store.layout import sidecar_path, track_dir

__all__ = [
    "SCHEMA_VERSION",
    "ExtractorRecord",
    "fingerprint_inputs",
    "merge_extractor",
    "read_sidecar",
    "records",
    "sidecar_path",
    "stat_matches",
    "track_dir",
    "update_sections",
    "update_track",
]

SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 120.0


@dataclass
class ExtractorRecord:
    """Provenance of one extractor on one track."""

    version: str
    config_hash: str
    inputs: dict[str, str]  # signal → sha256 of the file the value was computed from
    seconds: float
    error: str | None = None
    keys: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # artifacts written beside the sidecar
    absent: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)
    finished_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    # which run wrote it: a record current because this very run wrote it (a retried item whose
    # first result was lost with a dead pool) is counted as done, not as already current
    run_id: str = ""

    def is_current(self, *, version: str, config_hash: str, inputs: dict[str, str] | None) -> bool:
        """Done, without error, by this version and config, on these inputs (when given)."""
        if self.error is not None or self.version != version or self.config_hash != config_hash:
            return False
        return inputs is None or self.inputs == inputs

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExtractorRecord:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def empty_sidecar() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "track": {}, "features": {}, "provenance": {}}


def read_sidecar(path: str | Path) -> dict[str, Any]:
    """The sidecar at ``path``, or an empty one when the file does not exist.

    Raises
    ------
    SidecarError
        The file is not valid JSON or not a sidecar of a known schema version.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty_sidecar()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SidecarError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); delete it to redo the track") from exc
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise SidecarError(f"{path}: schema_version {found!r} is not {SCHEMA_VERSION}")
    for section in ("track", "features", "provenance"):
        data.setdefault(section, {})
    return data


def records(sidecar: dict[str, Any]) -> dict[str, ExtractorRecord]:
    return {name: ExtractorRecord.from_dict(rec) for name, rec in sidecar.get("provenance", {}).items()}


def merge_extractor(
    path: str | Path,
    *,
    extractor: str,
    record: ExtractorRecord,
    values: dict[str, Any],
    track: dict[str, Any],
) -> dict[str, Any]:
    """Replace ``extractor``'s keys and provenance in the sidecar at ``path``; return the new sidecar.

    The keys this extractor wrote before are removed first, so a rerun that fails
    (``record.error``) or produces fewer keys leaves no stale values behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        data = read_sidecar(path)
        old = data["provenance"].get(extractor)
        for key in (old or {}).get("keys", []):
            data["features"].pop(key, None)
        if record.error is None:
            data["features"].update(values)
            record.keys = sorted(values)
        else:
            record.keys = []
        data["track"].update(track)
        data["provenance"][extractor] = asdict(record)
        atomic_write_json(path, data)
    return data


def update_sections(path: str | Path, **sections: dict[str, Any]) -> None:
    """Replace whole top-level sections other than ``features``/``provenance`` (e.g. a crop's
    ``crop`` and ``inherited``), keeping everything else."""
    if {"features", "provenance", "schema_version"} & set(sections):
        raise ValueError("features and provenance change only through merge_extractor")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        data = read_sidecar(path)
        data.update(sections)
        atomic_write_json(path, data)


def update_track(path: str | Path, track: dict[str, Any]) -> None:
    """Refresh only the ``track`` section (e.g. new mtimes of unchanged files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S):
        data = read_sidecar(path)
        data["track"].update(track)
        atomic_write_json(path, data)


def fingerprint_inputs(
    sources: dict[str, Path], known: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """``{signal: {size, mtime_ns, sha256}}`` for each source file.

    The SHA-256 of a file whose size and mtime equal ``known``'s is reused rather
    than re-read, so reruns cost a ``stat`` per file.
    """
    out = {}
    for signal, file in sources.items():
        st = os.stat(file)
        prev = (known or {}).get(signal) or {}
        if prev.get("size") == st.st_size and prev.get("mtime_ns") == st.st_mtime_ns and prev.get("sha256"):
            digest = prev["sha256"]
        else:
            digest = sha256_file(file)
        out[signal] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
    return out


def stat_matches(sources: dict[str, Path], known: dict[str, dict[str, Any]]) -> bool:
    """True when every source still has the size and mtime recorded in ``known``."""
    try:
        for signal, file in sources.items():
            st = os.stat(file)
            prev = known.get(signal) or {}
            if prev.get("size") != st.st_size or prev.get("mtime_ns") != st.st_mtime_ns:
                return False
    except OSError:
        return False
    return set(sources) == set(known)

