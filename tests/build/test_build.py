"""The builder end to end on the demo songs, read back by stable-audio-tools' own loaders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, built_items, load_tool

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE_SIZE = 262144  # the tiny model's sample_size (about 5.94 s at 44.1 kHz)
NUMBERS = ["bpm", "lufs"]



@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_library):
    from sat_mir.build.pipeline import BuildSettings, run_build
    from sat_mir.catalog import scan_library
    from sat_mir.features import build_extractors
    from sat_mir.fsutil import atomic_write_json
    from sat_mir.run import run_extraction

    base = tmp_path_factory.mktemp("build")
    output = base / "out"
    tracks = scan_library(demo_library)
    output.mkdir()
    atomic_write_json(output / "catalog.json", {"root": str(demo_library),
                                                 "tracks": [t.to_dict(demo_library) for t in tracks]})
    extractors = build_extractors({"info": {}, "loudness": {}, "rhythm": {}})
    assert run_extraction(tracks, extractors, root=demo_library, output=output, jobs=1, progress=False).failed == 0
    models = load_tool("make_tiny_sat_model").make_tiny_sat_model(base / "models")
    import yaml

    prompts = yaml.safe_load((REPO / "conf" / "prompts" / "default.yaml").read_text())
    formats = ("audio_dir", "wds", "pre_encoded", "wds_latents")
    summary = run_build(BuildSettings(
        output=output, formats=formats, model_dir=models, prompts=prompts,
        conditioning={"numbers": NUMBERS, "missing": "fill"}, shard_size=4, num_workers=2, progress=False,
    ))
    return output / "sat", summary


def _loader(cfg_path: Path, *, batch_size: int = 2, num_workers: int = 1, shuffle: bool = False, **overrides):
    from stable_audio_tools.data.dataset import create_dataloader_from_config

    return create_dataloader_from_config({**json.loads(cfg_path.read_text()), **overrides}, batch_size=batch_size,
                                         sample_size=SAMPLE_SIZE, sample_rate=44100, audio_channels=2,
                                         num_workers=num_workers, shuffle=shuffle)


def test_build_outputs_exist(built):
    sat, summary = built
    assert summary.items == 19 and summary.left_out == {} and summary.failed == {}
    for name in ("dataset_audio_dir.json", "dataset_wds.json", "dataset_pre_encoded.json",
                 "dataset_wds_latents.json", "latents/filelist.txt", "latents/details.json",
                 "model_config.json", "TRAINING.md",
                 "features.parquet", "custom_metadata/manifest.json", "custom_metadata/items.sqlite", "custom_metadata/prompts.py",
                 "custom_metadata/sat_mir_metadata.py"):
        assert (sat / name).exists(), name
    shards = sorted((sat / "wds" / "audio").glob("*.tar"))
    assert len(shards) >= 5  # 19 items / shard size 4, and at least num_workers
    training = (sat / "TRAINING.md").read_text()
    assert "--dataset-config" in training and str(sat / "model_config.json") in training


def test_model_config_has_number_conditioners_and_demo_keys(built):
    sat, _ = built
    cfg = json.loads((sat / "model_config.json").read_text())
    confs = {c["id"]: c for c in cfg["model"]["conditioning"]["configs"]}
    for key in NUMBERS:
        assert confs[key]["type"] == "number"
        assert confs[key]["config"]["min_val"] < confs[key]["config"]["max_val"]
        assert key in cfg["model"]["diffusion"]["cross_attention_cond_ids"]
        assert key not in cfg["model"]["diffusion"]["global_cond_ids"]
        assert all(key in d for d in cfg["training"]["demo"]["demo_cond"])
    assert confs["bpm"]["config"]["min_val"] <= 96 and confs["bpm"]["config"]["max_val"] >= 138
    assert json.loads((sat / "model_config_pre_encoded.json").read_text())["training"]["pre_encoded"] is True


def test_features_table(built):
    import pandas as pd

    sat, summary = built
    df = pd.read_parquet(sat / "features.parquet")
    assert len(df) == summary.items and df["item_id"].is_unique
    assert {"bpm", "lufs", "cond_bpm", "seconds_start", "seconds_total"} <= set(df.columns)


def test_sat_audio_dir_loader_gives_fresh_prompts_and_floats(built):
    sat, _ = built
    manifest = built_items(sat)
    loader = _loader(sat / "dataset_audio_dir.json")
    prompts: dict[str, list[str]] = {}
    for _epoch in range(3):
        for audio, infos in loader:
            assert audio.shape[1:] == (2, SAMPLE_SIZE)
            for info in infos:
                iid = info["sat_mir_id"]
                assert isinstance(info["prompt"], str) and info["prompt"].strip()
                for key in NUMBERS:
                    assert isinstance(info[key], float) and np.isfinite(info[key])
                assert info["seconds_start"] == manifest[iid]["seconds_start"]
                assert info["seconds_total"] == manifest[iid]["seconds_total"]
                prompts.setdefault(iid, []).append(info["prompt"])
    assert len(prompts) == 19 and all(len(p) == 3 for p in prompts.values())
    changed = sum(len(set(p)) > 1 for p in prompts.values())
    assert changed >= 15, prompts  # redrawn every fetch; a few may repeat by chance
    # chunk c002 of a track starts at 2 x 5.94 s into it
    assert manifest["demo-01-sunrise-e4a4d5ae-c002"]["seconds_start"] == 11


def _prompts_over_epochs(sat: Path, *, workers: int, epochs: int, seed: int) -> dict[str, list[str]]:
    import torch

    torch.manual_seed(seed)  # what SAT's train.py does; the loader's worker seeds derive from it
    loader = _loader(sat / "dataset_pre_encoded.json", batch_size=1, num_workers=workers, shuffle=True)
    prompts: dict[str, list[str]] = {}
    for _epoch in range(epochs):  # one loader, persistent workers (as SAT makes it), as in training
        for _latents, infos in loader:
            for info in infos:
                prompts.setdefault(info["sat_mir_id"], []).append(info["prompt"])
    return prompts


@pytest.mark.slow
def test_prompts_stay_fresh_across_persistent_loader_workers(built):
    """Every worker keeps its own fetch counts; the draws must still differ from epoch to epoch."""
    sat, _ = built
    one = _prompts_over_epochs(sat, workers=1, epochs=8, seed=0)
    four = _prompts_over_epochs(sat, workers=4, epochs=8, seed=0)
    assert len(four) == 19 and all(len(p) == 8 for p in four.values())
    # how many different prompts an item's material gives in 8 draws: what one worker finds
    allowed = {iid: len(set(p)) for iid, p in one.items()}
    assert np.mean(list(allowed.values())) >= 7, allowed  # the demo's material allows variety
    distinct = [min(1.0, len(set(p)) / allowed[iid]) for iid, p in four.items()]
    assert np.mean(distinct) >= 0.9, ({iid: len(set(p)) for iid, p in four.items()}, allowed)
    # the same seed and layout draws the same prompts; another seed, others
    assert _prompts_over_epochs(sat, workers=4, epochs=2, seed=0) == {k: v[:2] for k, v in four.items()}
    assert _prompts_over_epochs(sat, workers=4, epochs=2, seed=1) != {k: v[:2] for k, v in four.items()}


def test_sat_wds_loader(built):
    import torch

    sat, _ = built
    loader = _loader(sat / "dataset_wds.json")
    # SAT's WebLoader wraps each wds batch in a batch of one (its training step squeezes it), so
    # each info's values arrive collated once more: strings in 1-lists, numbers as 1-tensors.
    audio, infos = next(iter(loader))
    assert audio.shape == (1, 2, 2, SAMPLE_SIZE)
    assert len(infos) == 2
    for info in infos:
        assert info["sat_mir_id"][0] and info["prompt"][0].strip()
        for key in NUMBERS:  # python floats collate to float64 (ints would give int64)
            assert info[key].dtype == torch.float64 and info[key].numel() == 1


def test_custom_metadata_runs_without_sat_mir_or_site_packages(built, tmp_path):
    sat, _ = built
    module = sat / "custom_metadata" / "sat_mir_metadata.py"
    iid = next(iter(built_items(sat)))
    code = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("metadata_module", {str(module)!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
a = m.get_custom_metadata({{"relpath": "{iid}.flac"}}, None)
b = m.get_custom_metadata({{"latent_filename": "/x/{iid}.npy"}}, None)
c = m.get_custom_metadata({{"relpath": "unknown.flac"}}, None)
assert "sat_mir" not in sys.modules and not any(k.startswith(("numpy", "torch")) for k in sys.modules)
print(json.dumps([a, b, c]))
"""
    # -I: ignore PYTHONPATH/user site; -S: no site-packages at all (so no editable sat_mir)
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    a, b, c = json.loads(proc.stdout)
    assert a["prompt"] and b["prompt"] and a["sat_mir_id"] == iid
    assert isinstance(a["bpm"], float) and isinstance(a["lufs"], float)
    assert c == {"__reject__": True}


