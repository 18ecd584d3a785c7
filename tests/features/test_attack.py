"""The shift that moves a beat grid onto its notes' attacks (sat_mir.features.attack)."""

import numpy as np
import pytest

from sat_mir.features.attack import MAX_SHIFT_S, attack_profile, attack_shift, half_rise

SR = 22050


def _notes(beats: np.ndarray, attack_s: float, seconds: float = 30.0) -> np.ndarray:
    """A harmonic tone of a random pitch starting exactly on each beat, rising over ``attack_s``."""
    rng = np.random.default_rng(0)
    x = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.45 * SR)) / SR
    for b in beats:
        f = 220.0 * 2 ** (rng.integers(0, 12) / 12)
        partials = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 6))
        tone = np.minimum(t / attack_s, 1.0) * np.exp(-6.0 * t) * partials
        s = int(round(b * SR))
        x[s:s + t.size] += 0.3 * tone.astype(np.float32)
    return x + rng.normal(0.0, 1e-3, x.size).astype(np.float32)


BEATS = np.arange(0.5, 29.0, 0.5)


@pytest.mark.parametrize("attack_s", [0.002, 0.03])
def test_late_or_early_beats_come_back_onto_the_attacks(attack_s):
    x = _notes(BEATS, attack_s)
    landed = []
    for late in (-0.02, 0.0, 0.015):
        shift = attack_shift(x, SR, BEATS + late, no_drums=False)
        assert shift is not None
        landed.append(late + shift)
    # wherever the grid started, it lands on the notes' starts (measured -5.5 to -1.4 ms: the
    # constant is the sampled instruments' median, a little ahead of a tone that starts at once)
    assert max(abs(v) for v in landed) < 0.008
    assert max(landed) - min(landed) < 0.005  # and in the same place, to a fraction of a 5.8-ms step


def test_a_grid_too_far_off_its_notes_is_left_alone():
    x = _notes(BEATS, 0.002)
    assert attack_shift(x, SR, BEATS + MAX_SHIFT_S + 0.01, no_drums=False) is None


def test_beats_with_no_common_attack_are_left_alone():
    noise = np.random.default_rng(1).normal(0.0, 0.1, 30 * SR).astype(np.float32)
    profile, _ = attack_profile(noise, SR, BEATS)
    assert profile.max() - np.median(profile) < 0.05  # measured 0.02
    assert attack_shift(noise, SR, BEATS, no_drums=True) is None


def test_beats_outside_the_signal_are_not_read():
    x = _notes(BEATS, 0.002)
    profile, lags = attack_profile(x, SR, np.array([0.0, 100.0]))
    assert profile.shape == lags.shape and not profile.any()


def test_half_rise_interpolates_between_samples():
    lags = np.arange(5) * 0.01
    assert half_rise(np.array([0.0, 0.0, 0.4, 1.0, 0.2]), lags) == pytest.approx(0.02 + 0.1 / 0.6 * 0.01)
