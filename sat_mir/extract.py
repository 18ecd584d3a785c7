"""``python -m sat_mir.extract +dataset=<name>``: features for every track of a library.

Run with ``--help`` for the configuration groups and options.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sat_mir.cli import hydra_entry

from sat_mir.errors import (
    EXIT_CONFIG,
    EXIT_ITEMS_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    ConfigError,
    MissingExtraError,
    SatMirError,
    worst_exit,
)

__all__ = ["main", "run"]

log = logging.getLogger("sat_mir.extract")


TARGETS = ("tracks", "crops", "both")


def run(cfg: DictConfig) -> int:
    """Run extraction for a composed config; returns the process exit code (0 done, 1 some
    items failed, 2 invalid configuration, 3 a requested stage or model could not run).

    Stages: scan the library → separate tracks without stems → features of the tracks →
    cut crops → features of the crops.  Each stage skips what is already current.
    """
    from sat_mir.run.jit import use_own_cache

    use_own_cache()  # before anything imports numba (librosa does), or this process compiles again
    from tqdm.contrib.logging import logging_redirect_tqdm

    from sat_mir.catalog import check_stems, scan_library
    from sat_mir.demo import ensure_demo_library
    from sat_mir.features import build_extractors
    from sat_mir.fsutil import remove_stale_temp_files
    from sat_mir.run import run_extraction
    from sat_mir.runlog import start_run_log
    from sat_mir.settings import dataset_settings
    from sat_mir.store import write_catalog
    from sat_mir.store.keys import check_read_keys

    logging.getLogger("sat_mir").setLevel(str(cfg.get("log_level", "INFO")).upper())
    try:
        ds = dataset_settings(cfg)
        extractors = build_extractors(OmegaConf.to_container(cfg.extractors, resolve=True))
        for line in check_read_keys(extractors):
            log.warning("%s, and the extractor that writes it is off this run: it is read from earlier "
                        "runs' sidecars where present", line)
        separation = _separation_settings(cfg)
        crops = _crop_settings(cfg)
        executor = _executor_settings(cfg)
        target = str(cfg.get("target", "both"))
        if target not in TARGETS:
            raise ConfigError(f"target must be one of {list(TARGETS)}, got {target!r}")
        if ds.generate == "demo":
            ensure_demo_library(ds.root)
        tracks = check_stems(scan_library(ds.root, exclude=[ds.output]), ds.root)
        if executor.kind == "ray":
            from sat_mir.run.executor import actor_room, connect

            ray = connect(executor)
            actor_room(ray, executor)  # a model actor that fits, said now rather than after the features
            log.info("executor: Ray cluster with %g CPUs (%s)", ray.cluster_resources().get("CPU", 0),
                     executor.address or "local")
    except MissingExtraError as exc:
        log.error("%s", exc)
        return EXIT_UNAVAILABLE
    except SatMirError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    if not tracks:
        log.error("no audio files found under %s", ds.root)
        return EXIT_CONFIG
    ds.output.mkdir(parents=True, exist_ok=True)
    log_dir = start_run_log(ds.output, "extract", cfg)
    stale = remove_stale_temp_files(ds.output)
    if stale:
        log.info("removed %d temp file(s) an interrupted run left in %s", len(stale), ds.output)
    progress = bool(cfg.get("progress", True))
    common = dict(jobs=cfg.get("jobs"), overwrite=bool(cfg.get("overwrite", False)), progress=progress,
                  batch_size=int(cfg.get("model_batch", 8)), executor=executor,
                  signals_mb=None if cfg.get("signals_mb") is None else float(cfg.get("signals_mb")))
    with logging_redirect_tqdm():
        tracks, code = _separate(tracks, ds.output, separation, progress, executor)
        write_catalog(ds.output, ds.root, tracks)
        on_tracks = extractors
        if crops is not None and target == "crops":
            on_tracks = [ex for ex in extractors if crops.needs_downbeats and ex.name == "rhythm"]
        log.info("%d tracks in %s; extractors: %s; outputs: %s", len(tracks), ds.root,
                 ", ".join(e.name for e in on_tracks) or "none", ds.output)
        if on_tracks:
            summary = run_extraction(tracks, on_tracks, root=ds.root, output=ds.output, **common)
            (log.warning if summary.exit_code else log.info)("summary: %s", summary.line())
            code = worst_exit(code, summary.exit_code)
        if crops is not None:
            from sat_mir.crops import cut_tracks

            crop_tracks, cut_failed = cut_tracks(tracks, ds.output, crops, jobs=cfg.get("jobs"), progress=progress,
                                                 executor=executor)
            code = worst_exit(code, EXIT_ITEMS_FAILED if cut_failed else EXIT_OK)
            if crop_tracks and target != "tracks" and crops.features:
                log.info("%d crops; extractors: %s", len(crop_tracks), ", ".join(e.name for e in extractors))
                summary = run_extraction(crop_tracks, extractors, root=ds.output, output=ds.output,
                                         unit="crop", **common)
                (log.warning if summary.exit_code else log.info)("crops summary: %s", summary.line())
                code = worst_exit(code, summary.exit_code)
    log.info("log and config of this run: %s", log_dir)
    if code == EXIT_UNAVAILABLE:
        log.error("exit %d: a requested stage or model could not run (see above)", code)
    return code


def _executor_settings(cfg: DictConfig):
    from sat_mir.run.executor import ExecutorSettings

    return _settings(ExecutorSettings, cfg.get("executor"), "executor")


def _separation_settings(cfg: DictConfig):
    from sat_mir.separation.stage import SeparationSettings

    return _settings(SeparationSettings, cfg.get("separation"), "separation")


def _crop_settings(cfg: DictConfig):
    from sat_mir.crops.cut import CropSettings

    node = cfg.get("crops")
    if node is None or not node.get("enabled", False):
        return None
    opts = OmegaConf.to_container(node, resolve=True)
    opts.pop("enabled", None)
    if "stems" in opts:
        opts["stems"] = tuple(opts["stems"] or ())
    return _settings(CropSettings, opts, "crops")


def _settings(cls, node, group: str):
    from sat_mir.settings import options_to_dataclass

    opts = node if isinstance(node, dict) else (OmegaConf.to_container(node, resolve=True) if node else {})
    return options_to_dataclass(cls, opts, group)


def _separate(tracks, output: Path, settings, progress: bool, executor):
    from sat_mir.separation.stage import attach_stems, separate_tracks

    if not settings.enabled:
        return attach_stems(tracks, output, settings)[0], EXIT_OK
    tracks, summary = separate_tracks(tracks, output, settings, progress=progress, executor=executor)
    if summary.separated or summary.failed or summary.unavailable:
        (log.warning if summary.failed or summary.unavailable else log.info)("%s", summary.line())
    return tracks, worst_exit(EXIT_ITEMS_FAILED if summary.failed else EXIT_OK,
                              EXIT_UNAVAILABLE if summary.unavailable else EXIT_OK)


main = hydra_entry("extract", run)


if __name__ == "__main__":
    main()
