"""Demucs separation through Demucs' own loaders with tiny stand-in models, and the stem writers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sat_mir.audio import load_audio
from sat_mir.errors import ConfigError, WeightsError
from sat_mir.separation import (
    STEMS,
    DemucsSeparator,
    demucs_separator,
    load_separator,
    write_stems,
)

from conftest import stand_in_fixtures  # noqa: E402

SR = 44100



def _two_demucs(tool, repo) -> None:
    tool.make_tiny_demucs(repo, name="tiny_htdemucs", seed=0)
    tool.make_tiny_demucs(repo, name="tiny_htdemucs_6s", seed=1, sources=tool.SIX_SOURCES)


tool, models_dir = stand_in_fixtures("make_tiny_demucs", _two_demucs)


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    """3 s stereo: a bass tone, a chord, and noise bursts on the beat."""
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    bass = 0.3 * np.sin(2 * np.pi * 55 * t)
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (440, 550, 660))
    bursts = 0.2 * rng.standard_normal(t.size) * (np.mod(t, 0.5) < 0.05)
    return np.stack([bass + chord + bursts, bass + 0.8 * chord + bursts]).astype(np.float32)


@pytest.fixture(scope="module")
def sep(models_dir) -> DemucsSeparator:
    return load_separator("tiny_htdemucs", models_dir=models_dir, device="cpu")


@pytest.fixture(scope="module")
def stems(sep, mix) -> dict[str, np.ndarray]:
    return sep.separate(mix, SR)


# --------------------------------------------------------------------------- separation


def test_tiny_model_is_a_small_deterministic_demucs_package(tool, models_dir, tmp_path):
    bag = yaml.safe_load((models_dir / "tiny_htdemucs.yaml").read_text())
    (sig,) = bag["models"]
    (th,) = models_dir.glob(f"{sig}-*.th")
    assert th.stat().st_size < 300_000
    package = torch.load(th, map_location="cpu", weights_only=False)
    assert {"klass", "args", "kwargs", "state", "training_args"} <= set(package)
    assert package["klass"].__name__ == "HTDemucs"
    assert all(v.dtype == torch.float16 for v in package["state"].values())  # half, like the released files
    tool.make_tiny_demucs(tmp_path, name="tiny_htdemucs", seed=0)
    assert (tmp_path / th.name).read_bytes() == th.read_bytes()  # same seed, same bytes


def test_stems_are_the_models_own_output(sep, mix, stems):
    """No rescaling, nothing dropped: equal to demucs' apply_model on the same input."""
    from demucs.apply import apply_model

    assert list(stems) == list(STEMS)
    for s in stems.values():
        assert s.shape == mix.shape and s.dtype == np.float32 and np.all(np.isfinite(s))
    wav = torch.from_numpy(mix)
    mean, std = wav.mean(0).mean(), wav.mean(0).std() + 1e-8
    out = apply_model(sep.model, ((wav - mean) / std)[None], shifts=0, split=True, overlap=0.25,
                      device="cpu")[0] * std
    for i, name in enumerate(sep.model.sources):
        np.testing.assert_allclose(stems[name], out[i].numpy() + float(mean) / 4, atol=1e-6)
    total = sum(stems.values())
    np.testing.assert_allclose(total, out.sum(0).numpy() + float(mean), atol=1e-5)


@pytest.mark.parametrize("shifts", [0, 2])
def test_batched_segments_equal_demucs_apply_model(models_dir, shifts, monkeypatch):
    """Several segments per forward pass: the same overlap-add as apply_model, segment by segment,
    for a single model and a bag, with and without time shifts.  The shifts are pinned: HTDemucs
    also draws from Python's random on every forward pass, so batching changes which shifts a
    seed gives."""
    import itertools
    import random

    from demucs.apply import BagOfModels, apply_model

    from sat_mir.separation.chunked import apply_batched

    single = load_separator("tiny_htdemucs", models_dir=models_dir, device="cpu").model.models[0]
    bag = BagOfModels([single, single], weights=[[1, 0, 0.5, 1], [0, 1, 0.5, 1]])
    rng = np.random.default_rng(1)
    # 5.5 s with the tiny model's 4 s segments: two overlapping segments, the second one short
    x = torch.from_numpy(rng.standard_normal((1, 2, int(5.5 * SR))).astype(np.float32))

    def pinned_shifts():
        seq = itertools.cycle([10611, 4943, 12937, 0])
        monkeypatch.setattr(random, "randint", lambda a, b: next(seq))

    for model in (single, bag) if not shifts else (single,):
        pinned_shifts()
        ref = apply_model(model, x, shifts=shifts, split=True, overlap=0.25, device="cpu")
        for batch in (1, 2):
            pinned_shifts()
            got = apply_batched(model, x, shifts=shifts, overlap=0.25, batch=batch, device="cpu")
            assert got.shape == ref.shape
            np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=2e-5)


