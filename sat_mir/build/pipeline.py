"""The build on plain settings (the Hydra entry point only translates config): the steps of
:mod:`sat_mir.build.steps`, called in order."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sat_mir.build import steps
from sat_mir.build.corpus import ITEM_KINDS
from sat_mir.build.steps import AUDIO_FORMATS, FORMATS, LATENT_FORMATS, not_music
from sat_mir.errors import EXIT_ITEMS_FAILED, EXIT_OK, ConfigError
from sat_mir.run.executor import LOCAL, ExecutorSettings
from sat_mir.store.keys import check_feature_keys

__all__ = ["FORMATS", "BuildSettings", "BuildSummary", "not_music", "run_build"]

log = logging.getLogger("sat_mir.build")


@dataclass(frozen=True)
class BuildSettings:
    output: Path
    formats: tuple[str, ...] = FORMATS
    items: str = "auto"  # see sat_mir.build.corpus.corpus_items
    model_dir: Path | None = None
    item_seconds: float | None = None
    min_fraction: float = 0.5
    prompts: dict[str, Any] = field(default_factory=dict)
    conditioning: dict[str, Any] = field(default_factory=dict)
    # confidence key -> minimum: values below it are left out of prompts and numbers ({} = none)
    min_confidence: dict[str, float] = field(default_factory=dict)
    peak_policy: str = "normalize"  # sources over full scale: normalize | reject | clip (audio/headroom.py)
    allow_non_music: bool = False  # train on tracks that are noise, a DC offset, near-silence or under 1 s
    shard_size: int = 256
    num_workers: int = 2
    seed: int = 0
    batch_size: int = 8
    encode_workers: int = 2
    latent_dtype: str = "float32"
    device: str | None = None
    progress: bool = True
    sa3_captions: int = 1  # sa3_data_dir: captions (duplicated clips) per item
    executor: ExecutorSettings = LOCAL  # where the latent encoding runs (local, or Ray actors)


@dataclass
class BuildSummary:
    tracks: int = 0
    items: int = 0
    # left out by a data decision (no features, silent chunk, missing value under "reject",
    # empty prompt material): warnings
    left_out: dict[str, str] = field(default_factory=dict)  # item or track → reason
    # could not be built (decoding, writing or encoding failed): errors, exit code 1
    failed: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_ITEMS_FAILED if self.failed else EXIT_OK


def run_build(settings: BuildSettings) -> BuildSummary:
    """Build the training folder ``<output>/sat``; see :mod:`sat_mir.build.steps` for each step.

    Raises
    ------
    ConfigError
        A setting is invalid, or no item is left to build.
    WeightsError
        Latent formats are asked for and the model files are missing.
    """
    t0 = time.perf_counter()
    unknown = sorted(set(settings.formats) - set(FORMATS))
    if unknown:
        raise ConfigError(f"unknown format(s) {unknown}; choose from {list(FORMATS)}")
    if settings.items not in ITEM_KINDS:
        raise ConfigError(f"items must be one of {list(ITEM_KINDS)}, got {settings.items!r}")
    check_feature_keys(settings.prompts, settings.conditioning)
    summary = BuildSummary()
    sat = settings.output / "sat"
    sat.mkdir(parents=True, exist_ok=True)
    model = steps.model_files(settings)

    dataset, usable, items = steps.select_items(settings, model, summary)
    needs_audio = any(f in AUDIO_FORMATS for f in settings.formats)
    audio_dir = sat / "audio"
    gains: dict[str, float] = {}
    if needs_audio:
        items, gains = steps.write_audio(items, audio_dir, settings, model, summary)
    facts = steps.prompt_facts(items, settings.min_confidence)
    bins = steps.word_bins(items, settings.prompts.get("bins") or {})
    items, specs, numbers = steps.condition_numbers(items, facts, settings.conditioning, summary)
    items, materials, recipe = steps.prompt_materials(items, facts, bins, dataset, settings, summary)
    if not items:
        raise ConfigError("no usable items: nothing to build (see the errors above)")
    keep = {it.id for it in items}
    steps.prune(audio_dir, keep, (".flac",))
    steps.prune(sat / "latents", keep, (".npy", ".json"), protect=("details", "filelist"))

    latent_frames = None
    if any(f in LATENT_FORMATS for f in settings.formats):
        latent_frames, hop = steps.encode_latents(items, model, sat / "latents", audio_dir if needs_audio else None,
                                                  gains, numbers, settings, summary)
        steps.write_series(items, dataset, sat / "latents",
                           steps.latent_series_grids(sat / "latents", model.sample_rate, hop), "latents")
    if "sa3_data_dir" in settings.formats:
        steps.write_series(items, dataset, sat / "sa3_series", steps.clip_series_grids(audio_dir),
                           "Stable Audio 3's latent frames")
    module, dataset_paths = steps.write_formats(sat, items, materials=materials, numbers=numbers, recipe=recipe,
                                                gains=gains, bins=bins, specs=specs, latent_frames=latent_frames,
                                                settings=settings)
    model_paths = steps.write_model_files(sat, model, specs, dataset_paths=dataset_paths, items=items,
                                          numbers=numbers, tracks=len(usable), settings=settings)
    summary.items = len(items)
    summary.outputs = {**{f"dataset_{k}": v for k, v in dataset_paths.items()},
                       **{f"model_{k}": v for k, v in model_paths.items()}, "custom_metadata": module}
    summary.seconds = time.perf_counter() - t0
    return summary
