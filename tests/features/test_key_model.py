"""The fitted key model: its cues, its probabilities, the shipped weights and the fit tool."""

import json

import numpy as np
import pytest

from sat_mir.errors import ConfigError
from sat_mir.features.key_model import CUES, key_cues, key_probabilities, load_key_model
from sat_mir.features.tonal import PITCH_CLASSES, PROFILES, Tonal, _correlations, _profile_matrix

PROFILE_MATRICES = {name: _profile_matrix(name) for name in PROFILES}
# C for 4 s, F, G and A minor for 2 s each
SEGMENTS = [(0.0, 4.0, 0, "maj"), (4.0, 6.0, 5, "maj"), (6.0, 8.0, 7, "maj"), (8.0, 10.0, 9, "min")]
PITCHES = [[0, 4, 7], [5, 9, 0], [7, 11, 2], [9, 0, 4]]


def _scale() -> np.ndarray:
    pcp = np.zeros(12)
    pcp[[0, 2, 4, 5, 7, 9, 11]] = 1.0  # the C major scale
    return pcp


def c_major_cues(**overrides) -> dict[str, np.ndarray]:
    pcp = _scale()
    args = dict(pcp=pcp, plain=pcp, notes=pcp, opening=None, opening_bass=None, bass=None, closing=None,
                phrase=None, segments=SEGMENTS, pitch_classes=PITCHES, profiles=PROFILE_MATRICES)
    return key_cues(**{**args, **overrides})


def test_the_chord_cues_measure_each_keys_share_of_the_chorded_time():
    cues = c_major_cues()
    assert set(cues) == set(CUES) and all(v.shape == (2, 12) for v in cues.values())
    # C major and A minor hold every chord; G major lacks the F major chord's F (2 s of 10)
    assert cues["diatonic"][0, 0] == cues["diatonic"][1, 9] == 1.0
    assert cues["diatonic"][0, 7] == pytest.approx(0.8)
    assert cues["tonic_chord"][0, 0] == pytest.approx(0.4) and cues["tonic_chord"][1, 9] == pytest.approx(0.2)
    # the dominant is major in both modes (the harmonic minor's V): G major is C major's and C minor's
    assert cues["dominant_chord"][0, 0] == cues["dominant_chord"][1, 0] == pytest.approx(0.2)
    assert cues["subdominant_chord"][0, 0] == pytest.approx(0.2) and cues["subdominant_chord"][1, 0] == 0.0
    assert cues["first_chord"][0, 0] == 1.0 and cues["first_chord"].sum() == 1.0
    assert cues["last_chord"][1, 9] == 1.0 and cues["last_chord"].sum() == 1.0
    np.testing.assert_allclose(cues["albrecht"], _correlations(_scale(), PROFILE_MATRICES["albrecht"]))
    assert cues["minor"][1].tolist() == [1.0] * 12 and cues["minor"][0].sum() == 0.0
    # cues with nothing to read score every key alike
    empty = c_major_cues(segments=[], pitch_classes=[])
    for name in ("diatonic", "tonic_chord", "first_chord", "last_chord", "opening", "bass_tonic", "phrase"):
        assert np.ptp(empty[name]) == 0.0, name


def test_the_bass_cues_score_the_tonic_and_the_dominant_of_every_key():
    bass = np.zeros(12)
    bass[7] = 1.0  # a G pedal
    cues = c_major_cues(bass=bass)
    assert np.argmax(cues["bass_tonic"][0]) == 7  # G is the tonic of G ...
    assert np.argmax(cues["bass_dominant"][0]) == 0  # ... and the dominant of C
    np.testing.assert_allclose(cues["bass_tonic"][0], cues["bass_tonic"][1])


def test_the_probabilities_are_a_softmax_of_the_weighted_standardised_cues():
    cues = c_major_cues()
    n = len(CUES)
    flat = {"cues": list(CUES), "mean": [0.0] * n, "scale": [1.0] * n, "weights": [0.0] * n}
    np.testing.assert_allclose(key_probabilities(cues, flat), np.full((2, 12), 1 / 24))
    only = dict(flat, weights=[5.0 if c == "tonic_chord" else 0.0 for c in CUES])
    p = key_probabilities(cues, only)
    assert p.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(p), p.shape) == (0, 0)  # C major: 40 % of the time on its tonic
    # standardising: a cue's mean is subtracted and it is divided by its scale
    scaled = dict(only, scale=[2.0] * n, weights=[10.0 if c == "tonic_chord" else 0.0 for c in CUES])
    np.testing.assert_allclose(key_probabilities(cues, scaled), p)
    # a temperature divides the scores: 5 at temperature 2 is 2.5 without one
    half = dict(only, weights=[2.5 if c == "tonic_chord" else 0.0 for c in CUES])
    np.testing.assert_allclose(key_probabilities(cues, dict(only, temperature=2.0)), key_probabilities(cues, half))
    assert key_probabilities(cues, dict(only, temperature=2.0)).max() < p.max()


