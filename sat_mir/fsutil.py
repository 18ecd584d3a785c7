"""Atomic file output: write to a temp file beside the target, fsync, rename.

A reader (or a rerun after SIGKILL) therefore sees either the old file or the
complete new one, never a torn write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_HOST = socket.gethostname().replace("~", "-").replace("/", "-") or "localhost"
_UMASK = os.umask(0)
os.umask(_UMASK)

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "remove_stale_temp_files",
           "sha256_file"]


@contextlib.contextmanager
def atomic_path(target: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success it replaces ``target``.

    ``suffix`` keeps the extension for writers that choose the format from it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # The writer's host and pid are in the name, so a later run can tell a killed run's
    # leftovers from a file another live run is still writing (remove_stale_temp_files).
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.~{_HOST}~{os.getpid()}~", suffix=suffix + ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | Path, obj: Any, *, default: Callable[[Any], Any] | None = None) -> None:
    text = json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False, allow_nan=False, default=default)
    atomic_write_text(target, text + "\n")


_TEMP_NAME = re.compile(r"^\..+\.~(?P<host>[^~/]+)~(?P<pid>\d+)~[^/]*\.tmp$")
# A temp file with no writer in its name (older versions), or one written on another host
# (a shared output folder), is left alone until it is this old.
_FOREIGN_TEMP_AGE_S = 24 * 3600


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temp files that killed runs left under ``folder``; return them.

    A temp file is stale when the process that made it (this host, its pid) is gone.  Files
    of live writers, and of other hosts younger than a day, are kept.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    now = time.time()
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            path = Path(dirpath) / name
            m = _TEMP_NAME.match(name)
            if m and m["host"] == _HOST:
                stale = not _alive(int(m["pid"]))
            else:
                try:
                    stale = now - path.stat().st_mtime > _FOREIGN_TEMP_AGE_S
                except FileNotFoundError:
                    continue
            if stale:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
