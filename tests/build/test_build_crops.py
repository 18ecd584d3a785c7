"""The builder on crops: crop items read whole from the crop files, their own features and
timing, model tags and descriptions in the prompts, read back by stable-audio-tools' loaders."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
from pathlib import Path

import pytest

from conftest import REPO, built_items, load_tool

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE_SIZE = 262144  # the tiny model's sample_size; the crops are 524288 samples (11.9 s)
CROP_LENGTH = 524288
NUMBERS = ["bpm", "lufs"]
# essentia-style tags and a Music Flamingo answer, given to the first demo track before it is cut
TAGS = {
    "essentia_genre": {"Electronic---Synthwave": 0.61, "Electronic---Synth-pop": 0.34, "Rock---Punk": 0.04},
    "essentia_mood": {"energetic": 0.42, "melancholic": 0.02},
    "essentia_instrument": {"synthesizer": 0.77, "drummachine": 0.31},
    "flamingo_genre_mood": "Driving synthwave with a hopeful, nocturnal glow.",
}


def _put_features(output: Path, item_id: str, extractor: str, values: dict) -> None:
    from sat_mir.store.sidecar import ExtractorRecord, merge_extractor, sidecar_path

    merge_extractor(sidecar_path(output, item_id), extractor=extractor, values=values, track={},
                    record=ExtractorRecord(version="test", config_hash="test", inputs={}, seconds=0.0))


@pytest.fixture(scope="module")
def crop_build(tmp_path_factory, demo_library):
    """Demo songs with features, div4 crops (FLAC) with their own features, then a build."""
    import yaml

    from sat_mir.build.pipeline import BuildSettings, run_build
    from sat_mir.catalog import scan_library
    from sat_mir.crops import CropSettings, cut_track
    from sat_mir.features import build_extractors
    from sat_mir.fsutil import atomic_write_json
    from sat_mir.run import run_extraction

    base = tmp_path_factory.mktemp("build_crops")
    output = base / "out"
    output.mkdir()
    tracks = scan_library(demo_library)
    atomic_write_json(output / "catalog.json", {"root": str(demo_library),
                                                 "tracks": [t.to_dict(demo_library) for t in tracks]})
    extractors = build_extractors({"info": {}, "loudness": {}, "rhythm": {}})
    assert run_extraction(tracks, extractors, root=demo_library, output=output, jobs=1, progress=False).failed == 0
    tagged = tracks[0]
    _put_features(output, tagged.id, "essentia", {k: v for k, v in TAGS.items() if k.startswith("essentia")})
    _put_features(output, tagged.id, "flamingo", {"flamingo_genre_mood": TAGS["flamingo_genre_mood"]})
    settings = CropSettings(mode="div4", length=CROP_LENGTH, min_fraction=0.5)
    outcomes = [cut_track(t, output, settings) for t in tracks]
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    crops = [c for o in outcomes for c in o.crops]
    assert run_extraction(crops, extractors, root=output, output=output, jobs=1, progress=False,
                          unit="crop").failed == 0
    models = load_tool("make_tiny_sat_model").make_tiny_sat_model(base / "models")
    prompts = yaml.safe_load((REPO / "conf" / "prompts" / "default.yaml").read_text())
    summary = run_build(BuildSettings(
        output=output, formats=("audio_dir", "pre_encoded"), model_dir=models, prompts=prompts,
        conditioning={"numbers": NUMBERS, "missing": "fill"}, num_workers=1, progress=False,
    ))
    return output, tracks, crops, summary


def _manifest(output: Path) -> dict:
    return built_items(output / "sat")


def _sidecar(output: Path, crop_id: str) -> dict:
    from sat_mir.store.sidecar import read_sidecar, sidecar_path

    return read_sidecar(sidecar_path(output, crop_id))


def test_the_items_are_the_crops_with_their_timing(crop_build):
    output, tracks, crops, summary = crop_build
    assert summary.failed == {} and summary.left_out == {}
    assert summary.items == len(crops) >= 8
    manifest = _manifest(output)
    assert sorted(manifest) == sorted(c.id for c in crops)
    durations = {t.id: _sidecar(output, t.id)["features"]["duration_s"] for t in tracks}
    for crop in crops:
        info = _sidecar(output, crop.id)["crop"]
        item = manifest[crop.id]
        assert item["track_id"] == info["source_track"]
        assert item["seconds_start"] == math.floor(info["start_s"])
        assert item["seconds_total"] == math.ceil(durations[info["source_track"]])
    # a later crop of a track starts later in it: seconds_start is the crop's, not 0
    assert any(manifest[c.id]["seconds_start"] >= 10 for c in crops)


def test_sat_audio_dir_loader_reads_the_crop_audio(crop_build):
    import torch
    from stable_audio_tools.data.dataset import create_dataloader_from_config

    from sat_mir.audio import load_audio

    output, _, crops, _ = crop_build
    config = {**json.loads((output / "sat" / "dataset_audio_dir.json").read_text()), "random_crop": False}
    loader = create_dataloader_from_config(config, batch_size=4, sample_size=SAMPLE_SIZE, sample_rate=44100,
                                           audio_channels=2, num_workers=1, shuffle=False)
    files = {c.id: c.mix for c in crops}
    seen = set()
    for audio, infos in loader:
        for x, info in zip(audio, infos):
            iid = info["sat_mir_id"]
            seen.add(iid)
            ref = torch.from_numpy(load_audio(files[iid]).samples[:, :SAMPLE_SIZE])
            assert x.shape == ref.shape == (2, SAMPLE_SIZE)
            # SAT flips the phase at random; both files are 24-bit FLAC of the same samples
            err = min(float((x - ref).abs().max()), float((x + ref).abs().max()))
            assert err < 1e-5, (iid, err)
            assert info["prompt"].strip() and all(isinstance(info[k], float) for k in NUMBERS)
    assert seen == set(files)


def test_crop_items_use_the_crops_own_features(crop_build):
    import pandas as pd

    output, tracks, crops, _ = crop_build
    df = pd.read_parquet(output / "sat" / "features.parquet").set_index("item_id")
    manifest = _manifest(output)
    track_bpm = {t.id: _sidecar(output, t.id)["features"]["bpm"] for t in tracks}
    differs = 0
    for crop in crops:
        data = _sidecar(output, crop.id)
        own = data["features"]["bpm"]  # the crop's rhythm run
        row = df.loc[crop.id]
        assert row["item_kind"] == "crop"
        assert row["bpm"] == pytest.approx(own) and row["lufs"] == pytest.approx(data["features"]["lufs"])
        assert row["track_bpm"] == pytest.approx(track_bpm[data["crop"]["source_track"]])
        assert row["bars"] == data["crop"]["bars"] and row["position"] == data["crop"]["position"]
        assert manifest[crop.id]["material"]["controls"]["bpm"] == pytest.approx(own)
        differs += own != track_bpm[data["crop"]["source_track"]]
    assert differs  # measured per crop, so not all equal to the track's


def test_prompts_use_the_model_tags_and_descriptions(crop_build):
    from sat_mir.build.manifest import prompts_module

    sample_prompt = prompts_module().sample_prompt

    output, tracks, crops, _ = crop_build
    manifest = {**json.loads((output / "sat" / "custom_metadata" / "manifest.json").read_text()),
                "items": built_items(output / "sat")}
    tagged = [c.id for c in crops if c.id.startswith(tracks[0].id + "_")]
    assert tagged
    for cid in tagged:
        material = manifest["items"][cid]["material"]
        assert material["fields"]["genre"] == ["Synthwave", "Synth-pop", "Electronic"]  # styles, then their genre; 0.04 < threshold
        assert material["fields"]["mood"] == ["energetic"]
        assert material["fields"]["instrument"] == ["synthesizer", "drummachine"]
        assert material["descriptions"] == [TAGS["flamingo_genre_mood"]]
    rng = random.Random(0)
    prompts = [sample_prompt(manifest["items"][tagged[0]]["material"], rng, manifest["recipe"]).lower()
               for _ in range(300)]
    for label in ("synthwave", "synth-pop", "energetic", "synthesizer", "drummachine"):
        assert any(label in p for p in prompts), label
    assert not any("punk" in p or "melancholic" in p for p in prompts)
    description = TAGS["flamingo_genre_mood"].lower()
    alone = sum(p == description for p in prompts) / len(prompts)
    assert alone == pytest.approx(manifest["recipe"]["description_only_p"], abs=0.08)
    assert any(p.startswith(description) and p != description for p in prompts)  # leading the fields
    # the other tracks' crops have no tags: no genre field
    other = next(c.id for c in crops if not c.id.startswith(tracks[0].id + "_"))
    assert "genre" not in manifest["items"][other]["material"]["fields"]


def test_latents_are_encoded_from_the_crop_audio(crop_build):
    from sat_mir.build.corpus import CorpusTrack, crop_items
    from sat_mir.build.steps import latent_source as _latent_source

    output, tracks, crops, _ = crop_build
    latents = output / "sat" / "latents"
    assert sorted((latents / "filelist.txt").read_text().split()) == sorted(f"{c.id}.npy" for c in crops)
    meta = json.loads((latents / f"{crops[0].id}.json").read_text())
    assert meta["seconds_start"] == _manifest(output)[crops[0].id]["seconds_start"]
    assert all(meta["padding_mask"])  # a crop longer than the window fills it
    # without the audio formats the encoder reads the crop file itself, whole
    track = CorpusTrack(id=tracks[0].id, name=tracks[0].name, mix=tracks[0].mix, features={}, errors={})
    items, bad = crop_items(output, track)
    assert bad == {} and items
    src = _latent_source(items[0], None)
    assert src == {"audio": crops[0].mix, "start_s": 0.0, "duration_s": None}
    # a padded crop: the encoder reads its real audio only, so the padding mask marks the padding
    padded = dataclasses.replace(items[0], duration_s=11.0, pad_s=3.0)
    assert _latent_source(padded, None)["duration_s"] == pytest.approx(8.0)
    assert _latent_source(padded, latents.parent / "audio") == {
        "audio": latents.parent / "audio" / f"{padded.id}.flac", "start_s": 0.0, "duration_s": pytest.approx(8.0)}


def test_items_setting_auto_crops_chunks(crop_build):
    from sat_mir.build.corpus import CorpusTrack, corpus_items
    from sat_mir.errors import ConfigError

    output, tracks, crops, _ = crop_build
    t = tracks[0]
    with_crops = CorpusTrack(id=t.id, name=t.name, mix=t.mix, features={"duration_s": 29.5}, errors={})
    uncut = CorpusTrack(id="uncut-0123abcd", name="Uncut", mix=t.mix, features={"duration_s": 29.5}, errors={})
    n = sum(c.id.startswith(t.id + "_") for c in crops)

    items, left = corpus_items(output, [with_crops, uncut], kind="auto", chunk_s=10.0)
    assert [it.kind for it in items] == ["crop"] * n + ["chunk"] * 3 and left == {}
    assert items[-1].id == "uncut-0123abcd-c002" and items[0].source == crops[0].mix
    items, left = corpus_items(output, [with_crops, uncut], kind="crops", chunk_s=None)
    assert len(items) == n and "no crops" in left["Uncut"]
    items, left = corpus_items(output, [with_crops], kind="chunks", chunk_s=10.0)
    assert [it.id for it in items] == [f"{t.id}-c00{i}" for i in range(3)] and items[0].source is None
    with pytest.raises(ConfigError, match="chunks.seconds"):
        corpus_items(output, [uncut], kind="auto", chunk_s=None)
    with pytest.raises(ConfigError, match="items must be one of"):
        corpus_items(output, [uncut], kind="bars", chunk_s=10.0)


def test_a_rebuild_after_re_cutting_takes_the_new_crops_and_drops_the_old(crop_build):
    """Runs last: it re-cuts the module's crops.  Crop ids (<track>_000) survive a re-cut, so
    the build must notice that their audio changed and remove items that no longer exist."""
    import yaml

    from sat_mir.audio import load_audio
    from sat_mir.build.pipeline import BuildSettings, run_build
    from sat_mir.crops import CropSettings, cut_track

    output, tracks, crops, _ = crop_build
    sat = output / "sat"
    before = {p.stem for p in (sat / "audio").glob("*.flac")}
    # sequential 4 s crops: more crops per track, new audio under the old ids too
    settings = CropSettings(mode="sequential", length=4 * 44100, min_fraction=0.9)
    new = [c for t in tracks for c in cut_track(t, output, settings).crops]
    models = output.parent / "models"
    prompts = yaml.safe_load((REPO / "conf" / "prompts" / "default.yaml").read_text())
    run_build(BuildSettings(output=output, formats=("audio_dir", "pre_encoded"), model_dir=models, prompts=prompts,
                            conditioning={"numbers": NUMBERS, "missing": "fill"}, num_workers=1, progress=False))
    after = {p.stem for p in (sat / "audio").glob("*.flac")}
    assert after == {c.id for c in new} != before
    assert {p.stem for p in (sat / "latents").glob("*.npy")} == after
    first = new[0]
    item = load_audio(sat / "audio" / f"{first.id}.flac").samples
    assert abs(item.shape[1] / 44100 - 4.0) < 0.01  # the new 4 s crop, not the old 11.9 s one
