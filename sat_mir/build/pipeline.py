"""The build, step by step, on plain settings (the Hydra entry point only translates config)."""

from __future__ import annotations

import io
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sat_mir.audio.content import PITCHED, RHYTHMIC, SOUND_DB
from sat_mir.build.bins import WordBins, fit_bins, fixed_bins
from sat_mir.build.chunks import write_item_audio
from sat_mir.build.conditioning import NumberSpec, fit_numbers, merge_model_config, numbers_for
from sat_mir.build.confidence import trusted_facts
from sat_mir.build.corpus import ITEM_KINDS, BuildItem, corpus_items, load_corpus
from sat_mir.build.keys import check_feature_keys
from sat_mir.build.manifest import write_metadata_folder
from sat_mir.build.material import item_material
from sat_mir.build.sat_files import dataset_config, write_dataset_configs, write_training_notes
from sat_mir.build.shards import json_bytes, plan_shards, write_shards
from sat_mir.build.validate import validate_audio_items, validate_prompts
from sat_mir.errors import EXIT_ITEMS_FAILED, EXIT_OK, ConfigError, WeightsError
from sat_mir.features.registry import confidence_keys
from sat_mir.fsutil import atomic_path, atomic_write_json

__all__ = ["BuildSettings", "BuildSummary", "run_build"]

MIN_TRACK_S = 1.0  # shorter, or with less sound than this, a track is no training material

log = logging.getLogger("sat_mir.build")
LATENT_FORMATS = ("pre_encoded", "wds_latents")
FORMATS = ("audio_dir", "wds", *LATENT_FORMATS)
SAO_DOWNLOAD = (
    "huggingface-cli download stabilityai/stable-audio-open-1.0 model_config.json vae_model.ckpt "
    "--local-dir {dir}"
)


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
    peak_policy: str = "normalize"
    allow_non_music: bool = False  # train on tracks that are noise, a DC offset, near-silence or under 1 s  # sources over full scale: normalize | reject | clip (audio/headroom.py)
    shard_size: int = 256
    num_workers: int = 2
    seed: int = 0
    batch_size: int = 8
    encode_workers: int = 2
    latent_dtype: str = "float32"
    device: str | None = None
    progress: bool = True


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


def _model_files(settings: BuildSettings) -> tuple[dict | None, Path | None, Path | None]:
    """(base model config, its path, VAE checkpoint path); raises when latents are asked for
    and the files are missing."""
    needs_vae = any(f in LATENT_FORMATS for f in settings.formats)
    d = settings.model_dir
    config_path = d / "model_config.json" if d else None
    ckpt = d / "vae_model.ckpt" if d else None
    missing = [p for p in (config_path, ckpt) if p is None or not p.exists()]
    if needs_vae and missing:
        where = d if d else Path("models/stable-audio-open-1.0")
        raise WeightsError(
            f"latent formats need the Stable Audio model files, missing: "
            f"{', '.join(str(p) for p in missing) if d else 'dataset.models is not set'}. Download them with\n  "
            + SAO_DOWNLOAD.format(dir=where)
            + "\nor build without latents: formats=[audio_dir,wds]"
        )
    if config_path is None or not config_path.exists():
        return None, None, None
    return json.loads(config_path.read_text()), config_path, ckpt


def not_music(features: dict[str, Any]) -> str | None:
    """Why a track with these features is no training material (noise, a DC offset,
    near-silence, under a second), or None.  Tracks measured before the content keys existed
    are not judged."""
    dur, sound = features.get("duration_s"), features.get("sound_s")
    ton, pulse = features.get("tonality"), features.get("pulse_clarity")
    if isinstance(dur, (int, float)) and dur < MIN_TRACK_S:
        return f"{dur:.2f} s long, under {MIN_TRACK_S:g} s"
    if isinstance(sound, (int, float)) and sound < MIN_TRACK_S:
        return f"only {sound:.2f} s above {SOUND_DB:g} dBFS (silence or a DC offset)"
    if isinstance(ton, (int, float)) and isinstance(pulse, (int, float)) and ton < PITCHED and pulse < RHYTHMIC:
        return f"neither pitched content nor a pulse (tonality {ton:.2f}, pulse clarity {pulse:.2f}): noise"
    return None


