"""Music Flamingo descriptions through transformers' own classes with a tiny random checkpoint on the CPU."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import numpy as np
import pytest
import yaml
from conftest import REPO, stand_in_fixtures

import sat_mir.features.flamingo  # noqa: F401  - registers the extractor
from sat_mir.audio.context import TrackContext
from sat_mir.errors import ConfigError, WeightsError
from sat_mir.features.flamingo import (
    DEFAULT_PROMPTS,
    PROMPT_TYPES,
    Flamingo,
    _sampled,
    fill_template,
    normalize_text,
)
from sat_mir.features.registry import REGISTRY
from sat_mir.models import flamingo as mf

SR = 16000


tool, models_dir = stand_in_fixtures(
    "make_tiny_flamingo", lambda tool, d: tool.make_tiny_flamingo(d, arch="musicflamingo", seed=0))


@pytest.fixture(scope="module")
def tiny(models_dir):
    mf.clear_cache()
    return mf.load_flamingo(models_dir=models_dir, device="cpu")


def _flamingo(models_dir, **options) -> Flamingo:
    return Flamingo.from_mapping({"models_dir": str(models_dir), "device": "cpu", "max_new_tokens": 6, **options})


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


class _FeatureContext(TrackContext):
    """What the runner will hand over once TrackContext carries the sidecar's values."""

    def __init__(self, sources, features, track_id=None):
        super().__init__(sources)
        self.features = features
        self.track_id = track_id


@pytest.fixture(scope="module")
def demo_ctxs(demo_library):
    mixes = sorted(demo_library.glob("*/full_mix.flac"))
    assert len(mixes) == 4
    return lambda: [TrackContext({"mix": m}) for m in mixes]


# --------------------------------------------------------------------------- the tiny checkpoint


def test_tiny_checkpoint_has_the_real_layout_and_classes(models_dir, tiny):
    folder = models_dir / "music-flamingo-2601-hf"
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["MusicFlamingoForConditionalGeneration"]
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1  # sharded like the 8 B checkpoints
    assert type(tiny.model).__name__ == "MusicFlamingoForConditionalGeneration"
    assert type(tiny.processor).__name__ == "MusicFlamingoProcessor"
    tok = tiny.processor.tokenizer
    for t in ("<sound>", "<|sound_bos|>", "<|sound_eos|>", "<|im_start|>", "<|im_end|>"):
        assert tok.convert_tokens_to_ids(t) != tok.unk_token_id
    assert tiny.model.config.audio_token_id == tok.convert_tokens_to_ids("<sound>")
    rendered = tiny.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "Describe it."}, {"type": "audio", "audio": _tone(1, 440)}]}],
        tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>user\n<sound>Describe it.<|im_end|>\n<|im_start|>assistant\n")
    assert tiny.max_audio_s == 1200
    assert sum(p.numel() for p in tiny.model.parameters()) < 500_000


def test_audio_reaches_the_model_as_sound_tokens_of_its_length(tiny):
    # the processor expands <sound> to one token per 40 ms of audio (conv stride 2, pool 2, 10 ms hop)
    inputs = tiny._inputs([_tone(2.0, 440), _tone(6.0, 440)], ["a", "a"])
    sound = tiny.model.config.audio_token_id
    counts = (inputs["input_ids"] == sound).sum(dim=1).tolist()
    assert counts == [50, 150]
    assert (inputs["attention_mask"][0, :100] == 0).all()  # the shorter prompt is padded on the left
    assert inputs["input_features"].dtype == tiny.model.dtype


# --------------------------------------------------------------------------- model outputs


def test_different_audio_gives_different_first_token_scores(tiny):
    prompt = DEFAULT_PROMPTS["instrumentation"]
    tone, noise = _tone(3, 220), _noise(3)
    a = tiny.first_token_logits([tone], [prompt])[0]
    b = tiny.first_token_logits([noise], [prompt])[0]
    again = tiny.first_token_logits([tone], [prompt])[0]
    np.testing.assert_array_equal(a, again)
    spread = np.abs(a).mean()
    assert np.abs(a - b).max() > 1e-3 * spread  # the audio changes what the model would say
    # batched with left padding = one at a time (the padding is masked out)
    both = tiny.first_token_logits([tone, _noise(5)], [prompt, prompt])
    np.testing.assert_allclose(both[0], a, atol=1e-4 * max(spread, 1.0))


def test_batched_generation_equals_one_by_one(tiny):
    audios, prompts = [_tone(2, 330), _noise(4, 1)], [DEFAULT_PROMPTS["full"], DEFAULT_PROMPTS["structure"]]
    batched = tiny.generate(audios, prompts, max_new_tokens=5)
    single = [tiny.generate([a], [p], max_new_tokens=5)[0] for a, p in zip(audios, prompts)]
    assert batched == single
    assert all(isinstance(t, str) for t in batched)


# --------------------------------------------------------------------------- the extractor


