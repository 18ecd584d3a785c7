"""Write a randomly initialised ADTOF Frame_RNN checkpoint into a models folder, for tests.

    .venv/bin/python tools/make_tiny_adtof.py MODELS_DIR [--seed 0]

The file is ``MODELS_DIR/adtof/adtof_frame_rnn_pytorch_weights.pth`` in the layout of the
converted checkpoint ADTOF-pytorch publishes: ``torch.save`` of ``{"model_weights":
{ADTOF-pytorch parameter name: float64 tensor}, "model_info": {...}}``, so
``sat_mir.models.adtof.load_transcriber(MODELS_DIR)`` reads it through the same key
mapping and strict load as the real weights.  The network's shapes are fixed by the
84-band front end, so the stand-in is full size (about 450 k parameters, 3.6 MB); it is
generated when needed, never committed.  The same seed gives the same bytes.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import torch

from sat_mir.models import adtof

__all__ = ["make_tiny_adtof"]


def make_tiny_adtof(models_dir: Path, *, seed: int = 0) -> Path:
    """Write the stand-in checkpoint under ``models_dir`` and return its path."""
    gen = torch.Generator().manual_seed(seed)
    net = adtof.FrameRNN()
    state = net.state_dict()
    for key, value in state.items():
        if key.endswith("running_var"):
            # positive variances around 1, like trained statistics
            state[key] = 0.5 + torch.rand(value.shape, generator=gen)
        elif key.endswith("running_mean"):
            state[key] = 0.1 * torch.randn(value.shape, generator=gen)
        elif key.endswith("weight") and value.ndim >= 2:
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=gen) / fan_in**0.5
        elif key.endswith("weight"):  # batch-norm scales
            state[key] = 1.0 + 0.1 * torch.randn(value.shape, generator=gen)
        else:
            state[key] = 0.05 * torch.randn(value.shape, generator=gen)
    package = {
        "model_weights": adtof.state_to_checkpoint(state),
        "model_info": {"architecture": "Frame_RNN", "n_bins": adtof.N_BINS, "conv_filters": [32, 64],
                       "gru_units": [60, 60, 60], "output_classes": len(adtof.CLASSES),
                       "conversion_note": f"random stand-in (seed {seed}) written by tools/make_tiny_adtof.py"},
    }
    folder = Path(models_dir) / adtof.SPEC.folder
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / adtof.WEIGHTS_FILE
    buf = io.BytesIO()  # a file object, not a path: torch then names the archive "archive", not after the file
    torch.save(package, buf)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def main() -> None:
    from stand_in_cli import stand_in_main  # tools/ is on the path when run as a script

    stand_in_main(make_tiny_adtof, __doc__)


if __name__ == "__main__":
    main()
