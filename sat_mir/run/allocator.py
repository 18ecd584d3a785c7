"""Let a worker's heap keep the memory numpy frees, for the next large array.

glibc hands an allocation over its mmap threshold (128 KB at first, rising with use to at most
32 MB) a fresh mapping, and gives it back to the kernel when it is freed; numpy advises huge
pages for arrays of 4 MB and more.  Every large temporary of the analysis (a 3-minute stereo
signal is 64 MB, its band spectrogram more) is then faulted in and zeroed by the kernel again,
one temporary after the other.  On ``tools/bench_dsp.py``'s 3-minute track with four stems that
was 1.0-1.2 s of system CPU in 7.2-7.5 s.  With the threshold raised, freed arrays go back to
the heap and the next array of the same size takes their pages: 0.03 s of system CPU.

The heap then holds what was freed until a track's next array reuses it, and between two tracks
it no longer shrinks; freed blocks reused in place fragment it a little (``tools/bench_memory.py``,
a 10-minute track with four stems: peak RSS 1,129 -> 1,213 MB, CPU 17 % less).  Only glibc has
``mallopt``; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

log = logging.getLogger("sat_mir.run")

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Arrays under 1 GiB come from the heap (a 10-minute stereo signal is 211 MB); free memory at its
# top is given back once over 1 GiB.
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 1 << 30

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds in this process (once); True when they were set."""
    global _done
    if _done is None:
        _done = _set_thresholds()
    return _done


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # the mmap threshold first, and never the trim threshold alone: that switches off glibc's
    # dynamic mmap threshold and leaves it at 128 KB, which maps (and faults in) every array over
    # 128 KB afresh (1.9-2.4 s of system CPU on the benchmark)
    if not mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        log.debug("glibc refused an mmap threshold of %d bytes", MMAP_THRESHOLD)
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
