"""What the Hydra commands share: where their configs are, and how an entry point runs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["conf_dir", "hydra_entry"]

_PACKAGE = Path(__file__).resolve().parent


def conf_dir() -> str:
    """The config folder: ``sat_mir/conf`` inside an installed wheel (copied there from the
    clone's top-level ``conf/`` when the wheel is built), else the clone's own ``conf/`` (an
    editable install or a run from the clone)."""
    packaged = _PACKAGE / "conf"
    return str(packaged if packaged.is_dir() else _PACKAGE.parent / "conf")


def hydra_entry(config_name: str, run: Callable) -> Callable[[], None]:
    """A Hydra main for ``run(cfg) -> exit code``: the process exits with that code."""
    import hydra

    @hydra.main(version_base="1.3", config_path=conf_dir(), config_name=config_name)
    def main(cfg) -> None:
        code = run(cfg)
        if code:
            sys.exit(code)

    return main
