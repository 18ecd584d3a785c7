"""Our mel/chroma filter banks, decibels and mel flux are librosa's, value for value (they
replace librosa calls so that no worker imports numba)."""

import numpy as np
import pytest

librosa = pytest.importorskip("librosa")

from sat_mir.audio.filterbanks import (  # noqa: E402
    chroma_filters,
    fft_frequencies,
    mel_filters,
    normalize,
    onset_strength,
    power_to_db,
)


@pytest.mark.parametrize("sr,n_fft", [(22050, 2048), (44100, 2048), (16000, 1024), (22050, 4096)])
def test_the_filter_banks_are_librosas(sr, n_fft):
    for ours, theirs in ((mel_filters(sr, n_fft), librosa.filters.mel(sr=sr, n_fft=n_fft)),
                         (chroma_filters(sr, n_fft), librosa.filters.chroma(sr=sr, n_fft=n_fft)),
                         (fft_frequencies(sr, n_fft), librosa.fft_frequencies(sr=sr, n_fft=n_fft))):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


def test_decibels_flux_and_normalisation_are_librosas():
    rng = np.random.default_rng(3)
    t = np.arange(22050 * 6) / 22050
    y = (np.sin(2 * np.pi * 220 * t) * (t * 2 % 1 < 0.2) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=y, sr=22050)
    db = power_to_db(mel)
    np.testing.assert_array_equal(db, librosa.power_to_db(mel))
    for hop in (512, 256):
        ours = onset_strength(db, hop=hop)
        theirs = librosa.onset.onset_strength(S=db, sr=22050, hop_length=hop)
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
    x = np.abs(rng.standard_normal((12, 50))).astype(np.float32)
    x[:, 7] = 0.0  # a silent frame stays as it is
    np.testing.assert_array_equal(normalize(x, axis=0), librosa.util.normalize(x, norm=np.inf, axis=0))
    np.testing.assert_array_equal(normalize(x, norm=2.0, axis=0), librosa.util.normalize(x, norm=2, axis=0))
    S = np.abs(rng.standard_normal((1025, 40))).astype(np.float32) ** 2
    from sat_mir.features.series import _chroma

    np.testing.assert_array_equal(_chroma(np.sqrt(S)), librosa.feature.chroma_stft(
        S=np.sqrt(S) ** 2, sr=22050, n_fft=2048, tuning=0.0).astype(np.float32))
