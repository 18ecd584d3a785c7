"""Benchmark: seconds per track and per extractor on the demo songs, and the real-time factor.

    .venv/bin/python tools/bench_extract.py [--repeat 3]

Runs in-process (no worker pool) so the figures are the extractors' own cost,
decoding included once per signal as in a real run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sat_mir.audio import TrackContext
from sat_mir.catalog import scan_library
from sat_mir.demo import ensure_demo_library
from sat_mir.features import build_extractors


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = ensure_demo_library(Path(tempfile.gettempdir()) / "sat-mir-bench" / "library")
    tracks = scan_library(root)
    extractors = build_extractors({"info": {}, "loudness": {}, "rhythm": {}, "stem_rhythm": {}, "spectral": {}, "peaks": {}})
    audio_s = 0.0
    per_ex = {e.name: 0.0 for e in extractors}
    decode = 0.0
    for _ in range(args.repeat):
        for track in tracks:
            ctx = TrackContext(track.sources)
            t0 = time.perf_counter()
            for sig in track.sources:
                ctx.signal(sig)
            decode += time.perf_counter() - t0
            audio_s += ctx.mix.duration_s
            for ex in extractors:
                t0 = time.perf_counter()
                ex.compute(ctx)
                per_ex[ex.name] += time.perf_counter() - t0
    total = decode + sum(per_ex.values())
    print(f"{len(tracks)} tracks x {args.repeat}: {audio_s:.0f} s of audio (mix + {len(tracks[0].stems)} stems each)")
    print(f"  decode all signals: {decode / audio_s * 60:.2f} s per minute of audio")
    for name, s in per_ex.items():
        print(f"  {name:10s}: {s / audio_s * 60:.2f} s per minute of audio")
    print(f"  real-time factor (audio seconds per compute second): {audio_s / total:.1f}x")


if __name__ == "__main__":
    main()
