"""``python -m sat_mir.build +dataset=<name>``: a stable-audio-tools training folder from the features.

Run with ``--help`` for the configuration groups and options.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sat_mir.cli import hydra_entry

from sat_mir.errors import EXIT_CONFIG, EXIT_UNAVAILABLE, MissingExtraError, SatMirError, WeightsError

log = logging.getLogger("sat_mir.build")


def run(cfg: DictConfig) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from sat_mir.audio.headroom import check_peak_policy
    from sat_mir.build.pipeline import BuildSettings, run_build
    from sat_mir.fsutil import remove_stale_temp_files
    from sat_mir.runlog import start_run_log
    from sat_mir.settings import dataset_settings

    logging.getLogger("sat_mir").setLevel(str(cfg.get("log_level", "INFO")).upper())
    try:
        ds = dataset_settings(cfg)
        model_dir = cfg.model.get("dir")
        settings = BuildSettings(
            output=ds.output,
            formats=tuple(cfg.formats),
            items=str(cfg.get("items", "auto")),
            model_dir=Path(str(model_dir)).expanduser().resolve() if model_dir else None,
            item_seconds=cfg.chunks.get("seconds"),
            min_fraction=float(cfg.chunks.get("min_fraction", 0.5)),
            prompts=OmegaConf.to_container(cfg.prompts, resolve=True),
            conditioning=OmegaConf.to_container(cfg.conditioning, resolve=True),
            min_confidence=OmegaConf.to_container(cfg.min_confidence, resolve=True) if cfg.get("min_confidence")
            else {},
            peak_policy=check_peak_policy(str(cfg.get("peak_policy", "normalize"))),
            allow_non_music=bool(cfg.get("allow_non_music", False)),
            shard_size=int(cfg.shards.size),
            num_workers=int(cfg.num_workers),
            seed=int(cfg.seed),
            batch_size=int(cfg.model.batch_size),
            encode_workers=int(cfg.model.num_workers),
            latent_dtype=str(cfg.model.latent_dtype),
            device=cfg.model.get("device"),
            progress=bool(cfg.get("progress", True)),
            sa3_captions=int(cfg.get("sa3", {}).get("captions", 1)),
            executor=_executor_settings(cfg),
        )
        log_dir = start_run_log(ds.output, "build", cfg)
        stale = remove_stale_temp_files(ds.output)
        if stale:
            log.info("removed %d temp file(s) an interrupted run left in %s", len(stale), ds.output)
        with logging_redirect_tqdm():
            summary = run_build(settings)
    except (WeightsError, MissingExtraError) as exc:
        log.error("%s", exc)
        return EXIT_UNAVAILABLE
    except SatMirError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    log.info("built %d items from %d tracks in %.1f s into %s", summary.items, summary.tracks, summary.seconds,
             ds.output / "sat")
    for name, path in summary.outputs.items():
        log.info("  %-22s %s", name, path)
    if summary.left_out:
        log.warning("%d track(s)/item(s) left out (see the lines above and %s)", len(summary.left_out), log_dir)
    if summary.failed:
        log.error("%d item(s) failed (see the lines above and %s)", len(summary.failed), log_dir)
    log.info("next: see %s", ds.output / "sat" / "TRAINING.md")
    return summary.exit_code


def _executor_settings(cfg: DictConfig):
    from sat_mir.run.executor import ExecutorSettings
    from sat_mir.settings import options_to_dataclass

    node = cfg.get("executor")
    return options_to_dataclass(ExecutorSettings, OmegaConf.to_container(node, resolve=True) if node else {},
                                "executor")


main = hydra_entry("build", run)


if __name__ == "__main__":
    main()
