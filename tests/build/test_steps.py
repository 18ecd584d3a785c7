"""Each build step on its own, with a few synthetic items: item audio, its validation, word
bins, numbers, prompt checks, the custom_metadata folder, shards and SAT's dataset configs."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile

import numpy as np
import pytest

from sat_mir.audio.decode import load_audio
from sat_mir.audio.write import write_audio
from sat_mir.build.corpus import BuildItem, CorpusTrack

SR = 44100


def _track(tmp_path, name: str, seconds: float, amp: float = 0.5, sr: int = 48000) -> CorpusTrack:
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * 220 * t)
    path = tmp_path / "lib" / f"{name}.wav"
    path.parent.mkdir(exist_ok=True)
    write_audio(path, np.stack([x, 0.5 * x]), sr=sr)
    return CorpusTrack(id=f"{name}-00000000", name=name, mix=path, features={"duration_s": seconds}, errors={})


def _chunks(track: CorpusTrack, seconds: float, n: int) -> list[BuildItem]:
    return [BuildItem(id=f"{track.id}-c{i:03d}", track=track, index=i, start_s=i * seconds, duration_s=seconds,
                      features={"bpm": 100.0 + 10 * i, "lufs": -20.0 + i})
            for i in range(n)]


def test_item_audio_is_cut_resampled_and_read_back(tmp_path):
    from sat_mir.build.chunks import write_item_audio
    from sat_mir.build.validate import validate_audio_items

    loud = _track(tmp_path, "loud", 3.0, amp=1.6)  # a float file over full scale
    items = _chunks(loud, 1.0, 3)
    out = tmp_path / "audio"
    summary = write_item_audio(items, out, sample_rate=SR, channels=2, progress=False)
    assert summary.written == 3 and not summary.failed
    # one gain for all chunks of a track, to -0.1 dBFS: 20*log10(0.9886/1.6)
    assert summary.gains[items[0].id] == pytest.approx(20 * np.log10(10 ** (-0.1 / 20) / 1.6), abs=0.01)
    back = load_audio(out / f"{items[1].id}.flac")
    assert back.sr == SR and back.samples.shape == (2, SR)
    assert float(np.max(np.abs(back.samples))) == pytest.approx(10 ** (-0.1 / 20), abs=2e-3)
    # resumable: present files are skipped
    assert write_item_audio(items, out, sample_rate=SR, channels=2, progress=False).skipped == 3
    # reject leaves the items out with the reason; they are then not written
    rejected = write_item_audio(items, tmp_path / "r", sample_rate=SR, channels=2, peak_policy="reject",
                                progress=False)
    assert set(rejected.left_out) == {it.id for it in items} and rejected.written == 0
    # validation: a silent file and one of the wrong channel count are named
    write_audio(out / "silent.flac", np.zeros((2, SR)), sr=SR)
    write_audio(out / "mono.flac", 0.5 * np.ones(SR), sr=SR)
    (out / "broken.flac").write_bytes(b"not audio")
    bad = validate_audio_items([items[0].id, "silent", "mono", "broken"], out, channels=2)
    assert set(bad) == {"silent", "mono", "broken"}
    assert "silent" in bad["silent"] and "1 channels" in bad["mono"] and "does not decode" in bad["broken"]


def test_numbers_fill_or_reject_and_empty_prompt_material_is_named(tmp_path):
    from sat_mir.build.pipeline import BuildSummary
    from sat_mir.build.steps import condition_numbers, word_bins
    from sat_mir.build.validate import validate_prompts

    items = _chunks(_track(tmp_path, "t", 4.0), 1.0, 4)
    facts = {it.id: dict(it.features) for it in items}
    facts[items[3].id].pop("bpm")
    summary = BuildSummary()
    kept, specs, numbers = condition_numbers(items, facts, {"numbers": ["bpm"], "missing": "fill"}, summary)
    assert len(kept) == 4 and numbers[items[3].id]["bpm"] == pytest.approx(110.0)  # the median of 100..120
    assert specs[0].key == "bpm" and specs[0].min_val < 100.0 and specs[0].max_val > 120.0
    kept, _, _ = condition_numbers(items, facts, {"numbers": ["bpm"], "missing": "reject"}, summary)
    assert [it.id for it in kept] == [it.id for it in items[:3]] and items[3].id in summary.left_out
    bins = word_bins(items, {"lufs": {"name": "loudness", "words": ["quiet", "loud"]}})
    assert bins[0].key == "lufs" and len(bins[0].words) == 2
    empty = {"controls": {}, "bins": [], "tags": {}, "descriptions": [], "metadata": {}}
    bad = validate_prompts({"a": empty, "b": {**empty, "controls": {"bpm": 120.0}}}, {}, seed=0)
    assert list(bad) == ["a"] and "empty" in bad["a"]


def test_the_metadata_folder_runs_standalone_and_gives_each_item_its_values(tmp_path):
    from sat_mir.build.manifest import write_metadata_folder

    items = _chunks(_track(tmp_path, "t", 2.0), 1.0, 2)
    materials = {it.id: {"controls": {"bpm": it.features["bpm"]}, "bins": [], "tags": {}, "descriptions": [],
                         "metadata": {}} for it in items}
    numbers = {it.id: {"bpm": it.features["bpm"]} for it in items}
    module = write_metadata_folder(tmp_path / "cm", items, materials=materials, numbers=numbers, recipe={},
                                   seed=3, gains={items[1].id: -1.5})
    spec = importlib.util.spec_from_file_location("cm_test", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    got = mod.get_custom_metadata({"sat_mir_id": items[1].id}, None)
    assert got["bpm"] == 110.0 and got["seconds_start"] == 1 and isinstance(got["prompt"], str)
    manifest = json.loads((tmp_path / "cm" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["items"] == 2 and mod.lookup(items[1].id)["gain_db"] == -1.5
    assert mod.lookup("no-such-item") is None and mod.get_custom_metadata({"sat_mir_id": "x"}, None) == {
        "__reject__": True}
    assert [i for i, _ in mod.item_ids()] == [it.id for it in items]
    # the same items give the same bytes (a resumed build is byte-identical)
    first = (tmp_path / "cm" / "items.sqlite").read_bytes()
    write_metadata_folder(tmp_path / "cm", items, materials=materials, numbers=numbers, recipe={}, seed=3,
                          gains={items[1].id: -1.5})
    assert (tmp_path / "cm" / "items.sqlite").read_bytes() == first


def test_shards_hold_every_item_once_shuffled_reproducibly(tmp_path):
    from sat_mir.build.shards import json_bytes, plan_shards, write_shards

    ids = [f"item-{i:03d}" for i in range(10)]
    shards = plan_shards(ids, shard_size=4, min_shards=2, seed=0)
    assert len(shards) == 3 and sorted(i for s in shards for i in s) == ids
    assert shards == plan_shards(ids, shard_size=4, min_shards=2, seed=0) != plan_shards(ids, shard_size=4,
                                                                                          min_shards=2, seed=1)
    assert len(plan_shards(ids[:2], shard_size=4, min_shards=8, seed=0)) == 2  # never more shards than items
    paths = write_shards(tmp_path / "wds", shards, lambda k: {"json": json_bytes({"id": k})})
    first = paths[0].read_bytes()
    write_shards(tmp_path / "wds", shards, lambda k: {"json": json_bytes({"id": k})})
    assert paths[0].read_bytes() == first  # byte-identical when rebuilt (mtime 0)
    with tarfile.open(paths[1]) as tar:
        names = tar.getnames()
        assert names == [f"{k}.json" for k in shards[1]]
        assert json.load(io.BytesIO(tar.extractfile(names[0]).read())) == {"id": shards[1][0]}
    with pytest.raises(ValueError, match="dots"):
        write_shards(tmp_path / "bad", [["a.b"]], lambda k: {"json": b"{}"})


def test_dataset_configs_use_sats_keys_where_sat_reads_them(tmp_path):
    from sat_mir.build.sat_files import dataset_config, write_dataset_configs, write_training_notes

    module = tmp_path / "custom_metadata" / "sat_mir_metadata.py"
    pre = dataset_config("pre_encoded", tmp_path / "latents", module, latent_crop_length=256)
    assert pre["dataset_type"] == "pre_encoded" and pre["latent_crop_length"] == 256
    assert pre["datasets"][0] == {"id": "sat_mir", "path": str(tmp_path / "latents"),
                                  "custom_metadata_module": str(module)}
    assert pre["random_crop"] is False  # seconds_start would be wrong after a random crop
    wds = dataset_config("wds_latents", tmp_path / "wds", module, latent_crop_length=256)
    assert wds["dataset_type"] == "wds" and wds["pre_encoded"] is True
    with pytest.raises(ValueError):
        dataset_config("tfrecord", tmp_path, module)
    paths = write_dataset_configs(tmp_path, {"pre_encoded": pre})
    assert json.loads(paths["pre_encoded"].read_text()) == pre
    notes = write_training_notes(tmp_path, dataset_configs=paths, model_configs={"pre_encoded": tmp_path / "m.json"},
                                 numbers=[{"key": "bpm", "min_val": 60.0, "max_val": 180.0, "fill": 120.0}],
                                 items=5, tracks=2, num_workers=2).read_text()
    assert f"--dataset-config {paths['pre_encoded']}" in notes and "| `bpm` | 60.0 | 180.0 | 120 |" in notes
