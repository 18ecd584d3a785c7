"""Benchmark: latent pre-encoding throughput, batched with prefetching versus a pre_encode.py-style loop.

    .venv/bin/python tools/bench_latents.py [--items 12] [--seconds 12] [--batch-size 8] [--workers 2]
    .venv/bin/python tools/bench_latents.py --sao-arch     # full-size SAO VAE, random weights (for a GPU)

Synthetic 48 kHz stereo WAV files (so every item is also resampled to 44.1 kHz) are encoded
three ways with ``sat_mir.build.latents.encode_items``:

- baseline: batch 1, decoding inline, no prefetch (what SAT's pre_encode.py does per item,
  minus its DataLoader workers);
- batch 1 with decoding workers (SAT's pre_encode.py defaults: batch 1, 4 workers);
- batched with decoding workers (this project's default).

Prints items/s and × real time (audio seconds per wall second); never asserts on time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from sat_mir.build.latents import EncodeItem, encode_items, load_autoencoder  # noqa: E402

# Stable Audio Open 1.0's VAE (= SAT's configs/model_configs/autoencoders/stable_audio_2_0_vae.json).
SAO_VAE_CONFIG = {
    "model_type": "autoencoder",
    "sample_rate": 44100,
    "audio_channels": 2,
    "model": {
        "encoder": {"type": "oobleck", "config": {"in_channels": 2, "channels": 128, "c_mults": [1, 2, 4, 8, 16],
                                                  "strides": [2, 4, 4, 8, 8], "latent_dim": 128, "use_snake": True}},
        "decoder": {"type": "oobleck", "config": {"out_channels": 2, "channels": 128, "c_mults": [1, 2, 4, 8, 16],
                                                  "strides": [2, 4, 4, 8, 8], "latent_dim": 64, "use_snake": True,
                                                  "final_tanh": False}},
        "bottleneck": {"type": "vae"},
        "latent_dim": 64,
        "downsampling_ratio": 2048,
        "io_channels": 2,
    },
}


def _make_tiny(out: Path) -> tuple[Path, Path]:
    spec = importlib.util.spec_from_file_location("make_tiny_vae", Path(__file__).with_name("make_tiny_vae.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_tiny_vae(out)


def _make_sao(out: Path) -> tuple[Path, Path]:
    """SAO's VAE architecture with random weights (about 157 M parameters, ~0.6 GB on disk)."""
    import torch
    from stable_audio_tools.models.factory import create_model_from_config

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SAT's WNConv1d uses torch's deprecated weight_norm
        model = create_model_from_config(json.loads(json.dumps(SAO_VAE_CONFIG)))
    (out / "model_config.json").write_text(json.dumps(SAO_VAE_CONFIG))
    torch.save({"state_dict": model.state_dict()}, out / "vae_model.ckpt")
    return out / "model_config.json", out / "vae_model.ckpt"


def _write_audio(folder: Path, n: int, seconds: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sr = 48000
    t = np.arange(int(seconds * sr)) / sr
    paths = []
    for i in range(n):
        tone = np.sin(2 * np.pi * (110 + 20 * i) * t)[:, None]
        x = (0.3 * tone + 0.05 * rng.standard_normal((t.size, 2))).astype(np.float32)
        paths.append(folder / f"track{i:03d}.wav")
        sf.write(paths[-1], x, sr)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--items", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=12.0, help="length of each synthetic file and window")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sao-arch", action="store_true", help="full-size Stable Audio Open VAE, random weights")
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="sat-mir-bench-latents-") as tmp:
        tmp = Path(tmp)
        config, ckpt = (_make_sao if args.sao_arch else _make_tiny)(tmp / "vae")
        ae = load_autoencoder(config, ckpt, device=args.device)
        ratio = ae.downsampling_ratio
        sample_size = -(-int(args.seconds * ae.sample_rate) // ratio) * ratio
        paths = _write_audio(tmp / "audio", args.items, args.seconds)
        items = [EncodeItem(p.stem, p) for p in paths]
        name = "SAO-size VAE (random weights)" if args.sao_arch else "tiny VAE"
        print(f"{name}: ratio {ratio}, latent_dim {ae.latent_dim}, {ae.device} {str(ae.dtype).removeprefix('torch.')}; "
              f"{args.items} items x {args.seconds:g} s (48 kHz stereo WAV -> {ae.sample_rate} Hz), "
              f"sample_size {sample_size} -> {sample_size // ratio} frames")

        # Warm-up: first-call allocations and kernels are not what we measure.
        encode_items(items[:1], ae, tmp / "warmup", sample_size=sample_size, batch_size=1, num_workers=0, progress=False)

        runs = [
            ("baseline: batch 1, inline decode, no prefetch", 1, 0),
            (f"batch 1, {args.workers} decode workers", 1, args.workers),
            (f"batch {args.batch_size}, {args.workers} decode workers (encode_items)", args.batch_size, args.workers),
        ]
        base = None
        for i, (label, bs, workers) in enumerate(runs):
            t0 = time.perf_counter()
            s = encode_items(items, ae, tmp / f"run{i}", sample_size=sample_size, batch_size=bs,
                             num_workers=workers, progress=False)
            wall = time.perf_counter() - t0
            if s.failed:
                print(f"  {label}: {len(s.failed)} items failed: {next(iter(s.failed.values()))}")
            rate = s.encoded / wall
            base = base or rate
            print(f"  {label:58s} {rate:7.2f} items/s  {s.audio_seconds / wall:8.1f} x realtime  "
                  f"({rate / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