def run_build(settings: BuildSettings) -> BuildSummary:
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
    base_model, base_model_path, vae_ckpt = _model_files(settings)
    sample_rate = int(base_model["sample_rate"]) if base_model else 44100
    channels = int(base_model.get("audio_channels", 2)) if base_model else 2
    sample_size = int(base_model["sample_size"]) if base_model else None
    # chunk length; None only matters when a track needs chunks (corpus_items says so)
    item_s = settings.item_seconds or (sample_size / sample_rate if sample_size else None)
    if item_s is not None and (sample_size is None or settings.item_seconds):
        sample_size = int(round(item_s * sample_rate))

    # 1. corpus and items
    _, tracks = load_corpus(settings.output)
    summary.tracks = len(tracks)
    usable = []
    for t in tracks:
        if t.duration_s is None:
            reason = ("no features (extraction failed: " + "; ".join(f"{k}: {v}" for k, v in t.errors.items()) + ")"
                      if t.errors else "no features (not extracted yet)")
            summary.left_out[t.name] = reason
            log.warning("left out track %s: %s", t.name, reason)
        elif not settings.allow_non_music and (why := not_music(t.features)):
            summary.left_out[t.name] = why
            log.warning("left out track %s: %s (allow_non_music=true keeps it)", t.name, why)
        else:
            usable.append(t)
    items, unusable = corpus_items(settings.output, usable, kind=settings.items, chunk_s=item_s,
                                   min_fraction=settings.min_fraction)
    for name, reason in unusable.items():
        summary.left_out[name] = reason
        log.warning("left out %s: %s", name, reason)
    n_crops = sum(it.kind == "crop" for it in items)
    log.info("items (%s): %d crops, %d chunks", settings.items, n_crops, len(items) - n_crops)
    if sample_size and sample_rate:
        long = [it for it in items if it.kind == "crop" and it.duration_s * sample_rate > sample_size * 1.001]
        if long:
            log.warning("%d crops are longer than the model's sample_size (%.2f s): SAT trains on their first "
                        "%.2f s (match crops.length to sample_size at the track rate to use all of them)",
                        len(long), sample_size / sample_rate, sample_size / sample_rate)

    # 2. audio items (also the validation of what SAT will decode)
    needs_audio = any(f in ("audio_dir", "wds") for f in settings.formats)
    audio_dir = sat / "audio"
    gains: dict[str, float] = {}  # item id -> gain put into its audio file (peak_policy=normalize)
    if needs_audio:
        chunks = write_item_audio(items, audio_dir, sample_rate=sample_rate, channels=channels,
                                  peak_policy=settings.peak_policy, progress=settings.progress)
        summary.failed.update(chunks.failed)
        summary.left_out.update(chunks.left_out)
        gains = chunks.gains
        invalid = validate_audio_items([it.id for it in items if it.id not in chunks.failed], audio_dir,
                                       channels=channels)
        for iid, reason in invalid.items():
            summary.left_out[iid] = reason
            log.warning("left out item %s: %s", iid, reason)
        items = [it for it in items if it.id not in chunks.failed and it.id not in chunks.left_out
                 and it.id not in invalid]

    # 3. prompts material, corpus bins, numbers
    p = settings.prompts
    bins: list[WordBins] = []
    for key, spec in (p.get("bins") or {}).items():
        if spec.get("edges") is not None:
            try:
                b = fixed_bins(key, spec["name"], list(spec["words"]), list(spec["edges"]))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        else:
            b = fit_bins(key, spec["name"], spec["words"], [it.features.get(key) for it in items])
        if b:
            bins.append(b)
    # facts below their confidence are not stated (features.parquet keeps them all)
    confidence_of = confidence_keys()
    facts: dict[str, dict] = {}
    unsure: dict[str, int] = {}
    for it in items:
        facts[it.id], dropped = trusted_facts(it.features, settings.min_confidence, confidence_of)
        for key in dropped:
            unsure[key] = unsure.get(key, 0) + 1
    if unsure:
        log.info("left out of prompts and numbers below their confidence (min_confidence): %s",
                 ", ".join(f"{k} on {n} item(s)" for k, n in sorted(unsure.items())))
    c = settings.conditioning
    number_keys = list(c.get("numbers") or [])
    specs: list[NumberSpec] = fit_numbers(
        number_keys, {k: [facts[it.id].get(k) for it in items] for k in number_keys},
        lower_q=c.get("lower_q", 0.01), upper_q=c.get("upper_q", 0.99), margin=c.get("margin", 0.05),
    ) if number_keys and items else []
    numbers: dict[str, dict[str, float]] = {}
    kept: list[BuildItem] = []
    for it in items:
        nums = numbers_for(facts[it.id], specs, policy=c.get("missing", "fill"))
        if nums is None:
            summary.left_out[it.id] = "a numeric conditioning value is missing (conditioning.missing=reject)"
            continue
        numbers[it.id] = nums
        kept.append(it)
    items = kept
    user_meta = _user_metadata(items, p.get("metadata") or {}, settings.output)
    materials = {
        it.id: item_material(
            facts[it.id], bins=bins, controls=p.get("controls") or {}, tags=p.get("tags") or {},
            descriptions=p.get("descriptions") or [], metadata=user_meta.get(it.track.id),
            top_k=int(p.get("top_k", 5)), threshold=float(p.get("threshold", 0.1)),
        )
        for it in items
    }
    from custom_metadata.prompts import DEFAULT_RECIPE

    # null in the config = the default; the manifest states the whole recipe
    recipe = {**DEFAULT_RECIPE, **{k: v for k, v in (p.get("recipe") or {}).items() if v is not None}}
    bad_prompts = validate_prompts(materials, recipe, seed=settings.seed)
    for iid, reason in bad_prompts.items():
        summary.left_out[iid] = reason
        log.warning("left out item %s: %s", iid, reason)
    items = [it for it in items if it.id not in bad_prompts]
    if not items:
        raise ConfigError("no usable items: nothing to build (see the errors above)")

    # items of an earlier build that this one does not make (a crop re-cut into fewer crops,
    # a left-out item): SAT's audio_dir loader scans the folder, so they must go
    keep = {it.id for it in items}
    _prune(audio_dir, keep, (".flac",))
    _prune(sat / "latents", keep, (".npy", ".json"), protect=("details", "filelist"))

    # 4. latents
    latent_dir = sat / "latents"
    latent_frames = None
    if any(f in LATENT_FORMATS for f in settings.formats):
        from sat_mir.build.latents import EncodeItem, encode_items, load_autoencoder

        ae = load_autoencoder(base_model_path, vae_ckpt, device=settings.device)
        enc = encode_items(
            [EncodeItem(id=it.id, **_latent_source(it, audio_dir if needs_audio else None),
                        metadata={"sat_mir_id": it.id, "seconds_start": it.seconds_start,
                                  "seconds_total": it.seconds_total, "gain_db": gains.get(it.id, 0.0),
                                  **numbers[it.id]}) for it in items],
            ae, latent_dir, sample_size=sample_size, batch_size=settings.batch_size,
            num_workers=settings.encode_workers, latent_dtype=settings.latent_dtype,
            peak_policy=settings.peak_policy, progress=settings.progress,
        )
        for iid, reason in enc.left_out.items():
            summary.left_out[iid] = reason
            log.warning("left out item %s: %s", iid, reason)
        for iid, reason in enc.failed.items():
            summary.failed[iid] = f"latent encoding failed: {reason}"
            log.error("FAILED item %s: latent encoding: %s", iid, reason)
        latent_frames = sample_size // ae.downsampling_ratio
        log.info("latents: %d encoded, %d already present, %d failed (%.1f s of audio in %.1f s)",
                 enc.encoded, enc.skipped, len(enc.failed), enc.audio_seconds, enc.seconds)

    # 5. custom_metadata folder, shards, dataset configs
    module = write_metadata_folder(
        sat / "custom_metadata", items, materials=materials, numbers=numbers, recipe=recipe, seed=settings.seed,
        gains=gains, extra={"bins": [b.to_dict() for b in bins], "numbers": [s.to_dict() for s in specs]},
    )
    configs: dict[str, dict] = {}
    min_shards = max(1, settings.num_workers)
    by_id = {it.id: it for it in items}

    def item_json(iid: str) -> dict:
        it = by_id[iid]
        rng = random.Random(f"{settings.seed}:{iid}:frozen")
        from custom_metadata.prompts import sample_prompt

        return {"sat_mir_id": iid, "text": sample_prompt(materials[iid], rng, recipe),
                "seconds_start": it.seconds_start, "seconds_total": it.seconds_total, **numbers[iid]}

    if "audio_dir" in settings.formats:
        configs["audio_dir"] = dataset_config("audio_dir", audio_dir, module)
    if "wds" in settings.formats:
        shards = plan_shards([it.id for it in items], shard_size=settings.shard_size, min_shards=min_shards,
                             seed=settings.seed)
        write_shards(sat / "wds" / "audio", shards, lambda k: {
            "flac": (audio_dir / f"{k}.flac").read_bytes(), "json": json_bytes(item_json(k))})
        configs["wds"] = dataset_config("wds", sat / "wds" / "audio", module)
    latent_ids = [it.id for it in items if (latent_dir / f"{it.id}.npy").exists()]
    if "pre_encoded" in settings.formats:
        with atomic_path(latent_dir / "filelist.txt") as tmp:
            tmp.write_text("".join(f"{i}.npy\n" for i in sorted(latent_ids)))
        configs["pre_encoded"] = dataset_config("pre_encoded", latent_dir, module, latent_crop_length=latent_frames)
    if "wds_latents" in settings.formats:
        shards = plan_shards(latent_ids, shard_size=settings.shard_size, min_shards=min_shards, seed=settings.seed)

        def latent_members(k: str) -> dict[str, bytes]:
            buf = io.BytesIO()
            np.save(buf, np.load(latent_dir / f"{k}.npy"))
            meta = json.loads((latent_dir / f"{k}.json").read_text())
            return {"npy": buf.getvalue(), "json": json_bytes({**meta, **item_json(k)})}

        write_shards(sat / "wds" / "latents", shards, latent_members)
        configs["wds_latents"] = dataset_config("wds_latents", sat / "wds" / "latents", module,
                                                latent_crop_length=latent_frames)
    dataset_paths = write_dataset_configs(sat, configs)

    # 6. model configs, training notes, features table
    model_paths: dict[str, Path] = {}
    if base_model is not None:
        merged = merge_model_config(base_model, specs)
        model_paths["audio"] = sat / "model_config.json"
        atomic_write_json(model_paths["audio"], merged)
        pre = json.loads(json.dumps(merged))
        pre.setdefault("training", {})["pre_encoded"] = True
        model_paths["pre_encoded"] = sat / "model_config_pre_encoded.json"
        atomic_write_json(model_paths["pre_encoded"], pre)
    write_training_notes(sat, dataset_configs=dataset_paths, model_configs=model_paths,
                         numbers=[s.to_dict() for s in specs], items=len(items), tracks=len(usable),
                         num_workers=settings.num_workers)
    write_features_table(sat / "features.parquet", items, numbers)
    summary.items = len(items)
    summary.outputs = {**{f"dataset_{k}": v for k, v in dataset_paths.items()},
                       **{f"model_{k}": v for k, v in model_paths.items()}, "custom_metadata": module}
    summary.seconds = time.perf_counter() - t0
    return summary


