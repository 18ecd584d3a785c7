"""The build's steps, one function each, in the order :func:`sat_mir.build.pipeline.run_build`
calls them:

1. :func:`select_items` - the tracks that are training material, cut into items (crops or chunks);
2. :func:`write_audio` - each item's audio file, read back the way SAT will decode it;
3. :func:`prompt_facts` and :func:`word_bins` - the values trusted enough to state, the corpus bins;
4. :func:`condition_numbers` - the numeric conditionings and their ranges;
5. :func:`prompt_materials` - what each item's prompts are drawn from, checked by drawing some;
6. :func:`encode_latents` - pre-encoded latents (SAT's autoencoder), then :func:`write_series` -
   each item's time series on the latent frames beside its latent;
7. :func:`write_formats` - the custom_metadata folder, the shards and the dataset configs;
8. :func:`write_model_files` - model configs, TRAINING.md and features.parquet.

Each step takes what the earlier ones produced and the settings, records what it leaves out or
fails in the :class:`~sat_mir.build.pipeline.BuildSummary`, and returns the items that go on.
(One module of about 400 lines, so the build reads top to bottom in the order it runs; the
work of each step lives in the module it imports.)
"""

from __future__ import annotations

import functools
import io
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sat_mir.audio.content import PITCHED, RHYTHMIC, SOUND_DB
from sat_mir.build.bins import WordBins, fit_bins, fixed_bins
from sat_mir.build.corpus import BuildItem, CorpusTrack, corpus_items, load_corpus
from sat_mir.errors import ConfigError, WeightsError
from sat_mir.fsutil import atomic_path, atomic_write_json

if TYPE_CHECKING:
    from sat_mir.build.conditioning import NumberSpec
    from sat_mir.build.pipeline import BuildSettings, BuildSummary
    from sat_mir.store import Dataset

__all__ = ["LATENT_FORMATS", "FORMATS", "ModelFiles", "condition_numbers", "encode_latents", "model_files",
           "not_music", "prompt_facts", "prompt_materials", "prune", "select_items", "word_bins", "write_audio",
           "write_features_table", "write_formats", "write_model_files", "write_series"]

log = logging.getLogger("sat_mir.build")

MIN_TRACK_S = 1.0  # shorter, or with less sound than this, a track is no training material
SAO_SAMPLE_SIZE, SAO_SAMPLE_RATE = 2097152, 44100  # Stable Audio Open 1.0's model_config.json
SA3_LATENT_HOP = 4096  # Stable Audio 3's autoencoder: 44.1 kHz / 4096 = 10.8 latent frames per second
LATENT_FORMATS = ("pre_encoded", "wds_latents")
# formats whose items are written as audio files first (sat/audio/<item>.flac)
AUDIO_FORMATS = ("audio_dir", "wds", "sa3_data_dir")
FORMATS = ("audio_dir", "wds", *LATENT_FORMATS, "sa3_data_dir")
SAO_DOWNLOAD = (
    "huggingface-cli download stabilityai/stable-audio-open-1.0 model_config.json vae_model.ckpt "
    "--local-dir {dir}"
)


@dataclass(frozen=True)
class ModelFiles:
    """The Stable Audio model the items are made for (all None: no model, audio formats only)."""

    config: dict | None
    config_path: Path | None
    ckpt: Path | None
    sample_rate: int
    channels: int
    sample_size: int | None  # samples per item (the chunk length when set)
    item_s: float  # chunk length in seconds


