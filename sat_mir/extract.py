"""``python -m sat_mir.extract +dataset=<name>``: features for every track of a library.

Run with ``--help`` for the configuration groups and options.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from sat_mir.errors import SatMirError

__all__ = ["main", "run"]

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
log = logging.getLogger("sat_mir.extract")


def run(cfg: DictConfig) -> int:
    """Run extraction for a composed config; returns the process exit code."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from sat_mir.catalog import scan_library
    from sat_mir.demo import ensure_demo_library
    from sat_mir.features import build_extractors
    from sat_mir.fsutil import atomic_write_json
    from sat_mir.run import run_extraction
    from sat_mir.runlog import start_run_log
    from sat_mir.settings import dataset_settings

    logging.getLogger("sat_mir").setLevel(str(cfg.get("log_level", "INFO")).upper())
    try:
        ds = dataset_settings(cfg)
        extractors = build_extractors(OmegaConf.to_container(cfg.extractors, resolve=True))
        if ds.generate == "demo":
            ensure_demo_library(ds.root)
        tracks = scan_library(ds.root, exclude=[ds.output])
    except SatMirError as exc:
        log.error("%s", exc)
        return 2
    if not tracks:
        log.error("no audio files found under %s", ds.root)
        return 2
    ds.output.mkdir(parents=True, exist_ok=True)
    log_dir = start_run_log(ds.output, "extract", cfg)
    atomic_write_json(ds.output / "catalog.json", {
        "root": str(ds.root),
        "tracks": [t.to_dict(ds.root) for t in tracks],
    })
    log.info("%d tracks in %s; extractors: %s; outputs: %s", len(tracks), ds.root,
             ", ".join(e.name for e in extractors), ds.output)
    with logging_redirect_tqdm():
        summary = run_extraction(
            tracks, extractors, root=ds.root, output=ds.output,
            jobs=cfg.get("jobs"), overwrite=bool(cfg.get("overwrite", False)),
            progress=bool(cfg.get("progress", True)),
        )
    (log.warning if summary.failed else log.info)("summary: %s", summary.line())
    log.info("log and config of this run: %s", log_dir)
    return summary.exit_code


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="extract")
def main(cfg: DictConfig) -> None:
    code = run(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
