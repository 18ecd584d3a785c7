"""``python -m sat_mir.build.preview +dataset=<name> [track=...] [n=8]``: prompt preview.

Loads the custom_metadata module the builder wrote and calls it exactly as
stable-audio-tools will, so what it prints is what training sees.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from omegaconf import DictConfig

from sat_mir.cli import hydra_entry
from sat_mir.errors import EXIT_CONFIG, EXIT_OK, ConfigError, SatMirError

log = logging.getLogger("sat_mir.build.preview")


def preview(sat_dir: Path, *, track: str | None, n: int, items: int = 1) -> list[tuple[str, list[str]]]:
    """[(item id, n prompts)] for the first ``items`` items matching ``track``."""
    module_path = sat_dir / "custom_metadata" / "sat_mir_metadata.py"
    if not module_path.exists():
        raise ConfigError(f"{module_path} does not exist: run `python -m sat_mir.build` for this dataset first")
    spec = importlib.util.spec_from_file_location("sat_mir_preview_metadata", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ids = [i for i, track_id in module.item_ids()
           if track is None or track.lower() in i.lower() or track.lower() in track_id.lower()]
    if not ids:
        raise ConfigError(f"no built item matches track={track!r}")
    out = []
    for iid in ids[:items]:
        out.append((iid, [module.get_custom_metadata({"sat_mir_id": iid}, None)["prompt"] for _ in range(n)]))
    return out


def _main(cfg: DictConfig) -> int:
    from sat_mir.settings import dataset_settings
    from sat_mir.store import Dataset

    try:
        ds = dataset_settings(cfg)
        track = cfg.get("track")
        if track is not None:
            # a track name resolves to its id through the catalog
            entry = Dataset.open(ds.output).find(str(track))
            if entry is not None:
                track = entry.id
        for iid, prompts in preview(ds.output / "sat", track=None if track is None else str(track),
                                    n=int(cfg.n), items=int(cfg.get("items", 1))):
            print(f"{iid}:")
            for p in prompts:
                print(f"  {p}")
    except SatMirError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    return EXIT_OK


main = hydra_entry("preview", _main)


if __name__ == "__main__":
    main()
