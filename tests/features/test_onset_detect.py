"""Our peak picking and onset detection find librosa's onsets exactly (they replace librosa's
numba functions, so no worker imports numba)."""

import numpy as np
import pytest

librosa = pytest.importorskip("librosa")

from sat_mir.features.onset_detect import onset_detect  # noqa: E402


def _envelopes(rng):
    for i in range(120):
        x = rng.random(int(rng.integers(1, 3000))) ** rng.uniform(1, 8)
        if i % 4 == 0:
            x = np.round(x * 20) / 20  # plateaus and exact ties with the mean + delta
        yield x.astype(np.float32 if i % 2 else np.float64), int(rng.choice([22050, 44100, 11025])), \
            int(rng.choice([256, 512, 441]))


def test_onsets_of_noisy_envelopes_with_ties_are_librosas():
    rng = np.random.default_rng(0)
    for env, sr, hop in _envelopes(rng):
        for backtrack in (False, True):
            ours = onset_detect(env.copy(), sr=sr, hop=hop, backtrack=backtrack)
            theirs = librosa.onset.onset_detect(onset_envelope=env.copy(), sr=sr, hop_length=hop, backtrack=backtrack)
            np.testing.assert_array_equal(ours, theirs)


def test_onsets_of_a_drum_like_signal_are_librosas():
    rng = np.random.default_rng(1)
    sr = 22050
    y = np.zeros(sr * 8, dtype=np.float32)
    for k, start in enumerate(range(0, y.size - 4000, int(sr * 60 / 117 / 2))):
        hit = rng.standard_normal(4000) * np.exp(-np.arange(4000) / (300 + 200 * (k % 3)))
        y[start:start + 4000] += (0.3 + 0.7 * (k % 2)) * hit.astype(np.float32)
    env = librosa.onset.onset_strength(y=y, sr=sr)
    theirs = librosa.onset.onset_detect(onset_envelope=env, sr=sr)
    assert theirs.size > 20  # the test means something: many onsets
    np.testing.assert_array_equal(onset_detect(env, sr=sr, hop=512), theirs)
    np.testing.assert_array_equal(onset_detect(env, sr=sr, hop=512, backtrack=True),
                                  librosa.onset.onset_detect(onset_envelope=env, sr=sr, backtrack=True))


def test_a_flat_envelope_has_no_onsets():
    assert onset_detect(np.zeros(100, dtype=np.float32), sr=22050, hop=512).size == 0
