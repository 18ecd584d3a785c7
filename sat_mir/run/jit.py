"""Keep numba's compiled-code cache healthy before workers use it.

librosa compiles parts of itself with numba and caches the machine code on disk.
On a fresh install, two worker processes compiling the same functions at once left
a cache that crashed every later process with a segmentation fault (seen here with
numba 0.60).  So before any worker runs, one short-lived process, holding a
machine-wide lock, compiles (or loads) everything the extractors need; if that
process dies, the cache is wiped and rebuilt.  Workers then only load it.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

__all__ = ["default_cache_dir", "prepare_jit_cache", "warm_up"]

log = logging.getLogger("sat_mir.run")
LOCK = Path(tempfile.gettempdir()) / "sat-mir-jit.lock"


def default_cache_dir() -> Path:
    base = os.environ.get("SAT_MIR_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sat-mir")
    return Path(base) / "numba"


def warm_up(names: Sequence[str]) -> None:
    """Run the named extractors' warm-ups in this process (see ``Extractor.warmup``)."""
    from sat_mir.features import REGISTRY

    for name in names:
        REGISTRY[name].warmup()


def _probe(names: Sequence[str]) -> subprocess.CompletedProcess:
    code = f"from sat_mir.run.jit import warm_up; warm_up({list(names)!r})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))


def prepare_jit_cache(names: Sequence[str]) -> None:
    """Make sure the JIT cache of ``names``' code is complete and loadable.

    Sets ``NUMBA_CACHE_DIR`` (unless the user did) to sat-mir's own cache folder,
    which this function may wipe; it must run before numba is imported in this
    process for the setting to reach it (it always reaches worker processes).
    """
    own = "NUMBA_CACHE_DIR" not in os.environ
    if own:
        os.environ["NUMBA_CACHE_DIR"] = str(default_cache_dir())
    cache = Path(os.environ["NUMBA_CACHE_DIR"])
    with FileLock(str(LOCK)):
        for attempt in (1, 2):
            proc = _probe(names)
            if proc.returncode == 0:
                return
            if proc.returncode < 0 and own and attempt == 1:
                log.warning("the JIT cache in %s crashed a process (signal %d); rebuilding it", cache,
                            -proc.returncode)
                shutil.rmtree(cache, ignore_errors=True)
                continue
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            log.warning("JIT warm-up failed (exit %d: %s); extraction goes on without it", proc.returncode, tail)
            return
