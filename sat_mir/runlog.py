"""Per-run log folder under the dataset's output: the composed config and a log file."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sat_mir.fsutil import atomic_write_text

__all__ = ["start_run_log"]


def start_run_log(output: Path, stage: str, cfg: DictConfig) -> Path:
    """Create ``<output>/logs/<stage>/<time>/`` with the composed config and a log file."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    folder = output / "logs" / stage / f"{stamp}_{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    handler = logging.FileHandler(folder / f"{stage}.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] %(message)s"))
    logging.getLogger().addHandler(handler)
    return folder