def model_files(settings: BuildSettings) -> ModelFiles:
    """The base model config and VAE checkpoint; raises :class:`WeightsError` when latents are
    asked for and the files are missing."""
    needs_vae = any(f in LATENT_FORMATS for f in settings.formats)
    d = settings.model_dir
    config_path = d / "model_config.json" if d else None
    ckpt = d / "vae_model.ckpt" if d else None
    missing = [p for p in (config_path, ckpt) if p is None or not p.exists()]
    if needs_vae:
        from sat_mir.extras import require

        require("sat", "the latent formats (pre_encoded, wds_latents; formats=[audio_dir,wds] need none)")
    if needs_vae and missing:
        where = d if d else Path("models/stable-audio-open-1.0")
        raise WeightsError(
            f"latent formats need the Stable Audio model files, missing: "
            f"{', '.join(str(p) for p in missing) if d else 'dataset.models is not set'}. Download them with\n  "
            + SAO_DOWNLOAD.format(dir=where)
            + "\nor build without latents: formats=[audio_dir,wds]"
        )
    base = json.loads(config_path.read_text()) if config_path is not None and config_path.exists() else None
    sample_rate = int(base["sample_rate"]) if base else SAO_SAMPLE_RATE
    sample_size = int(base["sample_size"]) if base else None
    item_s = settings.item_seconds or (sample_size / sample_rate if sample_size else None)
    if item_s is None:
        # the audio formats need no model: chunks as long as Stable Audio Open's training window
        item_s = SAO_SAMPLE_SIZE / SAO_SAMPLE_RATE
        log.info("no model config (dataset.models / model.dir): chunks of %.2f s, Stable Audio Open's "
                 "sample_size (chunks.seconds=... chooses another)", item_s)
    if sample_size is None or settings.item_seconds:
        sample_size = int(round(item_s * sample_rate))
    return ModelFiles(config=base, config_path=config_path if base else None, ckpt=ckpt if base else None,
                      sample_rate=sample_rate, channels=int(base.get("audio_channels", 2)) if base else 2,
                      sample_size=sample_size, item_s=item_s)


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


def _leave_out(summary: BuildSummary, what: str, reason: str, kind: str = "item") -> None:
    summary.left_out[what] = reason
    log.warning("left out %s%s: %s", f"{kind} " if kind else "", what, reason)


def select_items(settings: BuildSettings, model: ModelFiles,
                 summary: BuildSummary) -> tuple[Dataset, list[CorpusTrack], list[BuildItem]]:
    """Step 1: the dataset, its tracks that are training material, and their items."""
    dataset, tracks = load_corpus(settings.output)
    summary.tracks = len(tracks)
    usable = []
    for t in tracks:
        if t.duration_s is None:
            reason = ("no features (extraction failed: " + "; ".join(f"{k}: {v}" for k, v in t.errors.items()) + ")"
                      if t.errors else "no features (not extracted yet)")
            _leave_out(summary, t.name, reason, "track")
        elif not settings.allow_non_music and (why := not_music(t.features)):
            _leave_out(summary, t.name, f"{why} (allow_non_music=true keeps it)", "track")
            summary.left_out[t.name] = why
        else:
            usable.append(t)
    items, unusable = corpus_items(settings.output, usable, kind=settings.items, chunk_s=model.item_s,
                                   min_fraction=settings.min_fraction)
    for name, reason in unusable.items():
        _leave_out(summary, name, reason, "")
    n_crops = sum(it.kind == "crop" for it in items)
    log.info("items (%s): %d crops, %d chunks", settings.items, n_crops, len(items) - n_crops)
    if model.sample_size:
        size_s = model.sample_size / model.sample_rate
        long = [it for it in items if it.kind == "crop" and it.duration_s > size_s * 1.001]
        if long:
            log.warning("%d crops are longer than the model's sample_size (%.2f s): SAT trains on their first "
                        "%.2f s (match crops.length to sample_size at the track rate to use all of them)",
                        len(long), size_s, size_s)
    return dataset, usable, items


def write_audio(items: list[BuildItem], audio_dir: Path, settings: BuildSettings, model: ModelFiles,
                summary: BuildSummary) -> tuple[list[BuildItem], dict[str, float]]:
    """Step 2: each item's FLAC (also the check of what SAT will decode); the items that have one
    and ``{item id: gain_db}`` put into their audio (peak_policy=normalize)."""
    from sat_mir.build.chunks import write_item_audio
    from sat_mir.build.validate import validate_audio_items

    chunks = write_item_audio(items, audio_dir, sample_rate=model.sample_rate, channels=model.channels,
                              peak_policy=settings.peak_policy, progress=settings.progress)
    summary.failed.update(chunks.failed)
    summary.left_out.update(chunks.left_out)
    invalid = validate_audio_items([it.id for it in items if it.id not in chunks.failed], audio_dir,
                                   channels=model.channels)
    for iid, reason in invalid.items():
        _leave_out(summary, iid, reason)
    kept = [it for it in items if it.id not in chunks.failed and it.id not in chunks.left_out and it.id not in invalid]
    return kept, chunks.gains


