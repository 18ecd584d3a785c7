"""Benchmark: seconds of one CPU core for the tonal extractor on a synthetic 3-minute track.

    .venv/bin/python tools/bench_tonal.py [--minutes 3] [--sr 44100] [--repeat 3]

The track (mix plus the four demo stems) is rendered in memory; decoding is not
timed.  Each repeat uses a fresh analysis context, so nothing is memoised between
repeats.  Reported: wall and process CPU time of ``Tonal().compute`` with stems
(bass+other sum as the harmonic source, movement/variance for bass and other) and
of the mix-only case.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

from sat_mir.audio import Audio, TrackContext
from sat_mir.demo import SongSpec, render_song
from sat_mir.features.tonal import Tonal


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--sr", type=int, default=44100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    bars = round(args.minutes * 60 / 2.0)  # 120 BPM, 4/4: 2 s per bar
    stems, truth = render_song(SongSpec("bench", 120.0, 4, tonic=2, mode="minor", bars=bars, seed=7), sr=args.sr)
    signals = {"mix": np.sum(list(stems.values()), axis=0), **stems}
    print(f"{truth.duration_s:.0f} s at {args.sr} Hz, stereo; truth {truth.key}")

    def context(names) -> TrackContext:
        return TrackContext({n: Path(n) for n in names}, loader=lambda p: Audio(signals[str(p)], args.sr))

    for label, names in (("mix + stems", list(signals)), ("mix only", ["mix"])):
        wall, cpu = [], []
        for _ in range(args.repeat):
            ctx = context(names)
            for n in names:  # decode (here: wrap) outside the timing
                ctx.signal(n)
            t0, c0 = time.perf_counter(), time.process_time()
            values = Tonal().compute(ctx).values
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f"  {label:12s}: best {min(wall):.3f} s wall, {min(cpu):.3f} s CPU "
              f"(median {np.median(wall):.3f} s wall); key {values['key']}")


if __name__ == "__main__":
    main()
