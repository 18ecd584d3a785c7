"""Timbral models on synthesised signals with known answers, the demo songs, and their errors."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, fftconvolve, sosfilt

from sat_mir.audio import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.catalog import scan_library
from sat_mir.errors import ExtractorError
from sat_mir.features.psychoacoustics import specific_loudness, third_octave_weights

SR = 44100
MODELS = ("brightness", "depth", "hardness", "roughness", "warmth", "sharpness", "booming")
KEYS = {*MODELS, "reverb_rt60_s", "reverb_probability"}


def extractor():
    """A Timbral extractor.  Imported on first use rather than at collection: importing
    registers it, and test_registry compares the registry with docs/features.md, which lists
    only the extractors wired into sat_mir.features."""
    from sat_mir.features.timbral import Timbral

    return Timbral()


def ctx_of(y: np.ndarray, sr: int = SR) -> TrackContext:
    audio = Audio(np.atleast_2d(np.asarray(y, dtype=np.float32)), sr)
    return TrackContext({"mix": Path("<mix>")}, loader=lambda _: audio)


def timbral(y: np.ndarray, sr: int = SR):
    """Timbral values of ``y`` (peak-normalised to 0.3), checked against the declared specs."""
    y = 0.3 * np.asarray(y) / np.max(np.abs(y))
    result = extractor().compute(ctx_of(y, sr))
    assert set(result.values) | set(result.absent) == KEYS
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.values.values())
    assert extractor().check(result) == {}  # every value inside its declared range
    return result


def noise(seconds: float = 3.0, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * SR))


def filtered(order: int, hz, kind: str, seconds: float = 3.0) -> np.ndarray:
    return sosfilt(butter(order, hz, kind, fs=SR, output="sos"), noise(seconds))


def tone(*hz: float, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(np.sin(2 * np.pi * f * t) for f in hz)


def notes(attack_s: float, *, hz: float | None = None, seconds: float = 3.0, seed: int = 3) -> np.ndarray:
    """A note every 0.5 s over a faint noise floor: noise clicks (attack 0) or tones whose
    envelope rises linearly over ``attack_s`` and then decays."""
    rng = np.random.default_rng(seed)
    y = 1e-4 * rng.standard_normal(int(seconds * SR))
    t = np.arange(int(0.4 * SR)) / SR
    env = np.exp(-t / 0.03) if attack_s == 0 else np.minimum(t / attack_s, 1.0) * np.exp(-t / 0.15)
    for start in range(int(0.1 * SR), y.size - t.size, SR // 2):
        src = rng.standard_normal(t.size) if hz is None else np.sin(2 * np.pi * hz * t)
        y[start:start + t.size] += env * src
    return y


def reverberant(rt60_s: float, *, seconds: float = 6.0, seed: int = 0) -> np.ndarray:
    """Dry 0.1 s noise bursts, one every 0.4 s + RT60, through a room response that is
    noise decaying by 60 dB in ``rt60_s`` (an exponential decay of known RT60)."""
    rng = np.random.default_rng(seed)
    dry = np.zeros(int(seconds * SR))
    burst = int(0.1 * SR)
    for start in range(int(0.05 * SR), dry.size - burst, int((0.4 + rt60_s) * SR)):
        dry[start:start + burst] = rng.standard_normal(burst)
    t = np.arange(int(1.2 * rt60_s * SR)) / SR
    room = rng.standard_normal(t.size) * 10.0 ** (-3.0 * t / rt60_s)
    return fftconvolve(dry, room)[: dry.size]


@pytest.mark.parametrize("rt60_s", [0.3, 0.5, 0.8, 1.1, 1.5])
def test_rt60_of_exponential_decays_within_20_percent(rt60_s):
    y = reverberant(rt60_s)
    result = timbral(np.stack([y, y]))
    assert result.values["reverb_rt60_s"] == pytest.approx(rt60_s, rel=0.2)
    p = 1.0 / (1.0 + math.exp(-(2.97126461 * result.values["reverb_rt60_s"] - 1.45082989)))
    assert result.values["reverb_probability"] == pytest.approx(p, abs=1e-3)


def test_reverb_probability_is_graded_not_a_decision():
    dry, wet = timbral(notes(0)), timbral(reverberant(1.5))
    assert dry.values["reverb_rt60_s"] == pytest.approx(6.9 * 0.03, rel=0.2)  # clicks decay as e^(-t/30 ms)
    assert 0.0 < dry.values["reverb_probability"] < 0.5 < wet.values["reverb_probability"] < 1.0


def test_brightness_and_sharpness_order_low_white_high_passed_noise():
    low, white, high = (timbral(y).values for y in (filtered(4, 1000, "low"), noise(), filtered(2, 3000, "high")))
    assert low["brightness"] < white["brightness"] < high["brightness"]
    assert low["sharpness"] < white["sharpness"] < high["sharpness"]


def test_booming_higher_for_60_hz_than_for_3_khz():
    low = timbral(tone(60.0) + 0.01 * noise()).values["booming"]
    high = timbral(tone(3000.0) + 0.01 * noise()).values["booming"]
    assert low > high + 30


def test_roughness_of_beating_tones_above_a_pure_tone():
    pure = timbral(tone(440.0)).values["roughness"]
    beating = timbral(tone(440.0, 470.0)).values["roughness"]
    assert pure == 0.0  # one partial: no pairs, the original's floor
    assert beating > pure + 20


def test_hardness_higher_for_clicks_than_for_slow_attacks():
    clicks = timbral(notes(0)).values["hardness"]
    slow = timbral(notes(0.12, hz=330.0)).values["hardness"]
    assert clicks > slow + 40


def test_a_steady_tone_has_no_hardness_and_says_why():
    result = timbral(tone(440.0))
    assert "hardness" not in result.values
    assert "onsets" in result.absent["hardness"]
    assert set(MODELS) - {"hardness"} <= set(result.values)


def test_stereo_and_other_rates_give_the_same_scores():
    y = filtered(2, 2000, "low")
    mono = timbral(y).values
    stereo = timbral(np.stack([y, y])).values
    for key in MODELS:
        assert stereo[key] == pytest.approx(mono[key], abs=1e-3)
    at_48k = timbral(sosfilt(butter(2, 2000, "low", fs=48000, output="sos"), noise(3.0 * 48000 / SR)), 48000)
    for key in ("brightness", "sharpness", "booming", "warmth"):
        assert at_48k.values[key] == pytest.approx(mono[key], abs=2.0)


def test_demo_songs_have_every_value_in_range(demo_library):
    for track in scan_library(demo_library):
        result = timbral_of_file(track.sources["mix"])
        assert set(result.values) == KEYS, result.absent
        assert 30.0 < result.values["brightness"] < 90.0


def timbral_of_file(path: Path):
    result = extractor().compute(TrackContext({"mix": path}))
    assert all(math.isfinite(v) for v in result.values.values())
    assert extractor().check(result) == {}
    return result


def test_silence_and_short_input_raise():
    with pytest.raises(ExtractorError, match="digital silence"):
        extractor().compute(ctx_of(np.zeros((2, 2 * SR))))
    with pytest.raises(ExtractorError, match="silent"):
        extractor().compute(ctx_of(1e-6 * noise(2.0)))
    with pytest.raises(ExtractorError, match="too short"):
        extractor().compute(ctx_of(noise(0.2)))


def test_specific_loudness_of_a_1_khz_tone_follows_the_sone_scale():
    # 40 dB SPL at 1 kHz is 1 sone by definition; +10 dB doubles the loudness.
    response = third_octave_weights(np.array([1000.0]))[0]
    with np.errstate(divide="ignore"):
        levels = np.array([db + 10.0 * np.log10(response) for db in (40.0, 50.0, 60.0, 70.0)])
    _, sone = specific_loudness(levels)
    assert sone[0] == pytest.approx(1.0, rel=0.1)
    assert np.diff(np.log2(sone)) == pytest.approx([1.0, 1.0, 1.0], abs=0.1)


def test_the_in_place_envelope_and_block_energies_equal_the_one_pass_formulas():
    from sat_mir.features.envelopes import hold_decay_envelope
    from sat_mir.features.timbral import _block_energy

    rng = np.random.default_rng(0)
    for n in (1000, 100003, 2_000_001):
        x = rng.standard_normal(n).astype(np.float32) * np.linspace(0, 1, n, dtype=np.float32)
        for block, hold_s in ((1, 0.0), (4, 0.01), (64, 0.5), (1, 2.0)):  # 2 s: a hold past one step
            k = n // block  # the formula the envelope is documented by
            a = np.abs(x[: k * block]).reshape(k, block).max(axis=1).astype(np.float64)
            fe = 44100 / block
            hold, slope = int(hold_s * fe), a.max() / (0.1 * fe)
            from scipy.ndimage import maximum_filter1d

            m = np.arange(k, dtype=np.float64)
            decayed = np.full(k, -np.inf)
            decayed[hold + 1:] = np.maximum.accumulate(a + slope * m)[: k - hold - 1] - slope * (m[hold + 1:] - hold)
            ref = np.maximum(maximum_filter1d(a, size=hold + 1, origin=hold // 2), decayed)
            np.testing.assert_array_equal(hold_decay_envelope(x, 44100, block=block, decay_s=0.1, hold_s=hold_s), ref)
        padded = np.zeros(-(-n // 256) * 256, dtype=np.float32)
        padded[:n] = x
        np.testing.assert_array_equal(_block_energy(x, 256),
                                      np.square(padded).reshape(-1, 256).sum(axis=1, dtype=np.float64))


def test_the_row_sums_are_reduceats():
    from sat_mir.features.timbral import _row_sums

    rng = np.random.default_rng(6)
    x = (rng.random((400, 2049)) ** 3).astype(np.float32)
    for starts in (np.array([0]), np.sort(rng.integers(0, 400, 30)), np.array([5, 5, 3, 399])):
        np.testing.assert_allclose(_row_sums(x, starts), np.add.reduceat(x, starts, axis=0, dtype=np.float64),
                                   rtol=1e-13)