def prompt_facts(items: Sequence[BuildItem], min_confidence: dict[str, float]) -> dict[str, dict]:
    """Step 3a: ``{item id: values}`` without the facts below their confidence (they are not
    stated; features.parquet keeps them all)."""
    from sat_mir.build.confidence import trusted_facts
    from sat_mir.features.registry import confidence_keys

    confidence_of = confidence_keys()
    facts: dict[str, dict] = {}
    unsure: dict[str, int] = {}
    for it in items:
        facts[it.id], dropped = trusted_facts(it.features, min_confidence, confidence_of)
        for key in dropped:
            unsure[key] = unsure.get(key, 0) + 1
    if unsure:
        log.info("left out of prompts and numbers below their confidence (min_confidence): %s",
                 ", ".join(f"{k} on {n} item(s)" for k, n in sorted(unsure.items())))
    return facts


def word_bins(items: Sequence[BuildItem], bins_cfg: dict[str, Any]) -> list[WordBins]:
    """Step 3b: the word bins of ``prompts.bins``, fixed edges or fitted on this corpus."""
    bins: list[WordBins] = []
    for key, spec in (bins_cfg or {}).items():
        if spec.get("edges") is not None:
            try:
                b = fixed_bins(key, spec["name"], list(spec["words"]), list(spec["edges"]))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        else:
            b = fit_bins(key, spec["name"], spec["words"], [it.features.get(key) for it in items])
        if b:
            bins.append(b)
    return bins


