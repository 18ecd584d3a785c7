"""Benchmark: Demucs stem separation speed (× real time) on a synthetic track.

    .venv/bin/python tools/bench_separation.py --model htdemucs [--models-dir DIR] [--device cuda] [--seconds 60]
    .venv/bin/python tools/bench_separation.py --random-htdemucs --seconds 10     # no weights needed
    .venv/bin/python tools/bench_separation.py --tiny --seconds 10                # tools/make_tiny_demucs.py's model

``--random-htdemucs`` builds the released htdemucs architecture (about 42 M parameters:
channels 48, depth 4, 5 cross-transformer layers, bottom_channels 512, dconv_mode 3, 7.8 s
segment) with random weights, so it costs what the real model costs.  Separation goes
through ``sat_mir.separation`` exactly as in production (resampling when ``--sr`` is not
44.1 kHz, whole-track normalisation, ``apply_model`` with the given segment/overlap/shifts).
Prints load time, separation wall time and × real time (audio seconds per wall second);
never asserts on time.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from sat_mir.errors import SatMirError
from sat_mir.separation import DemucsSeparator, load_separator

# The released htdemucs (signature 955717e8): HTDemucs' defaults plus the settings of the
# Demucs v4 training grid (demucs/grids/mmi.py: dconv_mode 3, depth 4, 5 transformer layers,
# bottom_channels 512) and a segment of 10 s * 0.88 (repitch) - 1 s (random shift) = 7.8 s.
# That gives 41.98 M parameters, matching the ~84 MB half-precision file.
FULL_HTDEMUCS_KWARGS: dict = {
    "audio_channels": 2,
    "samplerate": 44100,
    "segment": Fraction(39, 5),
    "channels": 48,
    "depth": 4,
    "t_layers": 5,
    "bottom_channels": 512,
    "dconv_mode": 3,
}
SOURCES = ["drums", "bass", "other", "vocals"]


def synthetic_track(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """Stereo float32 ``[2, frames]``: bass line, chord pad and noise hits at 120 BPM."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    bass = 0.3 * np.sin(2 * np.pi * 55 * (1 + (np.floor(t) % 2) * 0.5) * t)
    chord = sum(0.08 * np.sin(2 * np.pi * f * t + p) for f, p in ((262, 0), (330, 1), (392, 2)))
    hits = 0.3 * rng.standard_normal(t.size) * np.exp(-40 * np.mod(t, 0.5))
    return np.stack([bass + chord + hits, bass + 0.7 * chord + hits]).astype(np.float32)


def _random_htdemucs(device: str | None, args) -> DemucsSeparator:
    from demucs.apply import BagOfModels
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    model = BagOfModels([HTDemucs(sources=SOURCES, **FULL_HTDEMUCS_KWARGS)])  # get_model returns a bag too
    return DemucsSeparator(model, name="random htdemucs", device=device, segment=args.segment,
                           overlap=args.overlap, shifts=args.shifts)


def _tiny(folder: Path) -> Path:
    spec = importlib.util.spec_from_file_location("make_tiny_demucs", Path(__file__).with_name("make_tiny_demucs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_tiny_demucs(folder, name="tiny_htdemucs")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--model", default="htdemucs")
    ap.add_argument("--models-dir", type=Path)
    ap.add_argument("--random-htdemucs", action="store_true", help="full-size htdemucs, random weights")
    ap.add_argument("--tiny", action="store_true", help="the tiny stand-in model from make_tiny_demucs.py")
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--sr", type=int, default=44100)
    ap.add_argument("--segment", type=float, default=None)
    ap.add_argument("--overlap", type=float, default=0.25)
    ap.add_argument("--shifts", type=int, default=0)
    ap.add_argument("--batch-segments", type=int, default=8, help="segments per forward pass, compared with 1 (the default on CPU)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-separation-") as tmp:
        t0 = time.perf_counter()
        try:
            if args.random_htdemucs:
                sep = _random_htdemucs(args.device, args)
            else:
                name, models_dir = ("tiny_htdemucs", _tiny(Path(tmp))) if args.tiny else (args.model, args.models_dir)
                sep = load_separator(name, models_dir=models_dir, device=args.device, segment=args.segment,
                                     overlap=args.overlap, shifts=args.shifts)
        except SatMirError as exc:  # missing weights, bad option: one line, not a traceback
            raise SystemExit(f"error: {exc}") from None
        load_s = time.perf_counter() - t0

    params = sum(p.numel() for p in sep.model.parameters())
    track = synthetic_track(args.seconds, args.sr)
    # One short pass first: CUDA context, cuDNN autotuning and allocator warm-up are not
    # what a long run pays per track.
    sep.separate(track[:, : args.sr], args.sr)
    walls = {}
    for batch in dict.fromkeys((1, args.batch_segments)):  # one segment per pass = demucs' apply_model
        sep.batch_segments = batch
        if sep.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        stems = sep.separate(track, args.sr)
        if sep.device.startswith("cuda"):
            torch.cuda.synchronize()
        walls[batch] = time.perf_counter() - t0

    print(f"model       {sep.name} ({params / 1e6:.3f} M parameters, {len(sep.model.sources)} sources)")
    print(f"device      {sep.device} ({torch.get_num_threads()} CPU threads)")
    print(f"settings    segment={sep.segment or 'model default'} overlap={sep.overlap} shifts={sep.shifts}")
    print(f"audio       {args.seconds:g} s stereo at {args.sr} Hz -> {len(stems)} stems")
    print(f"load        {load_s:.2f} s")
    for batch, wall in walls.items():
        print(f"separation  {wall:.2f} s wall = {args.seconds / wall:.2f} x real time "
              f"({batch} segment(s) per pass)")
    if len(walls) == 2:
        print(f"batched / one at a time: {walls[1] / walls[args.batch_segments]:.2f}x faster")


if __name__ == "__main__":
    main()
