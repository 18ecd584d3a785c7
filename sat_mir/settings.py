"""Dataset settings taken out of the composed Hydra config (entry points only use this)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sat_mir.errors import ConfigError

__all__ = ["DatasetSettings", "dataset_settings", "options_to_dataclass"]


@dataclass(frozen=True)
class DatasetSettings:
    name: str
    root: Path
    output: Path
    generate: str | None = None


def dataset_settings(cfg: Any) -> DatasetSettings:
    """Validate ``cfg.dataset`` (an OmegaConf node) into plain paths.

    Raises
    ------
    ConfigError
        No dataset chosen, ``root`` missing, or ``output`` inside ``root``.
    """
    from omegaconf import OmegaConf

    if "dataset" not in cfg or cfg.dataset is None:
        raise ConfigError(
            "no dataset chosen: add +dataset=demo, or +dataset=mine dataset.root=/path/to/music"
        )
    ds = cfg.dataset
    if OmegaConf.is_missing(ds, "root"):
        raise ConfigError(
            f"dataset.root is required for dataset {ds.get('name', '?')!r}: "
            "add dataset.root=/path/to/music"
        )
    for key in ("root", "output"):
        if not ds.get(key):
            raise ConfigError(f"dataset.{key} must be a path, got {ds.get(key)!r}")
    root = Path(str(ds.root)).expanduser().resolve()
    output = Path(str(ds.output)).expanduser().resolve()
    if output == root or root in output.parents:
        raise ConfigError(
            f"dataset.output={str(output)!r} lies inside dataset.root={str(root)!r}; the library is "
            "read-only, so choose an output folder outside it"
        )
    return DatasetSettings(name=str(ds.get("name", root.name)), root=root, output=output,
                           generate=ds.get("generate"))


def options_to_dataclass(cls: type, options: Mapping[str, Any], where: str, *, ignore: tuple[str, ...] = ()):
    """``cls(**options)`` for a settings dataclass, refusing keys it does not have.

    Raises
    ------
    ConfigError
        An option ``cls`` does not know (the message lists the known ones), or a value its
        constructor refuses; ``where`` names the config group.
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known - set(ignore))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; known: {sorted(known) or 'none'}")
    try:
        return cls(**{k: v for k, v in options.items() if k in known})
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