def condition_numbers(items: list[BuildItem], facts: dict[str, dict], c: dict[str, Any],
                      summary: BuildSummary) -> tuple[list[BuildItem], list[NumberSpec], dict[str, dict]]:
    """Step 4: the number conditioners' ranges fitted on the corpus, each item's numbers, and
    the items kept (``conditioning.missing=reject`` leaves out items missing one)."""
    from sat_mir.build.conditioning import fit_numbers, numbers_for

    number_keys = list(c.get("numbers") or [])
    specs = fit_numbers(
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
    return kept, specs, numbers


def prompt_materials(items: list[BuildItem], facts: dict[str, dict], bins: list[WordBins], dataset: Dataset,
                     settings: BuildSettings, summary: BuildSummary) -> tuple[list[BuildItem], dict, dict]:
    """Step 5: ``(items kept, {item id: prompt material}, recipe)``; an item whose drawn prompts
    come out empty or too long is left out."""
    from sat_mir.build.manifest import prompts_module
    from sat_mir.build.material import item_material
    from sat_mir.build.validate import validate_prompts

    p = settings.prompts
    user_meta = _user_metadata(items, p.get("metadata") or {}, dataset.root)
    materials = {
        it.id: item_material(
            facts[it.id], bins=bins, controls=p.get("controls") or {}, tags=p.get("tags") or {},
            descriptions=p.get("descriptions") or [], metadata=user_meta.get(it.track.id),
            top_k=int(p.get("top_k", 5)), threshold=float(p.get("threshold", 0.1)),
        )
        for it in items
    }
    # null in the config = the default; the manifest states the whole recipe
    recipe = {**prompts_module().DEFAULT_RECIPE, **{k: v for k, v in (p.get("recipe") or {}).items() if v is not None}}
    bad = validate_prompts(materials, recipe, seed=settings.seed)
    for iid, reason in bad.items():
        _leave_out(summary, iid, reason)
    return [it for it in items if it.id not in bad], materials, recipe


def _user_metadata(items: Sequence[BuildItem], cfg: dict[str, Any], root: Path) -> dict[str, dict[str, str]]:
    """{track id: {field: value}} when ``prompts.metadata.enabled``; {} otherwise."""
    if not cfg.get("enabled"):
        return {}
    from sat_mir.build.user_metadata import read_metadata_csv, track_metadata

    rows = read_metadata_csv(Path(cfg["csv"])) if cfg.get("csv") else None
    out = {}
    for it in items:
        t = it.track
        if t.id not in out:
            rel_paths = [t.entry.rel, t.entry.to_dict(root)["mix"]] if t.entry else []
            out[t.id] = track_metadata(track_id=t.id, name=t.name, rel_paths=rel_paths,
                                       mix=t.mix, fields=list(cfg.get("fields") or []), csv_rows=rows)
    return out


def prune(folder: Path, keep: set[str], suffixes: tuple[str, ...], protect: tuple[str, ...] = ()) -> None:
    """Remove items of an earlier build that this one does not make (a crop re-cut into fewer
    crops, a left-out item): SAT's audio_dir loader scans the folder, so they must go."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.suffix in suffixes and path.stem not in keep and path.stem not in protect and path.is_file():
            log.info("removing %s: not an item of this build", path.name)
            path.unlink()


def encode_latents(items: list[BuildItem], model: ModelFiles, latent_dir: Path, audio_dir: Path | None,
                   gains: dict[str, float], numbers: dict[str, dict], settings: BuildSettings,
                   summary: BuildSummary) -> tuple[int, int]:
    """Step 6: pre-encoded latents of every item (current ones are kept); returns the latent
    frames per item and the autoencoder's downsampling ratio (samples per latent frame).

    ``settings.executor`` on Ray: the items, grouped by source file, go in shares to Ray actors
    that load the autoencoder once each (``executor.num_gpus`` per actor, one per GPU by
    default).  This process first checks the folder against the checkpoint (stale latents
    removed, ``details.json`` written) with the autoencoder on the CPU, so the actors find it
    current and only add pairs; it writes ``filelist.txt`` when they are done."""
    from sat_mir.build.latents import EncodeItem, EncodeSummary, load_autoencoder, write_filelist

    enc_items = [EncodeItem(id=it.id, **latent_source(it, audio_dir),
                            metadata={"sat_mir_id": it.id, "seconds_start": it.seconds_start,
                                      "seconds_total": it.seconds_total, "gain_db": gains.get(it.id, 0.0),
                                      **numbers[it.id]}) for it in items]
    options = dict(sample_size=model.sample_size, batch_size=settings.batch_size,
                   num_workers=settings.encode_workers, latent_dtype=settings.latent_dtype,
                   peak_policy=settings.peak_policy)
    on_ray = settings.executor.kind == "ray"
    ae = load_autoencoder(model.config_path, model.ckpt, device="cpu" if on_ray else settings.device)
    ratio = ae.downsampling_ratio
    if not on_ray:
        enc = _encode_share(enc_items, model=model, latent_dir=latent_dir, device=settings.device, options=options,
                            progress=settings.progress, ae=ae)
    else:
        _encode_share([], model=model, latent_dir=latent_dir, device="cpu", options=options, progress=False, ae=ae)
        del ae  # the actors load their own
        from sat_mir.run.executor import execute_batches
        from sat_mir.run.pool import Crashed

        t0 = time.perf_counter()
        import torch

        # this process's torch threads: CPU kernels sum in an order that depends on them, and
        # latents encoded on CPU actors must equal this process's
        work = functools.partial(_encode_share, model=model, latent_dir=latent_dir, device=settings.device,
                                 options=options, progress=False, threads=torch.get_num_threads())
        parts = []
        for share, done in execute_batches(work, _shares(enc_items, 4 * settings.batch_size), settings.executor):
            if isinstance(done, Crashed):
                done = EncodeSummary(encoded=0, skipped=0, seconds=0.0, audio_seconds=0.0,
                                     failed={it.id: done.reason for it in share})
            parts.append(done)
        write_filelist(latent_dir, enc_items)
        enc = EncodeSummary(encoded=sum(p.encoded for p in parts), skipped=sum(p.skipped for p in parts),
                            failed={k: v for p in parts for k, v in p.failed.items()},
                            seconds=time.perf_counter() - t0, audio_seconds=sum(p.audio_seconds for p in parts),
                            left_out={k: v for p in parts for k, v in p.left_out.items()})
    for iid, reason in enc.left_out.items():
        _leave_out(summary, iid, reason)
    for iid, reason in enc.failed.items():
        summary.failed[iid] = f"latent encoding failed: {reason}"
        log.error("FAILED item %s: latent encoding: %s", iid, reason)
    log.info("latents: %d encoded, %d already present, %d failed (%.1f s of audio in %.1f s)",
             enc.encoded, enc.skipped, len(enc.failed), enc.audio_seconds, enc.seconds)
    return model.sample_size // ratio, ratio


def _shares(items: list, size: int) -> list[list]:
    """Consecutive shares of about ``size`` items, never splitting the items of one source file
    (each share decodes its files once)."""
    shares: list[list] = [[]]
    for i, item in enumerate(items):
        if len(shares[-1]) >= size and item.audio != items[i - 1].audio:
            shares.append([])
        shares[-1].append(item)
    return [share for share in shares if share]


_AUTOENCODERS: dict[tuple, Any] = {}


def _encode_share(items: list, *, model: ModelFiles, latent_dir: Path, device: str | None, options: dict,
                  progress: bool, ae=None, threads: int | None = None):
    """encode_items on ``items`` with the autoencoder loaded once per process (a Ray actor keeps it)."""
    from sat_mir.build.latents import encode_items, load_autoencoder

    if threads:
        import torch

        torch.set_num_threads(threads)

    if ae is None:
        key = (str(model.config_path), str(model.ckpt), device)
        if key not in _AUTOENCODERS:
            _AUTOENCODERS.clear()
            _AUTOENCODERS[key] = load_autoencoder(model.config_path, model.ckpt, device=device)
        ae = _AUTOENCODERS[key]
    return encode_items(items, ae, latent_dir, progress=progress, **options)


def write_series(items: Sequence[BuildItem], dataset: Dataset, folder: Path, grid_of, what: str) -> None:
    """Step 6b: ``<item>.series.npz`` in ``folder`` - each item's time series (extractor
    ``series``) on its latent frames (:mod:`sat_mir.build.series`); files of items this build
    does not make are removed."""
    from sat_mir.build.series import ITEM_SUFFIX, write_item_series

    folder.mkdir(parents=True, exist_ok=True)
    keep = {it.id for it in items}
    for path in folder.glob(f"*{ITEM_SUFFIX}"):
        if path.name[: -len(ITEM_SUFFIX)] not in keep:
            path.unlink()
    done = write_item_series(items, dataset, folder, grid_of)
    if done.missing:
        first = next(iter(done.missing.items()))
        log.warning("series (%s): %d item(s) without, e.g. %s: %s", what, len(done.missing), *first)
    log.info("series (%s): %d written, %d current in %s", what, done.written, done.skipped, folder)


def latent_series_grids(latent_dir: Path, sample_rate: int, hop: int):
    """``grid_of`` for :func:`write_series` beside SAT latents: each latent's own padding mask."""
    from sat_mir.build.series import latent_grid

    def grid_of(item: BuildItem):
        path = latent_dir / f"{item.id}.json"
        return (latent_grid(path, sample_rate=sample_rate, hop=hop), path) if path.is_file() else None

    return grid_of