def _prune(folder: Path, keep: set[str], suffixes: tuple[str, ...], protect: tuple[str, ...] = ()) -> None:
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.suffix in suffixes and path.stem not in keep and path.stem not in protect and path.is_file():
            log.info("removing %s: not an item of this build", path.name)
            path.unlink()


def _latent_source(item: BuildItem, audio_dir: Path | None) -> dict[str, Any]:
    """Where the encoder reads an item: its materialised audio file when the audio formats
    wrote one (already cut, resampled and validated: no second decode of the track),
    else the crop's own file, else the slice of the source track.  A crop's trailing
    padding is left to the encoder's own zero padding, so the latent's padding mask
    marks it."""
    real_s = item.duration_s - item.pad_s if item.pad_s > 0 else None
    if audio_dir is not None:
        return {"audio": audio_dir / f"{item.id}.flac", "start_s": 0.0, "duration_s": real_s}
    if item.source is not None:
        return {"audio": item.source, "start_s": 0.0, "duration_s": real_s}
    return {"audio": item.track.mix, "start_s": item.start_s, "duration_s": item.duration_s}


def _user_metadata(items: Sequence[BuildItem], cfg: dict[str, Any], output: Path) -> dict[str, dict[str, str]]:
    """{track id: {field: value}} when ``prompts.metadata.enabled``; {} otherwise."""
    if not cfg.get("enabled"):
        return {}
    from sat_mir.build.user_metadata import read_metadata_csv, track_metadata

    rows = read_metadata_csv(Path(cfg["csv"])) if cfg.get("csv") else None
    catalog = {t["id"]: t for t in json.loads((output / "catalog.json").read_text())["tracks"]}
    out = {}
    for it in items:
        t = it.track
        if t.id not in out:
            entry = catalog.get(t.id, {})
            out[t.id] = track_metadata(track_id=t.id, name=t.name, rel_paths=[entry.get("rel", ""), entry.get("mix", "")],
                                       mix=t.mix, fields=list(cfg.get("fields") or []), csv_rows=rows)
    return out


def write_features_table(path: Path, items: Sequence[BuildItem], numbers: dict[str, dict[str, float]]) -> None:
    """One row per item: ids, kind, timing, every scalar feature of the item (a chunk's are its
    track's, a crop's its own: see :func:`sat_mir.build.corpus.crop_features`), and its numeric
    conditionings."""
    import pandas as pd

    rows = []
    for it in items:
        row = {"item_id": it.id, "item_kind": it.kind, "track_id": it.track.id, "track": it.track.name,
               "start_s": it.start_s,
               "duration_s_item": it.duration_s, "seconds_start": it.seconds_start,
               "seconds_total": it.seconds_total}
        row.update({k: v for k, v in it.features.items() if isinstance(v, (int, float, str, bool))})
        row.update({f"cond_{k}": v for k, v in numbers[it.id].items()})
        rows.append(row)
    with atomic_path(path, suffix=".parquet") as tmp:
        pd.DataFrame(rows).to_parquet(tmp, index=False)
