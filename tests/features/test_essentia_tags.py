"""Essentia Discogs-EffNet classifiers through Essentia's own TensorFlow loaders, with tiny stand-in graphs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, stand_in_fixtures

from sat_mir.audio.context import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.catalog import scan_library
from sat_mir.errors import ConfigError, ExtractorError, WeightsError
from sat_mir.features import essentia_tags
from sat_mir.features.essentia_tags import EssentiaTags
from sat_mir.features.registry import build_extractors
from sat_mir.models import essentia_tf, locate
from sat_mir.models.essentia_tf import EFFNET, ESSENTIA, HEADS, load_models

SR = 44100
KEYS = {"essentia_genre", "essentia_genre_top", "essentia_mood", "essentia_instrument", "danceability", "atonality",
        "voice_probability"}


tool, models_dir = stand_in_fixtures("make_tiny_essentia", lambda tool, d: tool.make_tiny_essentia(d, seed=0))


@pytest.fixture(scope="module")
def extractor(models_dir) -> EssentiaTags:
    (ex,) = build_extractors({"essentia": {"enabled": True, "models_dir": str(models_dir)}})
    assert isinstance(ex, EssentiaTags)
    return ex


@pytest.fixture(scope="module")
def demo_mixes(demo_library) -> dict[str, Path]:
    return {t.name: t.sources["mix"] for t in scan_library(demo_library)}


def _ctx(samples: np.ndarray, sr: int = SR) -> TrackContext:
    x = np.atleast_2d(samples).astype(np.float32)
    return TrackContext({"mix": Path("<mix>")}, loader=lambda _: Audio(x, sr))


def _tone(seconds: float, freqs=(220.0,), noise: float = 0.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs)
    return (x + noise * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


# --------------------------------------------------------------------------- stand-in files


def test_standins_are_small_deterministic_graphs_in_the_locate_layout(tool, models_dir, tmp_path):
    folder = locate(ESSENTIA, models_dir)
    assert folder == models_dir / "essentia"
    for f in ESSENTIA.files:
        assert (folder / f.path).is_file()
        assert f.url.startswith("https://essentia.upf.edu/models/") and f.url.endswith(f.path)
    assert all((folder / f"{s.stem}.pb").stat().st_size < 8000 for s in (EFFNET, *HEADS.values()))
    tool.make_tiny_essentia(tmp_path, seed=0)
    for f in ESSENTIA.files:
        assert (tmp_path / "essentia" / f.path).read_bytes() == (folder / f.path).read_bytes()
    tool.make_tiny_essentia(tmp_path, seed=1)
    assert (tmp_path / "essentia" / "discogs-effnet-bs64-1.pb").read_bytes() != (folder / "discogs-effnet-bs64-1.pb").read_bytes()
    # the node names Essentia is asked for exist, with the real ops' two-output layout
    GraphDef = tool.graph_def_classes()["GraphDef"]
    g = GraphDef.FromString((folder / "discogs-effnet-bs64-1.pb").read_bytes())
    nodes = {n.name: n for n in g.node}
    assert nodes["serving_default_melspectrogram"].op == "Placeholder"
    assert nodes["PartitionedCall"].op == "IdentityN" and len(nodes["PartitionedCall"].input) == 2
    assert not ESSENTIA.commercial_use and "CC BY-NC-SA 4.0" in ESSENTIA.licence


def test_graphs_run_in_essentia_with_the_real_node_names(models_dir):
    m = load_models(models_dir / "essentia", tuple(HEADS))
    assert load_models(models_dir / "essentia", tuple(HEADS)) is m  # loaded once per process
    x = np.random.default_rng(0).standard_normal(10 * 16000).astype(np.float32) * 0.1
    emb = m.embeddings(x)
    assert emb.shape == (9, 1280) and emb.dtype == np.float32 and np.all(np.isfinite(emb))
    for key, width in (("genre", 400), ("mood", 56), ("instrument", 40), ("danceability", 2), ("tonality", 2),
                       ("voice", 2)):
        p = m.predict(key, emb)
        assert p.shape == (9, width) and np.all((p >= 0) & (p <= 1))
    for key in ("danceability", "tonality", "voice"):  # softmax heads
        np.testing.assert_allclose(m.predict(key, emb).sum(axis=1), 1.0, atol=1e-5)
    # the effnet's own activations output (PartitionedCall:0), as the real model has it
    es = essentia_tf._essentia_standard()
    act = es.TensorflowPredictEffnetDiscogs(graphFilename=str(models_dir / "essentia" / "discogs-effnet-bs64-1.pb"),
                                            output="PartitionedCall:0")(x)
    assert act.shape == (9, 400)


# --------------------------------------------------------------------------- extractor end to end


def test_demo_songs_end_to_end(extractor, demo_mixes, models_dir):
    ctxs = [TrackContext({"mix": p}) for p in demo_mixes.values()]
    results = extractor.compute_batch(ctxs)
    classes = load_models(models_dir / "essentia", tuple(HEADS)).classes
    seen = []
    for r in results:
        assert not isinstance(r, Exception), r
        assert set(r.values) == KEYS and extractor.check(r) == {}
        for key, head in (("essentia_genre", "genre"), ("essentia_mood", "mood"), ("essentia_instrument", "instrument")):
            tags = r.values[key]
            assert 1 <= len(tags) <= 10 and set(tags) <= set(classes[head])
            probs = list(tags.values())
            assert probs == sorted(probs, reverse=True) and min(probs) >= 0.1
        genre, style = next(iter(r.values["essentia_genre"])).split("---")
        assert r.values["essentia_genre_top"] == f"{style} ({genre})"
        assert 0.0 <= r.values["danceability"] <= 1.0 and 0.0 <= r.values["atonality"] <= 1.0
        assert 0.0 <= r.values["voice_probability"] <= 1.0
        seen.append((r.values["danceability"], r.values["atonality"], r.values["voice_probability"],
                     tuple(r.values["essentia_mood"].items())))
    assert len(set(seen)) == len(seen)  # each song its own answer
    # batching the heads over items changes nothing, and the same input gives the same output
    alone = extractor.compute(TrackContext({"mix": next(iter(demo_mixes.values()))}))
    assert alone.values == results[0].values


def test_values_are_the_heads_mean_under_the_json_labels(extractor, models_dir):
    x = _tone(8.0, (110.0, 330.0), noise=0.05)
    r = extractor.compute(_ctx(x))
    m = load_models(models_dir / "essentia", tuple(HEADS))
    from sat_mir.audio.resample import resample

    emb = m.embeddings(resample(x, sr_in=SR, sr_out=16000, quality="HQ"))
    mood = m.predict("mood", emb).mean(axis=0)
    for label, prob in r.values["essentia_mood"].items():
        assert prob == pytest.approx(mood[m.classes["mood"].index(label)], abs=1e-4)
    dance = m.predict("danceability", emb).mean(axis=0)
    assert r.values["danceability"] == pytest.approx(dance[m.classes["danceability"].index("danceable")], abs=1e-4)
    voice = m.predict("voice", emb).mean(axis=0)
    assert r.values["voice_probability"] == pytest.approx(voice[m.classes["voice"].index("voice")], abs=1e-4)


def test_labels_and_class_order_come_from_each_models_json(tool, extractor, tmp_path):
    renamed = {
        "genre": [f"Rock {i}---Indie {i}" for i in range(400)],
        "mood": [f"calm{i}" for i in range(56)],
        "danceability": ["not_danceable", "danceable"],  # the graph is unchanged: only the names swap
        "tonality": ["tonal", "atonal"],
        "voice": ["voice", "instrumental"],
    }
    tool.make_tiny_essentia(tmp_path, seed=0, classes=renamed)
    other = EssentiaTags(EssentiaTags.Config(models_dir=str(tmp_path)))
    x = _tone(6.0, (196.0, 247.0, 294.0), noise=0.02)
    a, b = extractor.compute(_ctx(x)).values, other.compute(_ctx(x)).values
    std = tool.STANDIN_CLASSES
    assert b["essentia_mood"] == {renamed["mood"][std["mood"].index(k)]: v for k, v in a["essentia_mood"].items()}
    assert all(k.startswith("Rock ") for k in b["essentia_genre"])
    top = renamed["genre"][std["genre"].index(next(iter(a["essentia_genre"])))]
    assert b["essentia_genre_top"] == "{1} ({0})".format(*top.split("---"))
    assert b["danceability"] == pytest.approx(1.0 - a["danceability"], abs=2e-4)
    assert b["atonality"] == pytest.approx(1.0 - a["atonality"], abs=2e-4)
    assert b["voice_probability"] == pytest.approx(1.0 - a["voice_probability"], abs=2e-4)
    assert b["essentia_instrument"] == a["essentia_instrument"]


def test_outputs_follow_the_input_and_repeat(extractor):
    low = extractor.compute(_ctx(_tone(5.0, (55.0, 110.0)))).values
    noisy = extractor.compute(_ctx(_tone(5.0, (2000.0,), noise=0.3, seed=1))).values
    assert low["danceability"] != noisy["danceability"] and low["essentia_mood"] != noisy["essentia_mood"]
    assert extractor.compute(_ctx(_tone(5.0, (55.0, 110.0)))).values == low


def test_top_k_and_threshold(models_dir):
    x = _tone(4.0, (440.0,), noise=0.1)
    few = EssentiaTags(EssentiaTags.Config(models_dir=str(models_dir), top_k=3, threshold=0.0)).compute(_ctx(x)).values
    strict = EssentiaTags(EssentiaTags.Config(models_dir=str(models_dir), threshold=0.97)).compute(_ctx(x)).values
    assert len(few["essentia_mood"]) == 3 and len(few["essentia_genre"]) == 3
    assert all(v >= 0.97 for tags in ("essentia_genre", "essentia_mood") for v in strict[tags].values())


def test_shorter_than_one_patch_is_an_error_not_a_value(extractor):
    with pytest.raises(ExtractorError, match="shorter than one Discogs-EffNet patch"):
        extractor.compute(_ctx(_tone(1.5, (220.0,))))
    ok = _ctx(_tone(3.0, (220.0,)))
    short, good = extractor.compute_batch([_ctx(_tone(1.0, (220.0,))), ok])
    assert isinstance(short, ExtractorError)
    assert good.values == extractor.compute(_ctx(_tone(3.0, (220.0,)))).values


# --------------------------------------------------------------------------- weights and config


def test_missing_weights_name_the_file_and_the_download_command(models_dir, tmp_path, no_network):
    ex = EssentiaTags(EssentiaTags.Config(models_dir=str(tmp_path / "empty")))
    with pytest.raises(WeightsError, match=r"discogs-effnet-bs64-1\.pb.*python -m sat_mir\.models download essentia"):
        ex.preflight()
    (result,) = ex.compute_batch([_ctx(_tone(3.0))])
    assert isinstance(result, WeightsError)
    shutil.copytree(models_dir / "essentia", tmp_path / "partial" / "essentia")
    (tmp_path / "partial" / "essentia" / "tonal_atonal-discogs-effnet-1.json").unlink()
    with pytest.raises(WeightsError, match=r"tonal_atonal-discogs-effnet-1\.json"):
        EssentiaTags(EssentiaTags.Config(models_dir=str(tmp_path / "partial"))).preflight()


def test_mismatched_label_file_is_a_weights_error(models_dir, tmp_path):
    import json

    shutil.copytree(models_dir / "essentia", tmp_path / "essentia")
    meta_path = tmp_path / "essentia" / "mtg_jamendo_moodtheme-discogs-effnet-1.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = meta["classes"][:-1]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="55 classes"):
        EssentiaTags(EssentiaTags.Config(models_dir=str(tmp_path))).compute(_ctx(_tone(3.0)))


def test_config_file_and_validation():
    conf = yaml.safe_load((REPO / "conf" / "extractors" / "essentia.yaml").read_text())["essentia"]
    assert conf.pop("enabled") == "auto"
    assert set(conf) == {f for f in EssentiaTags.Config.__dataclass_fields__}
    assert conf.pop("models_dir") == "${models_dir}"  # the run's models folder
    assert EssentiaTags.from_mapping(conf).config == EssentiaTags.Config()
    assert EssentiaTags.device == "model" and essentia_tags.EssentiaTags.name == "essentia"
    with pytest.raises(ConfigError, match="device"):
        EssentiaTags(EssentiaTags.Config(device="cuda"))
    with pytest.raises(ConfigError, match="top_k"):
        EssentiaTags(EssentiaTags.Config(top_k=0))
    with pytest.raises(ConfigError, match="threshold"):
        EssentiaTags(EssentiaTags.Config(threshold=1.5))
