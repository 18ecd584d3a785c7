"""Wall seconds, CPU seconds and peak resident memory of one command, as the command alone has it.

    .venv/bin/python tools/peak_rss.py COMMAND [ARGS...]        # prints "wall cpu rss_mb"

Why not ``os.wait4`` on the command straight from a benchmark: on Linux a child started by
``subprocess`` (vfork + exec) has its ``ru_maxrss`` raised to its *parent's* highest RSS so
far (the kernel folds the old address space's high-water mark into the process's maximum at
exec).  A benchmark that rendered or read a long track first reports that as every child's
peak: a 10-minute extraction read 1.49 GB under a benchmark whose render peaked there, and
1.24 GB run on its own.  So the command is started by a small ``python -S`` process that has
done nothing else (its own peak, about 10 MB, is the floor) and that reports the command's
``wait4`` figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import NamedTuple

# The starter: as little as Python can be, so that its high-water mark is the command's floor.
_STARTER = (
    "import os, sys, time, json\n"
    "t0 = time.perf_counter()\n"
    "pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)\n"
    "_, status, ru = os.wait4(pid, 0)\n"
    "os.write(int(sys.argv[1]), json.dumps([time.perf_counter() - t0, ru.ru_utime + ru.ru_stime,\n"
    "    ru.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)]).encode())\n"
)


class Measured(NamedTuple):
    wall_s: float
    cpu_s: float
    rss_mb: float
    returncode: int
    stderr: str


def measure(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> Measured:
    """Run ``cmd`` (stdout discarded, stderr kept) and return its own figures."""
    read, write = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-S", "-c", _STARTER, str(write), *cmd], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write,))
        os.close(write)
        write = -1
        err = proc.stderr.read().decode(errors="replace")
        proc.wait()
        with os.fdopen(read, "rb") as f:
            read = -1
            report = f.read()
    finally:
        for fd in (read, write):
            if fd >= 0:
                os.close(fd)
    if not report:
        raise RuntimeError(f"the starter of {cmd[0]} failed:\n{err[-2000:]}")
    wall, cpu, rss, code = json.loads(report)
    return Measured(wall, cpu, rss, code, err)


def figures(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of ``cmd``; a failing command stops the benchmark with its stderr."""
    m = measure(cmd, env)
    if m.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed:\n{m.stderr[-2000:]}")
    return m.wall_s, m.cpu_s, m.rss_mb


if __name__ == "__main__":
    m = measure(sys.argv[1:])
    sys.stderr.write(m.stderr)
    print(f"{m.wall_s:.2f} {m.cpu_s:.2f} {m.rss_mb:.0f}")
    sys.exit(m.returncode)
