"""Atomic writes and the clean-up of temp files that killed runs leave behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sat_mir.fsutil import atomic_path, atomic_write_text, remove_stale_temp_files


def _killed_writer(target: Path) -> Path:
    """A process that dies by SIGKILL halfway through an atomic write; the temp file it left."""
    code = f"""
import sys, time
from sat_mir.fsutil import atomic_path
with atomic_path({str(target)!r}) as tmp:
    tmp.write_bytes(b"half")
    print(tmp, flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    tmp = Path(proc.stdout.readline().strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return tmp


def test_a_killed_writers_temp_file_is_removed_and_a_live_ones_kept(tmp_path):
    out = tmp_path / "out"
    atomic_write_text(out / "tracks" / "a" / "features.json", "{}\n")
    dead = _killed_writer(out / "tracks" / "b" / "features.json")
    assert dead.exists() and dead.name.startswith(".features.json.") and dead.name.endswith(".tmp")
    old_style = out / "crops" / ".x_000.flac.k2j3h.tmp"  # an older version's name: no writer in it
    old_style.parent.mkdir(parents=True)
    old_style.write_bytes(b"partial")
    fresh_old_style = out / "crops" / ".x_001.flac.aaaa.tmp"
    fresh_old_style.write_bytes(b"partial")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old_style, (day_ago, day_ago))
    with atomic_path(out / "tracks" / "c" / "features.json") as live:
        live.write_bytes(b"{}")
        removed = remove_stale_temp_files(out)
        assert live.exists()  # this process is still writing it
    assert sorted(removed) == sorted([dead, old_style])
    assert not dead.exists() and not old_style.exists() and fresh_old_style.exists()
    assert (out / "tracks" / "a" / "features.json").read_text() == "{}\n"
    assert (out / "tracks" / "c" / "features.json").read_bytes() == b"{}"
    assert remove_stale_temp_files(tmp_path / "missing") == []