LATENT_DIM, RATIO = 8, 32  # the tiny VAE


def test_sat_pre_encoded_loader(built):
    sat, _ = built
    manifest = built_items(sat)
    assert json.loads((sat / "dataset_pre_encoded.json").read_text())["latent_crop_length"] == SAMPLE_SIZE // RATIO
    loader = _loader(sat / "dataset_pre_encoded.json")
    seen: dict[str, list[str]] = {}
    for _epoch in range(2):
        for latents, infos in loader:
            assert latents.shape[1:] == (LATENT_DIM, SAMPLE_SIZE // RATIO) and bool(latents.isfinite().all())
            for info in infos:
                iid = info["sat_mir_id"]
                assert info["seconds_start"] == manifest[iid]["seconds_start"]
                assert info["seconds_total"] == manifest[iid]["seconds_total"]
                assert all(isinstance(info[k], float) for k in NUMBERS)
                seen.setdefault(iid, []).append(info["prompt"])
    assert len(seen) == 19
    assert sum(p[0] != p[1] for p in seen.values()) >= 12  # a new prompt each epoch (some repeat by chance)
    # the last chunk of a track is shorter than the window: its padding mask says where audio ends
    last = json.loads((sat / "latents" / "demo-04-steps-84b5f727-c004.json").read_text())
    assert 0 < sum(last["padding_mask"]) < SAMPLE_SIZE // RATIO and last["padding_mask"][0] == 1


def test_sat_wds_latents_loader(built):
    import torch

    sat, _ = built
    latents, infos = next(iter(_loader(sat / "dataset_wds_latents.json")))
    assert latents.shape == (1, 2, LATENT_DIM, SAMPLE_SIZE // RATIO)
    for info in infos:
        assert info["prompt"][0].strip()
        assert all(info[k].dtype == torch.float64 for k in NUMBERS)


def test_one_training_step_with_the_generated_model_config(built):
    """SAT builds the generated config (its t5 prompt conditioner removed: no weights here) and
    trains one step on CPU on a batch from the generated pre_encoded dataset config."""
    import pytorch_lightning as pl
    import torch
    from stable_audio_tools.models.factory import create_model_from_config
    from stable_audio_tools.training.factory import create_training_wrapper_from_config

    sat, _ = built
    cfg = json.loads((sat / "model_config_pre_encoded.json").read_text())
    cond = cfg["model"]["conditioning"]
    cond["configs"] = [c for c in cond["configs"] if c["type"] != "t5"]
    diff = cfg["model"]["diffusion"]
    diff["cross_attention_cond_ids"] = [i for i in diff["cross_attention_cond_ids"] if i != "prompt"]
    assert set(NUMBERS) <= set(diff["cross_attention_cond_ids"])
    torch.manual_seed(0)
    model = create_model_from_config(cfg)
    wrapper = create_training_wrapper_from_config(cfg, model)
    loader = _loader(sat / "dataset_pre_encoded.json", latent_crop_length=256)
    losses = []

    class Grab(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"] if isinstance(outputs, dict) else outputs))

    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, callbacks=[Grab()])
    trainer.fit(wrapper, loader)
    assert trainer.global_step == 1 and len(losses) == 1 and np.isfinite(losses[0])


@pytest.mark.slow
def test_cli_extract_build_preview_with_user_metadata(tmp_path):
    from conftest import run_extract

    env = {**os.environ, "SAT_MIR_CACHE": str(tmp_path / "cache")}
    assert run_extract("+dataset=demo", "progress=false", cwd=tmp_path, env=env).returncode == 0
    load_tool("make_tiny_sat_model").make_tiny_sat_model(tmp_path / "cache" / "demo" / "tiny-sat-model")
    (tmp_path / "meta.csv").write_text("name,artist\nDemo 01 - Sunrise,The Synth Band\n")
    build = subprocess.run(
        [sys.executable, "-m", "sat_mir.build", "+dataset=demo", "progress=false", "prompts.metadata.enabled=true",
         f"prompts.metadata.csv={tmp_path / 'meta.csv'}", "conditioning.numbers=[bpm,lufs,lra]"],
        cwd=tmp_path, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert "built 19 items from 4 tracks" in build.stderr
    sat = tmp_path / "sat-mir-output" / "demo" / "sat"
    assert "lra" in {c["id"] for c in json.loads((sat / "model_config.json").read_text())["model"]["conditioning"]["configs"]}
    preview = subprocess.run(
        [sys.executable, "-m", "sat_mir.build.preview", "+dataset=demo", "track=Demo 01 - Sunrise", "n=40"],
        cwd=tmp_path, env=env, capture_output=True, text=True)
    assert preview.returncode == 0, preview.stderr
    lines = [ln.strip() for ln in preview.stdout.splitlines() if ln.startswith("  ")]
    assert len(lines) == 40 and all(lines)
    assert any("the synth band" in ln.lower() for ln in lines)
    # rebuilding is a resume: nothing is re-encoded
    again = subprocess.run([sys.executable, "-m", "sat_mir.build", "+dataset=demo", "progress=false"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "0 encoded, 19 already present" in again.stderr
    # latents asked for without the VAE: the stage cannot run (3), not "some items failed" (1)
    missing = subprocess.run([sys.executable, "-m", "sat_mir.build", "+dataset=demo", "progress=false",
                              f"model.dir={tmp_path / 'no-model'}"], cwd=tmp_path, env=env, capture_output=True,
                             text=True)
    assert missing.returncode == 3 and "vae_model.ckpt" in missing.stderr, missing.stderr[-2000:]
    # a key no extractor declares: an invalid configuration (2), named, before anything is built
    typo = subprocess.run([sys.executable, "-m", "sat_mir.build", "+dataset=demo", "progress=false",
                           "conditioning.numbers=[bmp]"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert typo.returncode == 2 and "'bmp'" in typo.stderr and "nearest known keys: bpm" in typo.stderr


def test_failed_tracks_and_silent_items_are_left_out_with_reasons(tmp_path, demo_library):
    import shutil

    import soundfile as sf

    from sat_mir.build.pipeline import BuildSettings, run_build
    from sat_mir.catalog import scan_library
    from sat_mir.features import build_extractors
    from sat_mir.fsutil import atomic_write_json
    from sat_mir.run import run_extraction

    root = tmp_path / "lib"
    shutil.copytree(demo_library / "Demo 02 - Night Drive", root / "Night Drive")
    music, sr = sf.read(demo_library / "Demo 04 - Steps" / "full_mix.flac", dtype="float32")
    # 7 s of music, then 8 s of digital silence: items start at 0, 5.94 and 11.89 s; the third is silent
    tail = np.concatenate([music[: 7 * sr], np.zeros((8 * sr, 2), np.float32)])
    sf.write(root / "fades out.flac", tail, sr)
    (root / "empty.wav").write_bytes(b"")
    output = tmp_path / "out"
    output.mkdir()
    tracks = scan_library(root)
    atomic_write_json(output / "catalog.json", {"root": str(root), "tracks": [t.to_dict(root) for t in tracks]})
    run_extraction(tracks, build_extractors({"info": {}, "loudness": {}, "rhythm": {}}), root=root, output=output,
                   jobs=1, progress=False)
    models = load_tool("make_tiny_sat_model").make_tiny_sat_model(tmp_path / "models")
    import yaml

    prompts = yaml.safe_load((REPO / "conf" / "prompts" / "default.yaml").read_text())
    summary = run_build(BuildSettings(output=output, formats=("audio_dir",), model_dir=models, prompts=prompts,
                                      conditioning={"numbers": ["bpm"], "missing": "fill"}, progress=False))
    assert summary.exit_code == 0 and summary.failed == {}
    assert "file is empty" in summary.left_out["empty"]
    silent = [k for k, v in summary.left_out.items() if "silent" in v]
    assert len(silent) == 1 and silent[0].endswith("-c002")
    built = built_items(output / "sat")
    assert silent[0] not in built and len(built) == summary.items
