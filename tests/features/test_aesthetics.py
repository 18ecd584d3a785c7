"""Audiobox Aesthetics through the package's own loader with a tiny stand-in checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, stand_in_fixtures

import sat_mir.features.aesthetics  # noqa: F401  - registers the extractor
from sat_mir.audio.context import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.errors import ConfigError, ExtractorError, WeightsError
from sat_mir.features.aesthetics import Aesthetics
from sat_mir.features.registry import REGISTRY
from sat_mir.models import audiobox
from sat_mir.models.audiobox import AXES, SAMPLE_RATE, load_aesthetics

KEYS = ["aes_ce", "aes_cu", "aes_pc", "aes_pq"]
# the package's AesPredictor builds AesMultiOutput from exactly these model_cfg keys
PREDICTOR_KEYS = {"proj_num_layer", "proj_ln", "proj_act_fn", "proj_dropout", "nth_layer",
                  "use_weighted_layer_sum", "precision", "normalize_embed", "output_dim"}


tool, models_dir = stand_in_fixtures("make_tiny_audiobox", lambda tool, d: tool.make_tiny_audiobox(d, seed=0))


@pytest.fixture(scope="module")
def model(models_dir):
    return load_aesthetics(models_dir, device="cpu")


@pytest.fixture(scope="module")
def extractor(models_dir) -> Aesthetics:
    return Aesthetics(Aesthetics.Config(models_dir=str(models_dir), device="cpu"))


@pytest.fixture(scope="module")
def demo_ctxs(demo_library) -> list[TrackContext]:
    mixes = sorted(demo_library.glob("*/full_mix.flac"))
    assert len(mixes) == 4
    return [TrackContext({"mix": m}) for m in mixes]


def synthetic(samples: np.ndarray, sr: int = 44100) -> TrackContext:
    """A context around an in-memory signal."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    return TrackContext({"mix": Path("synthetic.wav")}, loader=lambda _: Audio(x, sr))


def tone_and_noise(seconds: float, *, seed: int = 0, sr: int = SAMPLE_RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
            + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


# --------------------------------------------------------------------------- the stand-in checkpoint


def test_tiny_checkpoint_has_the_release_format(tool, models_dir, tmp_path):
    path = models_dir / "audiobox" / "checkpoint.pt"
    assert path.stat().st_size < 2_000_000
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"state_dict", "model_cfg", "target_transform"}
    assert PREDICTOR_KEYS <= set(ckpt["model_cfg"])
    assert set(ckpt["target_transform"]) == set(AXES)
    sd = ckpt["state_dict"]
    assert all(k.startswith("model.") for k in sd)
    assert all(v.dtype == torch.float32 for v in sd.values())
    # one weighted layer sum and a 5-layer head (4 x Linear+LayerNorm+GELU, Linear) per axis
    for axis in AXES:
        assert sd[f"model.layer_weights.{axis}"].shape == (ckpt["model_cfg"]["nth_layer"],)
        assert sd[f"model.proj_layer.{axis}.12.weight"].shape == (1, 64)
    assert "model.wavlm_model.encoder.layers.0.self_attn.relative_attention_bias.weight" in sd
    tool.make_tiny_audiobox(tmp_path, seed=0)
    again = torch.load(tmp_path / "audiobox" / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(sd[k], again["state_dict"][k]) for k in sd)  # same seed, same weights


def test_loading_restores_the_package_default_encoder(model):
    from audiobox_aesthetics.model import aes

    assert aes.DEFAULT_AUDIO_CFG.encoder_layers == 12 and aes.DEFAULT_AUDIO_CFG.encoder_embed_dim == 768
    assert model.net.wavlm_model.cfg.encoder_embed_dim == 64
    assert not model.net.training
    assert model.autocast is False  # bf16 only on CUDA


# --------------------------------------------------------------------------- model inference


