"""What the Hydra commands share: where their configs are, and how an entry point runs."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["COMMANDS", "conf_dir", "hydra_entry", "main"]

# ``sat-mir <command> [overrides]`` runs the module's ``main`` (``python -m <module>`` works too)
COMMANDS = {
    "extract": ("sat_mir.extract", "features, stems and crops of every track of a library"),
    "build": ("sat_mir.build.__main__", "the stable-audio-tools training folder from the features"),
    "preview": ("sat_mir.build.preview", "prompts as training will draw them, for a built dataset"),
    "models": ("sat_mir.models.__main__", "list, check and download the model weights"),
    "report": ("sat_mir.report.__main__", "a static HTML report of a dataset (figures, failures, crops to play)"),
}

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


def main() -> None:
    """The ``sat-mir`` console script."""
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        width = max(map(len, COMMANDS))
        print("usage: sat-mir <command> [options]   (each command takes --help)\n\ncommands:")
        for name, (_, what) in COMMANDS.items():
            print(f"  {name:<{width}}  {what}")
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    command = sys.argv.pop(1)
    sys.argv[0] = f"sat-mir {command}"
    code = importlib.import_module(COMMANDS[command][0]).main()
    if code:
        sys.exit(code)