def test_every_prompt_gives_a_normalised_string_and_the_model_loads_once(models_dir, demo_ctxs, caplog):
    mf.clear_cache()
    ex = _flamingo(models_dir, prompts=list(PROMPT_TYPES), batch_size=8)
    before = mf.load_count()
    with caplog.at_level(logging.INFO, logger="sat_mir.models.flamingo"):
        ctxs = demo_ctxs()  # decoded once; the model runs afresh on every call
        first = ex.compute_batch(ctxs)
        second = ex.compute_batch(ctxs[:2])
        single = ex.compute(ctxs[3])
    assert mf.load_count() - before == 1
    loads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loaded ")]
    assert len(loads) == 1
    assert loads[0].startswith(f"loaded music-flamingo-2601-hf from {models_dir / 'music-flamingo-2601-hf'} on cpu")
    keys = {f"flamingo_{p}" for p in PROMPT_TYPES}
    for result in first:
        assert not isinstance(result, Exception), result
        assert set(result.values) | set(result.absent) == keys
        assert all(why == "the model answered with no text" for why in result.absent.values())
        assert len(result.values) >= 3
        for value in result.values.values():
            assert isinstance(value, str) and value == normalize_text(value) and value
        ex.check(result)  # declared keys only
    # same input → same output (greedy decoding), whatever the batch around it
    assert [r.values for r in second] == [r.values for r in first[:2]]
    assert single.values == first[3].values


def test_an_unreadable_track_fails_alone_and_long_audio_is_cut(models_dir, demo_library, tmp_path, monkeypatch):
    seen = []
    original = mf.FlamingoModel.generate

    def spy(self, audios, prompts, **kwargs):
        seen.extend(a.size for a in audios)
        return original(self, audios, prompts, **kwargs)

    monkeypatch.setattr(mf.FlamingoModel, "generate", spy)
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio")
    mix = min(demo_library.glob("*/full_mix.flac"))
    ex = _flamingo(models_dir, max_audio_s=2.5)
    good, bad = ex.compute_batch([TrackContext({"mix": mix}), TrackContext({"mix": broken})])
    assert isinstance(bad, Exception) and "broken.flac" in str(bad)
    assert set(good.values) | set(good.absent) == {"flamingo_full"}
    assert seen == [int(2.5 * SR)]


def test_probability_zero_skips_every_track_without_loading(tmp_path, demo_ctxs):
    ex = _flamingo(tmp_path / "no_models", prompts=["full", "structure"], probability=0.0)
    before = mf.load_count()
    results = ex.compute_batch(demo_ctxs())
    assert mf.load_count() == before
    for r in results:
        assert r.values == {}
        assert set(r.absent) == {"flamingo_full", "flamingo_structure"}
        assert all("not in the sample (probability 0" in why for why in r.absent.values())


def test_sampling_is_deterministic_per_track_and_seed():
    ids = [f"track_{i:05d}" for i in range(4000)]
    picked = [_sampled(t, 0, 0.25) for t in ids]
    assert picked == [_sampled(t, 0, 0.25) for t in ids]
    assert 0.22 < np.mean(picked) < 0.28
    other_seed = [_sampled(t, 1, 0.25) for t in ids]
    assert picked != other_seed
    # a larger probability keeps every track a smaller one kept
    assert all(_sampled(t, 0, 0.5) for t, p in zip(ids, picked, strict=True) if p)
    assert all(_sampled(t, 0, 1.0) for t in ids[:10]) and not any(_sampled(t, 0, 0.0) for t in ids[:10])


def test_measured_values_fill_the_prompt(models_dir, demo_library):
    mix = min(demo_library.glob("*/full_mix.flac"))
    features = {"bpm": 127.6, "key": "A minor",
                "essentia_genre": {"Electronic---Techno": 0.21, "Electronic---Goa Trance": 0.39}}
    ex = _flamingo(models_dir, prompts=["full", "technical", "structure"],
                   texts={"structure": "At {bpm:.1f} BPM, describe the sections."})
    texts, absent = ex.prompts_for(_FeatureContext({"mix": mix}, features))
    assert absent == {}
    assert texts["full"].startswith("Measured tempo: 128 BPM. Estimated key: A minor. A genre classifier gives "
                                    "(independent probabilities, 0-1): Electronic - Goa Trance (0.39), "
                                    "Electronic - Techno (0.21). Describe this track")
    assert texts["structure"] == "At 127.6 BPM, describe the sections."
    assert ex.reads_features == ["bpm", "essentia_genre", "key"]

    # without values: hints drop out silently, a prompt that names a value is left out
    texts, absent = ex.prompts_for(_FeatureContext({"mix": mix}, {"key": "C major"}))
    assert texts["full"].startswith("Estimated key: C major. Describe this track")
    assert texts["technical"].startswith("Estimated key: C major. As a music critic")
    assert set(absent) == {"flamingo_structure"} and "bpm" in absent["flamingo_structure"]
    texts, _ = ex.prompts_for(TrackContext({"mix": mix}))  # a context without features
    assert texts["full"].startswith("Describe this track in full detail")

    result = ex.compute(_FeatureContext({"mix": mix}, {"key": "C major"}))
    assert "flamingo_structure" in result.absent
    assert set(result.values) | set(result.absent) == {"flamingo_full", "flamingo_technical", "flamingo_structure"}


