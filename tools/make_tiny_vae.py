"""Write a tiny randomly initialised Stable Audio VAE (config + checkpoint) for tests and benchmarks.

    .venv/bin/python tools/make_tiny_vae.py OUT_DIR [--seed 0]

The architecture is Stable Audio Open's (oobleck encoder/decoder, ``vae`` bottleneck,
stereo, 44.1 kHz) shrunk until it encodes two minutes of audio in a few seconds on two
CPU cores: 2 base channels, strides [4, 8] (downsampling ratio 32), latent_dim 8
(the encoder emits 16 = mean + scale).  The checkpoint has the layout of Stability's
released unwrapped ``vae_model.ckpt``: ``{"state_dict": <AudioAutoencoder state dict>}``,
readable by stable-audio-tools' ``load_ckpt_state_dict``.  Same seed, same weights.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import warnings
from pathlib import Path

__all__ = ["TINY_VAE_CONFIG", "make_tiny_vae"]

# The full-size SAO VAE is channels 128, c_mults [1,2,4,8,16], strides [2,4,4,8,8]
# (ratio 2048), latent_dim 64.  Two channels at full rate keep the CPU cost down: the
# encoder's first block runs at the audio rate and dominates the time.
TINY_VAE_CONFIG: dict = {
    "model_type": "autoencoder",
    "sample_rate": 44100,
    "audio_channels": 2,
    "model": {
        "encoder": {
            "type": "oobleck",
            "config": {"in_channels": 2, "channels": 2, "c_mults": [1, 4], "strides": [4, 8],
                       "latent_dim": 16, "use_snake": True},
        },
        "decoder": {
            "type": "oobleck",
            "config": {"out_channels": 2, "channels": 2, "c_mults": [1, 4], "strides": [4, 8],
                       "latent_dim": 8, "use_snake": True, "final_tanh": False},
        },
        "bottleneck": {"type": "vae"},
        "latent_dim": 8,
        "downsampling_ratio": 32,
        "io_channels": 2,
    },
}


def make_tiny_vae(out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``out_dir/model_config.json`` and ``out_dir/vae_model.ckpt``; return both paths.

    Weights are drawn with ``seed`` inside a forked RNG, so the caller's torch RNG
    state is untouched and the same seed always gives the same tensors.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # importing SAT must never wait on the network
    import torch

    from sat_mir.fsutil import atomic_write_bytes, atomic_write_json

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # SAT prints a flash-attn notice on import, imports clip (pkg_resources
        # UserWarning) and builds WNConv1d with torch's deprecated weight_norm.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from stable_audio_tools.models.factory import create_model_from_config

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = create_model_from_config(json.loads(json.dumps(TINY_VAE_CONFIG)))
            # Snake alpha/beta start at exactly 0 (log scale); jitter them so that a
            # checkpoint which failed to load is distinguishable from a fresh model.
            for name, p in model.named_parameters():
                if name.endswith((".alpha", ".beta")):
                    with torch.no_grad():
                        p.normal_(0.0, 0.1)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "model_config.json"
    ckpt_path = out_dir / "vae_model.ckpt"
    atomic_write_json(config_path, TINY_VAE_CONFIG)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    # Through a buffer: torch.save names the zip's root folder after the target file,
    # and the atomic temp name is random, which would make the bytes differ per run.
    buf = io.BytesIO()
    torch.save({"state_dict": state}, buf)
    atomic_write_bytes(ckpt_path, buf.getvalue())
    return config_path, ckpt_path


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    config_path, ckpt_path = make_tiny_vae(args.out_dir, seed=args.seed)
    print(f"{config_path} ({config_path.stat().st_size} bytes)")
    print(f"{ckpt_path} ({ckpt_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
