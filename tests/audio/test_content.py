"""Validity before meaning: noise, a DC offset, near-silence and files of a few samples give
no key, tempo or timbre, each with its reason; music keeps every value; the build leaves
such tracks out of training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import lfilter

from sat_mir.audio import TrackContext
from sat_mir.audio.content import PITCHED, RHYTHMIC, content_of
from sat_mir.audio.decode import Audio
from sat_mir.build.pipeline import not_music

from conftest import plucked_music

SR = 44100
RNG = np.random.default_rng(3)
WHITE = RNG.standard_normal(15 * SR)
# Paul Kellet's pink-noise filter, and brown (integrated) noise
PINK = lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786], [1, -2.494956002, 2.017265875, -0.5221894],
               WHITE) * 0.3
BROWN = lfilter([1.0], [1.0, -0.999], WHITE) * 0.01
T = np.arange(15 * SR) / SR


def _ctx(x: np.ndarray) -> TrackContext:
    return TrackContext({"mix": Path("<m>")}, loader=lambda p: Audio(np.atleast_2d(x).astype(np.float32), SR))


def _music(seconds: float = 15.0) -> np.ndarray:
    return plucked_music(seconds, SR)


@pytest.mark.parametrize("name,x", [("white", 0.1 * WHITE), ("pink", PINK), ("brown", BROWN)])
def test_noise_of_any_colour_is_neither_pitched_nor_pulsed(name, x):
    c = content_of(_ctx(x).mix)
    assert c.sound_s == pytest.approx(15.0, abs=0.1)
    assert c.tonality < PITCHED / 3 and c.pulse_clarity < RHYTHMIC * 0.8, c


def test_music_dc_and_silence():
    music = content_of(_ctx(_music()).mix)
    assert music.pitched and music.rhythmic and music.tonality > 0.5 and music.pulse_clarity > 0.4
    dc = content_of(_ctx(np.full(15 * SR, 0.3)).mix)
    assert dc.sound_s < 0.2  # the step at the start, nothing after
    hum_under_silence = content_of(_ctx(0.3 + 1e-4 * WHITE).mix)  # -80 dBFS of hiss on a DC offset
    assert hum_under_silence.sound_s < 0.2  # the step at the start only
    one = content_of(_ctx(np.array([0.5])).mix)
    assert (one.sound_s, one.tonality, one.pulse_clarity) == (0.0, 0.0, 0.0)


EXTRACTORS = ["info", "loudness", "peaks", "spectral", "timbral", "rhythm", "tonal", "chords"]


def _extract(tmp_path: Path, files: dict[str, np.ndarray]) -> dict[str, dict]:
    from conftest import sidecars

    from sat_mir.catalog import scan_library
    from sat_mir.features import build_extractors
    from sat_mir.run import run_extraction

    lib = tmp_path / "lib"
    lib.mkdir()
    for name, x in files.items():
        sf.write(lib / f"{name}.wav", np.asarray(x, np.float32), SR, subtype="FLOAT")
    out = tmp_path / "out"
    run_extraction(scan_library(lib), build_extractors({k: {} for k in EXTRACTORS}), root=lib, output=out,
                   jobs=1, progress=False)
    return sidecars(out)


def test_no_musical_facts_from_what_is_not_music(tmp_path):
    got = _extract(tmp_path, {
        "white": 0.1 * WHITE[: 12 * SR], "dc": np.full(12 * SR, 0.3), "one": np.array([0.5]),
        "blip": 0.3 * np.sin(2 * np.pi * 440 * T[: int(0.3 * SR)]), "music": _music(12.0),
    })
    feats = {name: d["features"] for name, d in got.items()}
    absent = {name: {k: v for ex in d["provenance"].values() for k, v in (ex.get("absent") or {}).items()}
              for name, d in got.items()}
    musical = ("key", "bpm", "brightness", "warmth", "chord_progression", "time_signature")
    for name in ("white", "dc", "one", "blip"):
        for key in musical:
            assert key not in feats[name], (name, key, feats[name].get(key))
            assert absent[name][key], (name, key)
    assert "noise, not music" in absent["white"]["brightness"] and "no pulse" in absent["white"]["bpm"]
    assert "no pitched content" in absent["white"]["key"]
    assert "lufs" in feats["white"] and feats["white"]["spectral_flatness"] > 0.3  # noise is loud and flat
    assert "lufs" not in feats["dc"] and "DC left out" in absent["dc"]["lufs"]
    assert "spectral_flatness" not in feats["one"] and "0.3" in absent["blip"]["key"]
    for key in musical:
        assert key in feats["music"], key
    assert feats["music"]["tonality"] > 0.5 and feats["music"]["pulse_clarity"] > 0.4
    assert feats["white"]["tonality"] < 0.05 and feats["dc"]["sound_s"] < 0.2
    # and the build leaves those tracks out of training
    assert not_music(feats["music"]) is None
    for name, words in (("white", "noise"), ("dc", "DC offset"), ("one", "under 1 s"), ("blip", "under 1 s")):
        assert words in not_music(feats[name]), name