def test_fill_template_formats():
    text, missing = fill_template("{a} {b:.2f} {c} {hints} {d}", {"a": 3, "b": 1.23456, "c": float("nan")},
                                  hints="H.")
    assert text == "3 1.23 H." and missing == ["c", "d"]
    assert fill_template("{x:.0f}", {"x": "not a number"})[1] == ["x"]
    assert fill_template("{tags}", {"tags": {f"t{i}": i / 10 for i in range(9)}}, top_k=2)[0] == "t8 (0.80), t7 (0.70)"


def test_normalize_text():
    raw = "\u201cLo\u2011fi\u201d beats \u2013 warm\u2014dusty\u00a0pads,\n\n it\u2019s  calm\u2026 \ufffd"
    assert normalize_text(raw) == "\"Lo-fi\" beats - warm--dusty pads, it's calm..."
    assert normalize_text("\uff21\uff22 \u2212 \ufb01ne  \t") == "AB - fine"


# --------------------------------------------------------------------------- weights and config


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_hub"))


def test_missing_weights_fail_fast_naming_the_file_and_the_command(tmp_path, models_dir, no_network, empty_hf_cache):
    ex = _flamingo(tmp_path / "empty")
    with pytest.raises(WeightsError, match=r"music-flamingo-2601-hf[/\\]config\.json.*"
                                           r"python -m sat_mir\.models download music-flamingo-2601-hf"):
        ex.preflight()
    # an item fails with the same error instead of a made-up text
    (result,) = ex.compute_batch([TrackContext({"mix": tmp_path / "unused.flac"})])
    assert isinstance(result, WeightsError)
    # a shard named in the index but absent
    broken = tmp_path / "broken"
    shutil.copytree(models_dir / "music-flamingo-2601-hf", broken / "music-flamingo-2601-hf")
    shard = max((broken / "music-flamingo-2601-hf").glob("model-0000*.safetensors"))
    shard.unlink()
    with pytest.raises(WeightsError, match=rf"{shard.name}.*download music-flamingo-2601-hf"):
        _flamingo(broken).preflight()
    with pytest.raises(WeightsError, match="music-flamingo-hf"):
        _flamingo(tmp_path / "empty", model="music-flamingo-hf").preflight()


def test_the_older_checkpoint_loads_audioflamingo3_from_its_config(tool, tmp_path):
    tool.make_tiny_flamingo(tmp_path, arch="audioflamingo3", seed=1)
    loaded = mf.load_flamingo("music-flamingo-hf", models_dir=tmp_path, device="cpu")
    assert type(loaded.model).__name__ == "AudioFlamingo3ForConditionalGeneration"
    assert type(loaded.processor).__name__ == "AudioFlamingo3Processor"
    assert loaded.max_audio_s == 600
    (text,) = loaded.generate([_tone(2, 440)], ["Describe it."], max_new_tokens=3)
    assert isinstance(text, str)
    mf.clear_cache()


def test_models_are_described_as_non_commercial():
    assert [s.name for s in mf.MODELS] == ["music-flamingo-2601-hf", "music-flamingo-hf"]
    for spec in mf.MODELS:
        assert not spec.commercial_use and "non-commercial" in spec.licence
        assert spec.hf_repo == f"nvidia/{spec.folder}"
        assert {f.path for f in spec.files} >= {"config.json", "model.safetensors.index.json"}


def test_config_file_and_errors(models_dir):
    options = yaml.safe_load((REPO / "conf/extractors/flamingo.yaml").read_text())["flamingo"]
    assert set(options) - {"enabled"} == {f.name for f in dataclasses.fields(Flamingo.Config)}
    ex = REGISTRY["flamingo"].from_mapping(options)
    assert ex.texts == DEFAULT_PROMPTS and ex.device == "model"
    assert [s.key for s in ex.outputs] == [f"flamingo_{p}" for p in PROMPT_TYPES]
    with pytest.raises(ConfigError, match="lyrics"):
        _flamingo(models_dir, prompts=["lyrics"])
    with pytest.raises(ConfigError, match="field"):
        _flamingo(models_dir, texts={"full": "{features[bpm]}"})
    with pytest.raises(ConfigError, match="braces"):
        _flamingo(models_dir, texts={"full": "an { open brace"})
    with pytest.raises(ConfigError, match="probability"):
        _flamingo(models_dir, probability=1.5)
    with pytest.raises(ConfigError, match="dtype"):
        mf.load_flamingo(models_dir=models_dir, device="cpu", dtype="int8")
    with pytest.raises(ConfigError, match="unknown Music Flamingo model"):
        mf.load_flamingo("music-flamingo-3", models_dir=models_dir)