def test_levels_follow_the_input(sep, mix, stems):
    """Peak normalisation (the seed's bug) would give the same stems for a quieter mix."""
    quiet = sep.separate(0.25 * mix, SR)
    for name in STEMS:
        np.testing.assert_allclose(quiet[name], 0.25 * stems[name], atol=1e-6)


def test_other_rate_and_mono_input(sep, mix):
    from sat_mir.audio import resample

    mono48 = resample(mix[:1, : SR], sr_in=SR, sr_out=48000)  # 1 s, mono, 48 kHz
    out = sep.separate(mono48, 48000)
    assert list(out) == list(STEMS)
    for s in out.values():
        assert s.shape == (2, mono48.shape[1]) and s.dtype == np.float32 and np.all(np.isfinite(s))
    with pytest.raises(ValueError, match="channels"):
        sep.separate(np.zeros((3, 100), np.float32), SR)


def test_settings_reach_the_model_runner(sep, monkeypatch):
    seen = {}

    def fake_apply(model, mix, **kwargs):
        seen.update(kwargs)
        return torch.zeros(mix.shape[0], len(model.sources), *mix.shape[1:])

    monkeypatch.setattr(demucs_separator, "apply_batched", fake_apply)
    tuned = DemucsSeparator(sep.model, name="tiny", device="cpu", segment=1.5, overlap=0.1, shifts=2,
                            batch_segments=3)
    tuned.separate(np.zeros((2, 1000), np.float32), SR)
    assert (seen["segment"], seen["overlap"], seen["shifts"], seen["batch"]) == (1.5, 0.1, 2, 3)
    with pytest.raises(ConfigError, match="batch_segments"):
        DemucsSeparator(sep.model, name="tiny", batch_segments=0)
    with pytest.raises(ConfigError, match="segment"):  # the tiny model was trained on 4 s
        DemucsSeparator(sep.model, name="tiny", segment=4.5)
    with pytest.raises(ConfigError, match="overlap"):
        DemucsSeparator(sep.model, name="tiny", overlap=1.0)


def test_six_source_model_folds_guitar_and_piano_into_other(models_dir, mix):
    sep6 = load_separator("tiny_htdemucs_6s", models_dir=models_dir, device="cpu")
    assert list(sep6.model.sources) == ["drums", "bass", "other", "vocals", "guitar", "piano"]
    folded = sep6.separate(mix, SR)
    assert list(folded) == list(STEMS)
    kept = DemucsSeparator(sep6.model, name="tiny6", device="cpu", keep_extra=True).separate(mix, SR)
    assert list(kept) == ["drums", "bass", "other", "vocals", "guitar", "piano"]
    np.testing.assert_allclose(folded["other"], kept["other"] + kept["guitar"] + kept["piano"], atol=1e-6)
    for name in ("drums", "bass", "vocals"):
        np.testing.assert_allclose(folded[name], kept[name], atol=1e-7)


