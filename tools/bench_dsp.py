"""Benchmark: the whole DSP feature set on mix + 4 stems of a 3-minute track, on one core.

    .venv/bin/python tools/bench_dsp.py [--minutes 3] [--repeat 3] [--default-allocator]

Prints CPU seconds and × real time for sat-mir (each signal decoded once, shared
STFT / onset envelope / beat grid through the analysis context) and for a naive
baseline that, like the seed pipeline, decodes the files again and recomputes its
own front end for every feature family (a fresh context per extractor), and the
ratio between them.  Like a worker (``sat_mir.run.worker.process_track``), it first lets the heap
keep freed memory (``sat_mir.run.allocator``); ``--default-allocator`` measures without that.
Never asserts on time.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core, as the acceptance figure is stated

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from sat_mir.audio import TrackContext, write_audio  # noqa: E402
from sat_mir.demo import SongSpec, render_song  # noqa: E402
from sat_mir.features import REGISTRY  # noqa: E402
from sat_mir.run.allocator import keep_freed_memory  # noqa: E402
from sat_mir.run.worker import _prepare_stems, release_stems, run_order  # noqa: E402

# extractors backed by neural models are not DSP
DSP = [name for name, cls in REGISTRY.items() if cls.device == "cpu"]


def render(folder: Path, minutes: float) -> dict[str, Path]:
    bars = int(minutes * 60 / (4 * 60 / 124.0))
    stems, _ = render_song(SongSpec("bench", bpm=124.0, beats_per_bar=4, tonic=7, mode="minor", bars=bars, seed=7))
    paths = {"mix": folder / "full_mix.flac"}
    write_audio(paths["mix"], np.sum(list(stems.values()), axis=0), sr=44100)
    for name, x in stems.items():
        paths[name] = folder / f"{name}.flac"
        write_audio(paths[name], x, sr=44100)
    return paths


def run_shared(sources: dict[str, Path], extractors, per: dict[str, float] | None = None) -> float:
    """The extractors on one context as a worker runs them (sat_mir.run.worker._each_pending):
    each stem prepared by every extractor that reads it while it is decoded, the stem readers
    first, then the stems let go and the mix-only extractors, timbral first."""
    t0 = time.process_time()
    ctx = TrackContext(sources)
    order = run_order(extractors)
    _prepare_stems(ctx, [ex for ex in order if "stems" in ex.signals])
    last = max((i for i, ex in enumerate(order) if "stems" in ex.signals), default=-1)
    for i, ex in enumerate(order):
        t1 = time.process_time()
        ex.compute(ctx)
        if per is not None:
            per[ex.name] = time.process_time() - t1
        if i == last:
            release_stems(ctx)
    return time.process_time() - t0


def run_naive(sources: dict[str, Path], extractors) -> float:
    t0 = time.process_time()
    for ex in extractors:
        ex.compute(TrackContext(sources))  # decode and front ends again for every family
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--default-allocator", action="store_true",
                    help="leave glibc's mmap threshold as it is (a worker raises it)")
    args = ap.parse_args()
    tuned = False if args.default_allocator else keep_freed_memory()
    extractors = [REGISTRY[n]() for n in DSP]
    with tempfile.TemporaryDirectory() as tmp:
        sources = render(Path(tmp), args.minutes)
        duration = TrackContext(sources).mix.duration_s
        run_shared(sources, extractors)
        runs = [run_shared(sources, extractors) for _ in range(args.repeat)]
        shared = float(np.median(runs))
        naive = float(np.median([run_naive(sources, extractors) for _ in range(args.repeat)]))
        per: dict[str, float] = {}
        run_shared(sources, extractors, per)
    print(f"{duration:.0f} s track, mix + 4 stems, one core; extractors: {', '.join(DSP)}")
    print(f"  heap keeps freed memory (sat_mir.run.allocator): {'yes' if tuned else 'no'}")
    print(f"  median of {args.repeat} runs after a warm-up (the best run of sat-mir: {min(runs):.2f} s CPU = "
          f"{duration / min(runs):.1f}x)")
    print(f"  sat-mir (decode once, shared front ends): {shared:6.2f} s CPU  = {duration / shared:5.1f}x real time")
    print(f"  naive (decode + front end per family):    {naive:6.2f} s CPU  = {duration / naive:5.1f}x real time")
    print(f"  speed-up: {naive / shared:.2f}x")
    print("  per extractor, in the worker's order (the stems' shared analysis is made while they are prepared):")
    for name, s in per.items():
        print(f"    {name:12s} {s:6.2f} s")


if __name__ == "__main__":
    main()
