"""Write a tiny randomly initialised Audiobox Aesthetics checkpoint into a models folder, for tests and benchmarks.

    .venv/bin/python tools/make_tiny_audiobox.py MODELS_DIR [--seed 0] [--size tiny|base]

The file is ``<MODELS_DIR>/audiobox/checkpoint.pt``, where
:func:`sat_mir.models.audiobox.load_aesthetics` looks for the released checkpoint, and it
has the released file's format: a ``torch.save`` dict with

- ``state_dict``: ``AesMultiOutput``'s float32 parameters under a ``model.`` prefix (the
  package strips it on load);
- ``model_cfg``: the keys the package's ``AesPredictor`` reads (``proj_num_layer``,
  ``proj_ln``, ``proj_act_fn``, ``proj_dropout``, ``nth_layer``, ``use_weighted_layer_sum``,
  ``precision``, ``normalize_embed``, ``output_dim``), set as in the release (5-layer
  heads with layer norm, weighted sum of every encoder layer, normalised embedding);
- ``target_transform``: ``{axis: {"mean", "std"}}`` with the release's values, so the
  stand-in's ratings fall in the model's 1-10 range.

``--size tiny`` (default) adds ``model_cfg["encoder_cfg"]``, WavLM settings for a 2-layer,
64-wide encoder with a 32-channel convolutional front end of the real strides (20 ms
frames), relative position buckets and gated relative position bias: about 0.2 M
parameters, under 1 MB.  ``--size base`` writes the release's architecture (WavLM base, 12
layers of 768, about 95 M parameters, ~380 MB) with random weights: the package's own
``AesPredictor`` loads it unmodified, and it runs exactly as fast as the real model.

Weights are drawn with ``seed`` in a forked RNG; the same arguments give the same tensors.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

__all__ = ["BASE_MODEL_CFG", "TARGET_TRANSFORM", "TINY_ENCODER_CFG", "make_tiny_audiobox"]

# The released checkpoint's head settings (its config.json on the Hugging Face hub).
BASE_MODEL_CFG: dict = {
    "proj_num_layer": 5,
    "proj_ln": True,
    "proj_act_fn": "gelu",
    "proj_dropout": 0.0,
    "nth_layer": 13,
    "use_weighted_layer_sum": True,
    "precision": "32",
    "normalize_embed": True,
    "output_dim": 1,
}

# The released de-normalisation of each axis (mean and std of the training ratings).
TARGET_TRANSFORM: dict = {
    "CE": {"mean": 5.06865, "std": 1.93029},
    "CU": {"mean": 5.73633, "std": 1.75669},
    "PC": {"mean": 3.18591, "std": 1.86637},
    "PQ": {"mean": 6.57505, "std": 1.51466},
}

# WavLM base is 512-channel convolutions, 12 layers of 768 with 12 heads, 320 buckets; these
# keep each kind of layer (group-normed conv stack with the same strides, weight-normed
# positional convolution, gated relative position bias) at a size that rates a 10 s window
# in a few milliseconds.
TINY_ENCODER_CFG: dict = {
    "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
    "encoder_layers": 2,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 4,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "num_buckets": 32,
    "max_distance": 100,
}


def make_tiny_audiobox(models_dir: Path, *, seed: int = 0, size: str = "tiny") -> Path:
    """Write the stand-in checkpoint and return its path ``<models_dir>/audiobox/checkpoint.pt``.

    Parameters
    ----------
    models_dir : the models folder (created if missing); an existing checkpoint is replaced.
    seed : weights are drawn with this seed inside a forked RNG, so the caller's torch RNG
        state is untouched.
    size : "tiny" (a small encoder declared in ``model_cfg["encoder_cfg"]``) or "base" (the
        release's WavLM base).

    Raises
    ------
    ValueError
        ``size`` is neither "tiny" nor "base".
    """
    import torch
    from audiobox_aesthetics.model.aes import AesMultiOutput

    from sat_mir.models.audiobox import AUDIOBOX, CHECKPOINT, encoder_config

    if size not in ("tiny", "base"):
        raise ValueError(f"size must be 'tiny' or 'base', got {size!r}")
    encoder = dict(TINY_ENCODER_CFG) if size == "tiny" else None
    model_cfg = dict(BASE_MODEL_CFG)
    if encoder is not None:
        model_cfg["encoder_cfg"] = encoder
        model_cfg["nth_layer"] = encoder["encoder_layers"] + 1  # the input plus every layer, as in the release

    with torch.random.fork_rng(devices=[]), encoder_config(encoder):
        torch.manual_seed(seed)
        kwargs = {k: v for k, v in model_cfg.items() if k != "encoder_cfg"}
        net = AesMultiOutput(**kwargs, target_transform=TARGET_TRANSFORM)
    ckpt = {
        "state_dict": {f"model.{k}": v.detach().clone().contiguous() for k, v in net.state_dict().items()},
        "model_cfg": model_cfg,
        "target_transform": TARGET_TRANSFORM,
    }

    folder = Path(models_dir) / AUDIOBOX.folder
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / CHECKPOINT
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(ckpt, f)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("models_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", choices=("tiny", "base"), default="tiny")
    args = ap.parse_args()
    path = make_tiny_audiobox(args.models_dir, seed=args.seed, size=args.size)
    print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