# --------------------------------------------------------------------------- weights


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Point the Hugging Face and torch hub caches at empty folders."""
    import huggingface_hub.constants

    hf = tmp_path / "hf_hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return hf, tmp_path / "torch" / "hub" / "checkpoints"


def test_missing_model_in_a_local_repo(models_dir, tmp_path, no_network):
    with pytest.raises(WeightsError, match="'htdemucs_ft'.*tiny_htdemucs.yaml"):
        load_separator("htdemucs_ft", models_dir=models_dir)
    with pytest.raises(WeightsError, match="does not exist"):
        load_separator("htdemucs", models_dir=tmp_path / "nowhere")
    # a bag whose .th file is gone
    (tmp_path / "broken.yaml").write_text("models: ['0123abcd']\n")
    with pytest.raises(WeightsError, match="0123abcd"):
        load_separator("broken", models_dir=tmp_path)


def test_missing_pretrained_model_fails_fast_without_network(empty_caches, no_network):
    with pytest.raises(WeightsError, match=r"'htdemucs'.*955717e8-8726e21a\.th.*get_model\('htdemucs'\)"):
        load_separator("htdemucs")
    with pytest.raises(WeightsError, match="htdemucs_6s"):
        load_separator("htdemucs_6s")


def test_corrupt_file_in_the_torch_hub_cache_fails_its_checksum(empty_caches, no_network):
    _, checkpoints = empty_caches
    checkpoints.mkdir(parents=True)
    (checkpoints / "955717e8-8726e21a.th").write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="checksum"):
        load_separator("htdemucs")


def _fake_hf_cache(hf: Path, models_dir: Path) -> Path:
    """What demucs 4.1's get_model('htdemucs') leaves in the HF cache (adefossez/HTDemucs:
    htdemucs.yaml and <sig>.safetensors with class and init args as JSON metadata), holding
    the tiny model; blobs named by sha256 and linked from the snapshot.  Returns the blob."""
    from safetensors.torch import save

    (sig,) = yaml.safe_load((models_dir / "tiny_htdemucs.yaml").read_text())["models"]
    (th,) = models_dir.glob(f"{sig}-*.th")
    package = torch.load(th, map_location="cpu", weights_only=False)
    meta = {"klass": "demucs.htdemucs.HTDemucs", "args": json.dumps(list(package["args"])),
            "kwargs": json.dumps(package["kwargs"])}
    data = save({k: v.contiguous() for k, v in package["state"].items()}, meta)
    cached = hf / "models--adefossez--HTDemucs"
    snapshot = cached / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (cached / "blobs").mkdir()
    (cached / "refs").mkdir()
    (cached / "refs" / "main").write_text("0" * 40)
    (snapshot / "htdemucs.yaml").write_text(f"models: ['{sig}']\n")
    blob = cached / "blobs" / hashlib.sha256(data).hexdigest()
    blob.write_bytes(data)
    (snapshot / f"{sig}.safetensors").symlink_to(blob)
    return blob


def test_loads_from_the_hugging_face_cache_offline(models_dir, empty_caches, no_network):
    _fake_hf_cache(empty_caches[0], models_dir)
    sep = load_separator("htdemucs", device="cpu")
    reference = load_separator("tiny_htdemucs", models_dir=models_dir, device="cpu")
    assert list(sep.model.sources) == list(STEMS)
    for (k, a), (_, b) in zip(sep.model.state_dict().items(), reference.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_damaged_file_in_the_hugging_face_cache(models_dir, empty_caches, no_network):
    blob = _fake_hf_cache(empty_caches[0], models_dir)
    blob.write_bytes(blob.read_bytes()[:-10])
    with pytest.raises(WeightsError, match="checksum"):
        load_separator("htdemucs")


def test_bad_options(models_dir):
    with pytest.raises(ConfigError, match="hf://"):
        load_separator("hf://adefossez/htdemucs")
    with pytest.raises(ConfigError, match="device"):
        load_separator("tiny_htdemucs", models_dir=models_dir, device="tpu9")


# --------------------------------------------------------------------------- writing


@pytest.fixture(scope="module")
def quiet_stems() -> dict[str, np.ndarray]:
    t = np.arange(SR) / SR
    rng = np.random.default_rng(1)
    return {name: (0.3 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal((2, t.size))).astype(np.float32)
            for name, f in zip(STEMS, (110, 220, 440, 880), strict=True)}


@pytest.mark.parametrize("fmt, subtype, atol", [
    ("flac", None, 2.0**-23), ("flac", "PCM_16", 2.0**-15), ("wav", None, 0.0),
    ("wav", "PCM_24", 2.0**-23), ("wav", "PCM_16", 2.0**-15),
])
def test_lossless_writers_round_trip(quiet_stems, tmp_path, fmt, subtype, atol):
    written = write_stems(quiet_stems, tmp_path, sr=SR, fmt=fmt, subtype=subtype)
    assert written.gain == 1.0 and sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{s}.{fmt}" for s in STEMS)
    for name, path in written.paths.items():
        audio = load_audio(path)
        assert audio.sr == SR
        np.testing.assert_allclose(audio.samples, quiet_stems[name], rtol=0, atol=atol)


@pytest.mark.parametrize("fmt, options", [
    ("mp3", {"bitrate_kbps": 192}), ("mp3", {"bitrate_mode": "VARIABLE", "compression_level": 0.2}),
    ("ogg", {"compression_level": 0.4}),
])
def test_lossy_writers_keep_length_and_level(quiet_stems, tmp_path, fmt, options):
    written = write_stems(quiet_stems, tmp_path, sr=SR, fmt=fmt, **options)
    for name, path in written.paths.items():
        audio = load_audio(path)
        ref = quiet_stems[name]
        assert audio.sr == SR and audio.samples.shape == ref.shape
        rms = np.sqrt(np.mean(audio.samples**2))
        assert 20 * np.log10(rms / np.sqrt(np.mean(ref**2))) == pytest.approx(0.0, abs=0.5)


def test_mp3_bitrate_reaches_the_encoder(quiet_stems, tmp_path):
    sizes = {}
    for kbps in (96, 256):
        path = write_stems({"drums": quiet_stems["drums"]}, tmp_path / str(kbps), sr=SR, fmt="mp3",
                           bitrate_kbps=kbps).paths["drums"]
        sizes[kbps] = path.stat().st_size * 8 / 1000  # kbit for 1 s of audio
    # about 14 kbit of headers (Xing/LAME info frame, ID3) come on top of the audio frames
    assert 96 < sizes[96] < 96 + 20 and 256 < sizes[256] < 256 + 20


def test_rescale_keeps_the_sum_clamp_clips(tmp_path):
    t = np.arange(SR // 2) / SR
    loud = {"drums": (1.6 * np.sin(2 * np.pi * 100 * t))[None].astype(np.float32),
            "bass": (0.5 * np.sin(2 * np.pi * 45 * t))[None].astype(np.float32)}
    total = loud["drums"] + loud["bass"]

    rescaled = write_stems(loud, tmp_path / "rescale", sr=SR, clip="rescale")
    assert rescaled.gain == pytest.approx(1 / np.max(np.abs(loud["drums"])), rel=1e-6)
    back = {k: load_audio(p).samples for k, p in rescaled.paths.items()}
    np.testing.assert_allclose(back["drums"] + back["bass"], rescaled.gain * total, atol=1e-6)

    clamped = write_stems(loud, tmp_path / "clamp", sr=SR, clip="clamp")
    assert clamped.gain == 1.0
    back = {k: load_audio(p).samples for k, p in clamped.paths.items()}
    assert np.max(np.abs(back["drums"])) <= 1.0
    np.testing.assert_allclose(back["bass"], loud["bass"], atol=2.0**-23)  # only the stem that clipped changes
    assert np.max(np.abs(back["drums"] + back["bass"] - total)) > 0.4

    kept = write_stems(loud, tmp_path / "float", sr=SR, fmt="wav", clip="none")
    np.testing.assert_array_equal(load_audio(kept.paths["drums"]).samples, loud["drums"])


def test_writer_options_are_checked(quiet_stems, tmp_path):
    cases = [
        ({"fmt": "aac"}, "fmt"),
        ({"fmt": "flac", "subtype": "FLOAT"}, "subtype"),
        ({"clip": "none"}, "float WAV"),
        ({"clip": "soft"}, "clip"),
        ({"fmt": "wav", "compression_level": 0.5}, "compression_level"),
        ({"fmt": "flac", "bitrate_kbps": 128}, "mp3 only"),
        ({"fmt": "mp3", "bitrate_kbps": 500}, "bitrate_kbps"),
        ({"fmt": "mp3", "compression_level": 1.0}, "compression_level"),
        ({"fmt": "mp3", "bitrate_mode": "VARIABLE", "bitrate_kbps": 128}, "VARIABLE"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ConfigError, match=match):
            write_stems(quiet_stems, tmp_path, sr=SR, **kwargs)
    with pytest.raises(ConfigError, match="96000 Hz"):
        write_stems(quiet_stems, tmp_path, sr=96000, fmt="mp3")
    with pytest.raises(ValueError, match="shape"):
        write_stems({"drums": np.zeros((2, 10)), "bass": np.zeros((2, 11))}, tmp_path, sr=SR)
    assert not any(tmp_path.iterdir())  # nothing written by a refused call