def clip_series_grids(audio_dir: Path, hop: int = SA3_LATENT_HOP):
    """``grid_of`` for Stable Audio 3's clips: its pre-encode script encodes each whole clip, so
    the grid is as long as the clip."""
    import soundfile as sf

    from sat_mir.build.series import LatentGrid

    def grid_of(item: BuildItem):
        path = audio_dir / f"{item.id}.flac"
        if not path.is_file():
            return None
        info = sf.info(str(path))
        return LatentGrid.of_item(samples=info.frames, sample_rate=info.samplerate, hop=hop), path

    return grid_of


def latent_source(item: BuildItem, audio_dir: Path | None) -> dict[str, Any]:
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


def write_formats(sat: Path, items: list[BuildItem], *, materials: dict, numbers: dict[str, dict], recipe: dict,
                  gains: dict[str, float], bins: list[WordBins], specs: list[NumberSpec],
                  latent_frames: int | None, settings: BuildSettings) -> tuple[Path, dict[str, Path]]:
    """Step 7: the custom_metadata folder, then each format's files (shards, filelist) and its
    dataset config; returns the module and ``{format: dataset config path}``."""
    from sat_mir.build.manifest import prompts_module, write_metadata_folder
    from sat_mir.build.sat_files import dataset_config, write_dataset_configs
    from sat_mir.build.series import ITEM_SUFFIX as SERIES_SUFFIX
    from sat_mir.build.shards import json_bytes, plan_shards, write_shards

    module = write_metadata_folder(
        sat / "custom_metadata", items, materials=materials, numbers=numbers, recipe=recipe, seed=settings.seed,
        gains=gains, extra={"bins": [b.to_dict() for b in bins], "numbers": [s.to_dict() for s in specs]},
    )
    audio_dir, latent_dir = sat / "audio", sat / "latents"
    configs: dict[str, dict] = {}
    min_shards = max(1, settings.num_workers)
    by_id = {it.id: it for it in items}

    def item_json(iid: str) -> dict:
        # the one prompt a shard's json carries (SAT's wds loaders read "text" when no
        # custom_metadata module is given), drawn reproducibly per item
        it = by_id[iid]
        rng = random.Random(f"{settings.seed}:{iid}:frozen")
        return {"sat_mir_id": iid, "text": prompts_module().sample_prompt(materials[iid], rng, recipe),
                "seconds_start": it.seconds_start, "seconds_total": it.seconds_total, **numbers[iid]}

    if "audio_dir" in settings.formats:
        configs["audio_dir"] = dataset_config("audio_dir", audio_dir, module)
    if "sa3_data_dir" in settings.formats:
        from sat_mir.build.sa3 import write_sa3_folder

        clips = write_sa3_folder(sat / "sa3", [it.id for it in items], audio_dir, materials, recipe,
                                 seed=settings.seed, captions=settings.sa3_captions)
        log.info("sa3_data_dir: %d clips with captions in %s", clips, sat / "sa3")
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
            members = {"npy": buf.getvalue(), "json": json_bytes({**meta, **item_json(k)})}
            series = latent_dir / f"{k}{SERIES_SUFFIX}"
            if series.is_file():  # the time series on the latent frames (extractor `series`)
                members[SERIES_SUFFIX.lstrip(".")] = series.read_bytes()
            return members

        write_shards(sat / "wds" / "latents", shards, latent_members)
        configs["wds_latents"] = dataset_config("wds_latents", sat / "wds" / "latents", module,
                                                latent_crop_length=latent_frames)
    return module, write_dataset_configs(sat, configs)


