"""The command line the stand-in weight builders share: ``make_tiny_<model>.py MODELS_DIR [--seed N]``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def stand_in_main(make: Callable[..., Path], doc: str, report: Callable[[Path], None] = print) -> None:
    """Parse ``MODELS_DIR [--seed N]``, run ``make(models_dir, seed=N)`` and report what it wrote."""
    parser = argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()))
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report(make(args.models_dir, seed=args.seed))
