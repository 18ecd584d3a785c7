"""Keep numba's compiled-code cache healthy before workers use it.

librosa compiles parts of itself with numba and caches the machine code on disk.
On a fresh install, two worker processes compiling the same functions at once left
a cache that crashed every later process with a segmentation fault (seen here with
numba 0.60).  So before any worker runs, one short-lived process, holding a
machine-wide lock, compiles (or loads) everything the extractors need; if that
process dies, the cache is wiped and rebuilt.  Workers then only load it.

That probe costs a few seconds (a Python start-up plus loading every compiled function), so
a probe that passed leaves a stamp in sat-mir's cache folder, named for the interpreter, the
versions of numba, llvmlite, librosa, numpy and sat-mir, sat-mir's sources and the
extractors probed: later runs with the same stamp skip the probe.  And a command points
numba at that folder at its start (:func:`use_own_cache`), before anything imports numba,
so a run that computes in its own process (``jobs=1``) loads the compiled code instead of
compiling it again: numba reads ``NUMBA_CACHE_DIR`` once, when it is imported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock

__all__ = ["default_cache_dir", "prepare_jit_cache", "use_own_cache", "warm_up"]

log = logging.getLogger("sat_mir.run")
LOCK = Path(tempfile.gettempdir()) / "sat-mir-jit.lock"
_OWN = False  # this process pointed NUMBA_CACHE_DIR at sat-mir's folder (use_own_cache)


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


def use_own_cache() -> None:
    """Point numba at sat-mir's cache folder (which :func:`prepare_jit_cache` may wipe) unless
    the user set ``NUMBA_CACHE_DIR``.  Commands call it first thing: it reaches this process
    only if numba is not imported yet, and every worker process started after it."""
    global _OWN
    if "NUMBA_CACHE_DIR" not in os.environ:
        os.environ["NUMBA_CACHE_DIR"] = str(default_cache_dir())
        _OWN = True


def _owned() -> bool:
    return _OWN and os.environ.get("NUMBA_CACHE_DIR") == str(default_cache_dir())


def _stamp(cache: Path, names: Sequence[str]) -> Path:
    """The file that says a probe of ``names`` passed on this cache with this software."""
    from importlib.metadata import PackageNotFoundError, version

    import sat_mir

    def installed(dist: str) -> str | None:
        try:
            return version(dist)
        except PackageNotFoundError:
            return None

    package = Path(sat_mir.__file__).parent
    sources = max((p.stat().st_mtime_ns for p in package.rglob("*.py")), default=0)
    key = json.dumps([sys.executable, [installed(d) for d in ("numba", "llvmlite", "librosa", "numpy")],
                      sat_mir.__version__, str(package), sources, sorted(set(names))])
    return cache / f"sat-mir-ready-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def prepare_jit_cache(names: Sequence[str]) -> None:
    """Make sure the JIT cache of ``names``' code is complete and loadable.

    Sets ``NUMBA_CACHE_DIR`` (unless the user did) to sat-mir's own cache folder,
    which this function may wipe; it must run before numba is imported in this
    process for the setting to reach it (it always reaches worker processes).
    A probe that passed on sat-mir's own folder is not repeated (see the module's text).
    """
    use_own_cache()
    own = _owned()
    cache = Path(os.environ["NUMBA_CACHE_DIR"])
    with FileLock(str(LOCK)):
        stamp = _stamp(cache, names) if own else None
        if stamp is not None and stamp.is_file():
            return
        for attempt in (1, 2):
            proc = _probe(names)
            if proc.returncode == 0:
                if stamp is not None:
                    stamp.parent.mkdir(parents=True, exist_ok=True)
                    stamp.touch()
                return
            if proc.returncode < 0 and own and attempt == 1:
                log.warning("the JIT cache in %s crashed a process (signal %d); rebuilding it", cache,
                            -proc.returncode)
                shutil.rmtree(cache, ignore_errors=True)
                continue
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            log.warning("JIT warm-up failed (exit %d: %s); extraction goes on without it", proc.returncode, tail)
            return
