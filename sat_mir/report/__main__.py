"""``python -m sat_mir.report +dataset=<name>``: write ``<output>/report/index.html``.

Run with ``--help`` for the options.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from sat_mir.cli import hydra_entry
from sat_mir.errors import EXIT_CONFIG, EXIT_OK, SatMirError

log = logging.getLogger("sat_mir.report")


def run(cfg: DictConfig) -> int:
    from sat_mir.report import ReportSettings, collect, write_report
    from sat_mir.settings import dataset_settings, options_to_dataclass

    logging.getLogger("sat_mir").setLevel(str(cfg.get("log_level", "INFO")).upper())
    try:
        ds = dataset_settings(cfg)
        settings = options_to_dataclass(ReportSettings, OmegaConf.to_container(cfg.report, resolve=True), "report")
        data = collect(ds.output)
        page = write_report(data, settings)
    except SatMirError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    log.info("report of %d tracks and %d crops (%d failed or flagged values): %s", len(data.tracks),
             len(data.crops), sum(p.kind in ("failed", "flagged") for p in data.problems), page)
    return EXIT_OK


main = hydra_entry("report", run)


if __name__ == "__main__":
    main()
