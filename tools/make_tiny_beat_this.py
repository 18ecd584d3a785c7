"""Write a small, randomly initialised Beat This! checkpoint into a models folder, for tests.

    .venv/bin/python tools/make_tiny_beat_this.py MODELS_DIR [--seed 0]

The file is ``MODELS_DIR/beat_this/final0.ckpt`` in the layout of the released checkpoints
(a PyTorch Lightning checkpoint stripped of its optimiser state): ``{"hyper_parameters":
{BeatThis arguments}, "state_dict": {"model.<parameter>": tensor}}``, so the package's own
``beat_this.inference.load_model`` (what ``sat_mir.models.beat_this.load_tracker`` calls)
reads it exactly as it reads ``final0``.  The architecture is the real one with small widths
(transformer 16 wide, one block; about 56 k parameters, 0.3 MB) and the released
front end (128 mel bands); generated when needed, never committed.  The same seed gives the
same weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sat_mir.fsutil import atomic_path
from sat_mir.models import beat_this as bt

__all__ = ["TINY_HPARAMS", "make_tiny_beat_this"]

TINY_HPARAMS = {"spect_dim": 128, "transformer_dim": 16, "ff_mult": 2, "n_layers": 1, "head_dim": 8, "stem_dim": 8,
                "dropout": {"frontend": 0.1, "transformer": 0.2}, "sum_head": True, "partial_transformers": True}


def make_tiny_beat_this(models_dir: Path, *, seed: int = 0) -> Path:
    """Write the stand-in checkpoint under ``models_dir`` and return its path."""
    from beat_this.model.beat_tracker import BeatThis

    torch.manual_seed(seed)
    net = BeatThis(**TINY_HPARAMS)
    package = {
        # Lightning keeps every argument of the training module; load_model keeps BeatThis's own
        "hyper_parameters": {**TINY_HPARAMS, "lr": 0.0008, "note": f"random stand-in (seed {seed})"},
        "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()},
    }
    target = Path(models_dir) / bt.SPEC.folder / bt.CHECKPOINT
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        torch.save(package, f)
    return target


def main() -> None:
    from stand_in_cli import stand_in_main  # tools/ is on the path when run as a script

    stand_in_main(make_tiny_beat_this, __doc__)


if __name__ == "__main__":
    main()
