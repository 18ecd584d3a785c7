"""A worker's heap keeps freed memory: a large array freed and made again is not faulted in anew."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap

import pytest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# In a fresh process (the thresholds are process-wide): the page faults of making and freeing a
# 64 MB array, the way an analysis temporary is, before and after keep_freed_memory().
_PROBE = textwrap.dedent("""
    import json, resource
    import numpy as np
    from sat_mir.run.allocator import keep_freed_memory

    def faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        a = np.ones(16 << 20, dtype=np.float32)
        del a
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults()
    default = faults()
    kept = keep_freed_memory()
    again = keep_freed_memory()
    faults()  # the heap grows once
    print(json.dumps({"default": default, "kept": kept, "again": again, "tuned": faults()}))
""")


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_freed_arrays_reuse_the_heap():
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    assert r["kept"] is True and r["again"] is True
    # with glibc's defaults every 64 MB array is mapped afresh: 16,384 faults of 4 KB pages, or at
    # least 32 of 2 MB huge pages (numpy advises them); kept in the heap, it takes its old pages
    assert r["default"] >= 32
    assert r["tuned"] <= 2


def test_process_track_keeps_freed_memory(monkeypatch):
    from sat_mir.run import worker

    calls = []
    monkeypatch.setattr(worker, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(worker, "_each_pending", lambda task, compute: "done")
    assert worker.process_track(object()) == "done"
    assert calls == [1]
