"""What a re-run over an extracted library costs when nothing changed: the whole
``python -m sat_mir.extract`` process, start-up included, and whether it imported a model
framework it did not need.

    .venv/bin/python tools/bench_noop.py [--tracks 1000]

Writes ``--tracks`` short WAV files (2 s, a tone each), extracts them once with the default
DSP extractors, then times three no-op re-runs and reports the median, the peak RSS of the
re-run process, and whether torch or TensorFlow was imported.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

EXTRACTORS = "[info,loudness,rhythm,stem_rhythm,spectral,peaks,tonal,chords,timbral]"
# printed by the re-run process itself at exit: what it loaded and its peak RSS
REPORT = ("import atexit, resource, sys; atexit.register(lambda: print('NOOP', "
          "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, 'torch' in sys.modules, "
          "'tensorflow' in sys.modules, file=sys.stderr)); import runpy; sys.argv = ['sat_mir.extract'] + "
          "sys.argv[1:]; runpy.run_module('sat_mir.extract', run_name='__main__')")


def library(root: Path, n: int, sr: int = 22050) -> None:
    t = np.arange(2 * sr) / sr
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * (110 + i % 400) * t) * (1 + (t * 2 % 1 < 0.1))
        folder = root / f"{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"t{i:05d}.wav", x.astype(np.float32), sr)


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--tracks", type=int, default=1000)
    ap.add_argument("--defaults", action="store_true",
                    help="the default extractor list (model extractors 'auto': off without their weights)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "lib", Path(tmp) / "out"
        library(root, args.tracks)
        cmd = ["+dataset=mine", f"dataset.root={root}", f"dataset.output={out}", "separation=none",
               "progress=false", *([] if args.defaults else [f"extractors={EXTRACTORS}"])]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sat_mir.extract", *cmd], check=True, capture_output=True, env=env)
        first = time.perf_counter() - t0
        runs, report = [], ""
        for _ in range(3):
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", REPORT, *cmd], check=True, capture_output=True, text=True,
                                  env=env)
            runs.append(time.perf_counter() - t0)
            report = next(line for line in done.stderr.splitlines() if line.startswith("NOOP"))
        _, rss, torch, tf = report.split()
        print(f"{args.tracks} tracks: first extraction {first:.1f} s; no-op re-run median {statistics.median(runs):.2f} s "
              f"({', '.join(f'{r:.2f}' for r in runs)}), peak RSS {rss} MB, torch imported: {torch}, "
              f"TensorFlow imported: {tf}")


if __name__ == "__main__":
    main()