def test_the_shipped_weights_hold_both_variants_and_every_cue():
    model = load_key_model()
    for variant in ("stems", "mix"):
        v = model[variant]
        assert v["cues"] == list(CUES)
        assert len(v["mean"]) == len(v["scale"]) == len(v["weights"]) == len(CUES)
        assert min(v["scale"]) > 0 and np.isfinite(v["weights"]).all()
    assert model["fitted_on"]
    with pytest.raises(ConfigError, match="key_model"):
        Tonal.from_mapping({"key_model": "guess"})


def synthetic_rows(rng: np.random.Generator, corpus: str, n: int, noise: float = 0.3) -> list[dict]:
    """Fit-tool rows of ``n`` songs in random keys, in both variants: every cue noise but the
    diatonic one, which marks the true key (3 above the rest) under ``noise``."""
    out = []
    for i in range(n):
        k = int(rng.integers(24))
        key = f"{PITCH_CLASSES[k % 12]} {'minor' if k >= 12 else 'major'}"
        for variant in ("stems", "mix"):
            cues = {c: rng.standard_normal(24).tolist() for c in CUES}
            marked = np.zeros(24)
            marked[k] = 3.0
            cues["diatonic"] = (marked + noise * rng.standard_normal(24)).tolist()
            out.append({"corpus": corpus, "id": f"{corpus}{i}", "key": key, "variant": variant,
                        "profile_key": "C major", "cues": cues})
    return out


def test_the_fit_tool_weighs_the_cue_that_names_the_key(tmp_path, monkeypatch):
    from conftest import load_tool

    fit = load_tool("fit_key")
    rng = np.random.default_rng(7)
    caches = [tmp_path / "a.json", tmp_path / "b.json"]
    caches[0].write_text(json.dumps(synthetic_rows(rng, "sel", 60)))
    caches[1].write_text(json.dumps(synthetic_rows(rng, "human-dev", 30)))
    out = tmp_path / "w.json"
    monkeypatch.setattr("sys.argv", ["fit_key.py", "--rows", str(caches[0]), "--rows", str(caches[1]),
                                     "--repeat", "human-dev=2", "--check", str(caches[1]), "--out", str(out)])
    fit.main()
    model = json.loads(out.read_text())
    assert model["fitted_on"] == ["sel", "human-dev"] and model["repeat"] == {"human-dev": 2}
    for variant in ("stems", "mix"):
        weights = dict(zip(model[variant]["cues"], model[variant]["weights"]))
        assert max(weights, key=weights.get) == "diatonic" and weights["diatonic"] > 1.0
        right, hand = fit.accuracy([r for r in json.loads(caches[0].read_text()) if r["variant"] == variant],
                                   model[variant])
        assert right == 1.0 and hand < 0.2
    assert fit.key_index("A minor") == 21 and fit.key_index("Bb major") == 10
    for bad in (["--rows", str(tmp_path / "missing.json")], ["--rows", str(caches[0]), "--repeat", "eval=2"]):
        monkeypatch.setattr("sys.argv", ["fit_key.py", *bad, "--out", str(out)])
        with pytest.raises(SystemExit):
            fit.main()


def test_the_fit_tool_calibrates_the_temperature_on_held_out_rows(tmp_path, monkeypatch):
    """Fitted where the cue is clean, the model is over-confident where it is noisy: the
    temperature chosen there is above 1, minimises the held-out NLL and leaves every answer."""
    from conftest import load_tool

    fit = load_tool("fit_key")
    rng = np.random.default_rng(11)
    train, held = tmp_path / "train.json", tmp_path / "held.json"
    train.write_text(json.dumps(synthetic_rows(rng, "sel", 80)))
    held.write_text(json.dumps(synthetic_rows(rng, "human-val", 80, noise=1.5)))
    out = tmp_path / "w.json"
    monkeypatch.setattr("sys.argv", ["fit_key.py", "--rows", str(train), "--calibrate", str(held), "--out", str(out)])
    fit.main()
    model = json.loads(out.read_text())
    assert model["calibrated_on"] == ["human-val"]
    held_rows = json.loads(held.read_text())
    for variant in ("stems", "mix"):
        v = model[variant]
        t = v["temperature"]
        assert t > 1.5
        these = [r for r in held_rows if r["variant"] == variant]
        logp = fit.log_probabilities(these, v)
        truth = np.array([fit.key_index(r["key"]) for r in these])
        assert fit.nll(logp, truth, t) < fit.nll(logp, truth, 1.0)
        assert fit.nll(logp, truth, t) <= min(fit.nll(logp, truth, t - 0.05), fit.nll(logp, truth, t + 0.05))
        without = {k: x for k, x in v.items() if k != "temperature"}
        assert fit.accuracy(these, v) == fit.accuracy(these, without)
    stems_only = tmp_path / "stems_only.json"
    stems_only.write_text(json.dumps([r for r in held_rows if r["variant"] == "stems"]))
    monkeypatch.setattr("sys.argv", ["fit_key.py", "--rows", str(train), "--calibrate", str(stems_only),
                                     "--out", str(out)])
    with pytest.raises(SystemExit):
        fit.main()