def test_windows_are_weighted_by_their_length(model):
    """A 25 s input is three windows (10, 10, 5 s): its rating is their 1:1:0.5 weighted mean."""
    x = tone_and_noise(25.0)
    whole = model.predict([x])[0]
    parts = model.predict([x[: 10 * SAMPLE_RATE], x[10 * SAMPLE_RATE: 20 * SAMPLE_RATE], x[20 * SAMPLE_RATE:]])
    for axis in AXES:
        expected = (parts[0][axis] + parts[1][axis] + 0.5 * parts[2][axis]) / 2.5
        assert whole[axis] == pytest.approx(expected, abs=1e-4)


def test_batch_equals_one_at_a_time(model):
    wavs = [tone_and_noise(s, seed=i) for i, s in enumerate((3.0, 12.5, 0.7, 21.0))]
    batched = model.predict(wavs, batch_windows=3)  # windows of different items share passes
    for wav, row in zip(wavs, batched):
        alone = model.predict([wav], batch_windows=1)[0]
        for axis in AXES:
            assert row[axis] == pytest.approx(alone[axis], abs=1e-4)


def test_rejects_bad_inputs(model):
    with pytest.raises(ValueError, match="non-empty"):
        model.predict([np.zeros(0, np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        model.predict([np.full(16000, np.nan, np.float32)])
    with pytest.raises(ConfigError, match="batch_windows"):
        model.predict([tone_and_noise(1.0)], batch_windows=0)


def test_model_is_loaded_once_per_process(models_dir, model, caplog):
    with caplog.at_level(logging.INFO, logger="sat_mir.models.audiobox"):
        again = load_aesthetics(models_dir, device="cpu")
    assert again is model
    assert not [r for r in caplog.records if "loaded audiobox" in r.message]


# --------------------------------------------------------------------------- the extractor


def test_registered_with_declared_outputs():
    assert REGISTRY["aesthetics"] is Aesthetics
    assert Aesthetics.device == "model"
    assert [s.key for s in Aesthetics.outputs] == KEYS
    assert all(s.range == (1.0, 10.0) for s in Aesthetics.outputs)


def test_config_file_lists_every_option():
    conf = yaml.safe_load((REPO / "conf" / "extractors" / "aesthetics.yaml").read_text())["aesthetics"]
    assert conf.pop("enabled") == "auto"
    assert conf["models_dir"] == "${models_dir}"  # the run's models folder
    assert set(conf) == set(Aesthetics.Config.__dataclass_fields__)
    conf.pop("models_dir")
    assert Aesthetics.from_mapping(conf).config == Aesthetics.Config()


def test_demo_songs_batched_equal_one_at_a_time(extractor, demo_ctxs):
    batch = extractor.compute_batch(demo_ctxs)
    assert len(batch) == len(demo_ctxs)
    for ctx, result in zip(demo_ctxs, batch):
        assert not isinstance(result, Exception), result
        assert sorted(result.values) == KEYS
        assert all(isinstance(v, float) and np.isfinite(v) for v in result.values.values())
        extractor.check(result)  # declared keys, finite; out-of-range values only flagged
        single = extractor.compute(ctx)
        for key in KEYS:
            assert single.values[key] == pytest.approx(result.values[key], abs=2e-4)
    # four different songs, four different ratings
    assert len({r.values["aes_pq"] for r in batch}) == 4


def test_deterministic_and_input_dependent(extractor, demo_ctxs):
    mix = demo_ctxs[0].mix.samples
    first = extractor.compute(synthetic(mix))
    assert extractor.compute(synthetic(mix)).values == first.values
    noisy = mix + 0.2 * np.random.default_rng(1).standard_normal(mix.shape).astype(np.float32)
    changed = extractor.compute(synthetic(noisy))
    assert max(abs(changed.values[k] - first.values[k]) for k in KEYS) > 1e-2


def test_a_bad_item_fails_alone(extractor, demo_ctxs):
    silent = synthetic(np.zeros((2, 44100)))
    out_of_phase = synthetic(np.stack([np.ones(44100), -np.ones(44100)]) * 0.5)
    results = extractor.compute_batch([silent, demo_ctxs[1], out_of_phase])
    assert isinstance(results[0], ExtractorError) and "silent" in str(results[0])
    assert isinstance(results[2], ExtractorError)
    assert sorted(results[1].values) == KEYS
    with pytest.raises(ExtractorError, match="silent"):
        extractor.compute(silent)


def test_out_of_range_ratings_are_flagged_not_clamped(extractor):
    from sat_mir.features.registry import ExtractorResult

    flags = extractor.check(ExtractorResult(values={"aes_ce": 10.6, "aes_cu": 5.0, "aes_pc": 0.8, "aes_pq": 7.0}))
    assert set(flags) == {"aes_ce", "aes_pc"}


# --------------------------------------------------------------------------- weights and the network


def test_missing_weights_name_the_file_and_the_download_command(tmp_path, no_network):
    ex = Aesthetics(Aesthetics.Config(models_dir=str(tmp_path), device="cpu"))
    with pytest.raises(WeightsError) as err:
        ex.preflight()
    message = str(err.value)
    assert str(tmp_path / "audiobox" / "checkpoint.pt") in message
    assert "python -m sat_mir.models download audiobox" in message
    with pytest.raises(WeightsError, match="checkpoint.pt"):
        ex.compute(synthetic(tone_and_noise(1.0, sr=44100)))


def test_loads_from_the_local_file_without_the_network(tool, tmp_path, no_network, caplog):
    tool.make_tiny_audiobox(tmp_path, seed=3)
    with caplog.at_level(logging.INFO, logger="sat_mir.models.audiobox"):
        m = load_aesthetics(tmp_path, device="cpu")
    assert [r.message for r in caplog.records if "loaded audiobox" in r.message] == [
        f"loaded audiobox from {tmp_path / 'audiobox'} on cpu"]
    assert set(m.predict([tone_and_noise(2.0)])[0]) == set(AXES)


def test_damaged_checkpoint_is_a_weights_error(tmp_path, no_network):
    folder = tmp_path / "audiobox"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="checkpoint.pt.*download audiobox"):
        load_aesthetics(tmp_path, device="cpu")


def test_encoder_settings_from_a_file_are_checked(tool, tmp_path):
    path = tool.make_tiny_audiobox(tmp_path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    ckpt["model_cfg"]["encoder_cfg"]["conv_feature_layers"] = "__import__('os').getcwd()"
    torch.save(ckpt, path)
    with pytest.raises(WeightsError, match="encoder_cfg"):
        load_aesthetics(tmp_path, device="cpu")


def test_invalid_device_is_a_config_error(models_dir):
    with pytest.raises(ConfigError, match="device"):
        Aesthetics(Aesthetics.Config(models_dir=str(models_dir), device="tpu")).preflight()


@pytest.mark.slow
def test_base_size_checkpoint_loads_in_the_unmodified_package(tool, tmp_path, no_network):
    """The release's architecture with random weights: the package's own AesPredictor reads
    our file as it is, so the format (not only our loader) matches the released one."""
    from audiobox_aesthetics.infer import AesPredictor

    path = tool.make_tiny_audiobox(tmp_path, size="base")
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    assert len(ckpt["state_dict"]) == 324  # the released checkpoint's tensor count
    assert "encoder_cfg" not in ckpt["model_cfg"]
    predictor = AesPredictor(checkpoint_pth=str(path))
    ours = load_aesthetics(tmp_path, device="cpu")
    for k, v in predictor.model.state_dict().items():
        assert torch.equal(v.cpu(), ours.net.state_dict()[k])
    x = tone_and_noise(4.0)
    theirs = predictor.forward([{"path": torch.from_numpy(x)[None], "sample_rate": SAMPLE_RATE}])[0]
    mine = ours.predict([x])[0]
    for axis in AXES:
        assert mine[axis] == pytest.approx(theirs[axis], abs=1e-4)
    audiobox._CACHE.clear()  # release the 95 M-parameter model
