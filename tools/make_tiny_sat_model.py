"""Write a tiny Stable Audio model folder: a ``diffusion_cond`` model config shaped like
Stable Audio Open's, with the tiny VAE as its pretransform, and the VAE checkpoint.

    .venv/bin/python tools/make_tiny_sat_model.py OUT_DIR [--seed 0]

OUT_DIR then holds what a user downloads for the real model (``model_config.json``
+ ``vae_model.ckpt``, as in the stabilityai/stable-audio-open-1.0 repository) plus
``vae_config.json``.  The builder loads it through the same code path as the real one.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

__all__ = ["make_tiny_sat_model", "tiny_diffusion_config"]

_HERE = Path(__file__).resolve().parent


def _tiny_vae_module():
    spec = importlib.util.spec_from_file_location("make_tiny_vae", _HERE / "make_tiny_vae.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_diffusion_config(vae_config: dict, *, sample_size: int = 262144) -> dict:
    """SAO's conditioning layout (t5 prompt + seconds_start/seconds_total) on a tiny DiT."""
    ae = vae_config["model"]
    return {
        "model_type": "diffusion_cond",
        "sample_size": sample_size,
        "sample_rate": vae_config["sample_rate"],
        "audio_channels": vae_config["audio_channels"],
        "model": {
            "pretransform": {"type": "autoencoder", "iterate_batch": False, "config": ae},
            "conditioning": {
                "configs": [
                    {"id": "prompt", "type": "t5", "config": {"t5_model_name": "t5-base", "max_length": 128}},
                    {"id": "seconds_start", "type": "number", "config": {"min_val": 0, "max_val": 512}},
                    {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}},
                ],
                "cond_dim": 64,
            },
            "diffusion": {
                "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
                "global_cond_ids": ["seconds_start", "seconds_total"],
                "type": "dit",
                "config": {
                    # SAT's rotary embedding needs embed_dim / num_heads >= 32, and with
                    # unprojected cond tokens cond_dim must be a multiple of that head size.
                    "io_channels": ae["latent_dim"], "embed_dim": 64, "depth": 2, "num_heads": 2,
                    "cond_token_dim": 64, "global_cond_dim": 128, "project_cond_tokens": False,
                    "transformer_type": "continuous_transformer",
                },
            },
            "io_channels": ae["latent_dim"],
        },
        "training": {
            "use_ema": False,
            "cfg_dropout_prob": 0.1,
            "log_loss_info": False,
            "optimizer_configs": {
                "diffusion": {"optimizer": {"type": "AdamW", "config": {"lr": 1e-4, "betas": [0.9, 0.999],
                                                                        "weight_decay": 1e-3}}}
            },
            "demo": {
                "demo_every": 2000, "demo_steps": 50, "num_demos": 2, "demo_cfg_scales": [3, 6],
                "demo_cond": [
                    {"prompt": "Amazing synth lead, 120 BPM", "seconds_start": 0, "seconds_total": 30},
                    {"prompt": "Calm piano, A minor", "seconds_start": 0, "seconds_total": 30},
                ],
            },
        },
    }


def make_tiny_sat_model(out_dir: Path, seed: int = 0, sample_size: int = 262144) -> Path:
    out_dir = Path(out_dir)
    config_path, _ = _tiny_vae_module().make_tiny_vae(out_dir, seed=seed)
    vae_config = json.loads(config_path.read_text())
    (out_dir / "vae_config.json").write_text(json.dumps(vae_config, indent=2) + "\n")
    (out_dir / "model_config.json").write_text(json.dumps(tiny_diffusion_config(vae_config, sample_size=sample_size), indent=2) + "\n")
    return out_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-size", type=int, default=262144,
                    help="training window in samples (a multiple of the VAE's 32; the demo uses its crop length)")
    args = ap.parse_args()
    print(make_tiny_sat_model(args.out_dir, seed=args.seed, sample_size=args.sample_size))


if __name__ == "__main__":
    main()
