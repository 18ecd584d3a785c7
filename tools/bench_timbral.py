"""Benchmark: the timbral extractor on a synthetic 3-minute stereo 44.1 kHz mix, on one core.

    .venv/bin/python tools/bench_timbral.py [--minutes 3] [--repeat 3]

Prints CPU seconds per minute of audio for the whole timbral set (a) with the onset
envelope already in the context, as in a run where the rhythm extractor computed
it, and (b) including that envelope; then (c) a naive baseline in which each of
the eight models gets a fresh context and so recomputes the preprocessing, the
spectrogram, the loudness pattern and the onsets, as the original package does
(still with this package's vectorised code, so the original's own cost is far
higher), and the ratio (c)/(a).  Never asserts on time.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core

import argparse
import time
from pathlib import Path

import numpy as np

from sat_mir.audio import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.demo import SongSpec, render_song
from sat_mir.features import timbral
from sat_mir.features.envelopes import rt60_blind

SR = 44100


def mix(minutes: float) -> np.ndarray:
    bars = int(minutes * 60 / (4 * 60 / 124.0)) + 1
    stems, _ = render_song(SongSpec("bench", bpm=124.0, beats_per_bar=4, tonic=7, mode="minor", bars=bars, seed=7))
    return np.sum(list(stems.values()), axis=0)[:, : int(minutes * 60 * SR)].astype(np.float32)


def context(samples: np.ndarray, envelope: bool) -> TrackContext:
    ctx = TrackContext({"mix": Path("<bench>")}, loader=lambda _: Audio(samples, SR))
    _ = ctx.mix.mono  # decoding and the channel mean belong to the pipeline, not to this extractor
    if envelope:
        c = timbral.Timbral.Config()
        ctx.mix.onset_envelope(sr=c.onset_sr, hop=c.onset_hop)
    return ctx


def shared(samples: np.ndarray, envelope_ready: bool) -> float:
    ctx = context(samples, envelope_ready)
    t0 = time.process_time()
    timbral.Timbral().compute(ctx)
    return time.process_time() - t0


def naive(samples: np.ndarray) -> float:
    c = timbral.Timbral.Config()
    total = 0.0
    for model in (*timbral.MODELS, "reverb"):
        ctx = context(samples, envelope=False)
        t0 = time.process_time()
        a = timbral._analyse(ctx.mix, c)
        if model == "reverb":
            rt60_blind(a.x, SR, grid=np.geomspace(c.rt60_min_s, c.rt60_max_s, c.rt60_steps))
        else:
            try:
                timbral._MODELS[model](a)
            except timbral._Undefined:
                pass
        total += time.process_time() - t0
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    samples = mix(args.minutes)
    timbral.Timbral.warmup()  # numba compilation is not part of the per-track cost
    minutes = samples.shape[1] / SR / 60.0
    a = min(shared(samples, True) for _ in range(args.repeat))
    b = min(shared(samples, False) for _ in range(args.repeat))
    c = naive(samples)
    print(f"timbral on {minutes:.1f} min of stereo {SR} Hz audio, one core (best of {args.repeat}):")
    print(f"  (a) onset envelope shared: {a:.2f} s  = {a / minutes:.2f} s per minute of audio")
    print(f"  (b) envelope included:     {b:.2f} s  = {b / minutes:.2f} s per minute of audio")
    print(f"  (c) naive, per model:      {c:.2f} s  = {c / minutes:.2f} s per minute of audio")
    print(f"  sharing gain (c)/(a): {c / a:.1f}x")


if __name__ == "__main__":
    main()