def write_model_files(sat: Path, model: ModelFiles, specs: list[NumberSpec], *, dataset_paths: dict[str, Path],
                      items: list[BuildItem], numbers: dict[str, dict], tracks: int,
                      settings: BuildSettings) -> dict[str, Path]:
    """Step 8: the model configs with the conditioning block, TRAINING.md, features.parquet;
    returns ``{kind: model config path}``."""
    from sat_mir.build.conditioning import merge_model_config
    from sat_mir.build.sat_files import write_training_notes

    model_paths: dict[str, Path] = {}
    if model.config is not None:
        merged = merge_model_config(model.config, specs)
        model_paths["audio"] = sat / "model_config.json"
        atomic_write_json(model_paths["audio"], merged)
        pre = json.loads(json.dumps(merged))
        pre.setdefault("training", {})["pre_encoded"] = True
        model_paths["pre_encoded"] = sat / "model_config_pre_encoded.json"
        atomic_write_json(model_paths["pre_encoded"], pre)
    write_training_notes(sat, dataset_configs=dataset_paths, model_configs=model_paths,
                         numbers=[s.to_dict() for s in specs], items=len(items), tracks=tracks,
                         num_workers=settings.num_workers,
                         sa3_dir=sat / "sa3" if "sa3_data_dir" in settings.formats else None)
    write_features_table(sat / "features.parquet", items, numbers)
    return model_paths


def write_features_table(path: Path, items: Sequence[BuildItem], numbers: dict[str, dict[str, float]]) -> None:
    """One row per item: ids, kind, timing, every scalar feature of the item (a chunk's are its
    track's, a crop's its own: see :func:`sat_mir.store.item_values`), and its numeric
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
