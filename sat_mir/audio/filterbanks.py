"""Mel and chroma filter banks, power in decibels, mel spectral flux: librosa's (0.11) formulas in numpy.

Why not librosa's own: any ``librosa`` module imports numba, whose start-up (about 0.7 s and
60-100 MB resident per process, more when it loads compiled code) is a large share of a
per-track worker's cost for what are a few array expressions here.  The values are librosa's
exactly (tests/audio/test_filterbanks.py compares them), so features computed with them are
the ones the project measured with librosa.
"""

from __future__ import annotations

import numpy as np

__all__ = ["chroma_filters", "fft_frequencies", "mel_filters", "onset_strength", "power_to_db"]

_F_SP = 200.0 / 3  # Slaney's mel scale: linear below 1 kHz ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0  # ... logarithmic above


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    """Centre frequency (Hz) of each of the ``1 + n_fft // 2`` bins of a real FFT."""
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def _hz_to_mel(f: float) -> float:
    return f / _F_SP if f < _MIN_LOG_HZ else _MIN_LOG_MEL + float(np.log(f / _MIN_LOG_HZ)) / _LOGSTEP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    freqs = _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs


def mel_filters(sr: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filters, float32 ``[n_mels, 1 + n_fft // 2]``
    (``librosa.filters.mel`` with its defaults)."""
    fmax = float(sr) / 2 if fmax is None else fmax
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_frequencies(sr, n_fft))
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights


def chroma_filters(sr: float, n_fft: int, n_chroma: int = 12, tuning: float = 0.0) -> np.ndarray:
    """Chroma filters, float32 ``[n_chroma, 1 + n_fft // 2]``, C first (``librosa.filters.chroma``
    with its defaults: Gaussian bumps per pitch class, L2-normalised per bin, weighted by a
    Gaussian over octaves centred on octave 5, two octaves wide)."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    frqbins = n_chroma * np.log2(frequencies / (float(a440) / 16))
    # the 0-Hz bin: 1.5 octaves below bin 1 (so chroma is 50 % rotated from it, and broad)
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    d = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    half = np.round(float(n_chroma) / 2)
    d = np.remainder(d + half + 10 * n_chroma, n_chroma) - half
    wts = np.exp(-0.5 * (2 * d / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    wts = normalize(wts, norm=2.0, axis=0)
    wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2) ** 2)), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)


def normalize(x: np.ndarray, *, norm: float = np.inf, axis: int = 0) -> np.ndarray:
    """``x`` divided by its max-abs (``norm=inf``) or L-``norm`` length along ``axis``; slices
    whose length is below the dtype's smallest normal number are left as they are
    (``librosa.util.normalize`` with ``fill=None``)."""
    mag = np.abs(x).astype(float)
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    else:
        length = np.sum(mag ** norm, axis=axis, keepdims=True) ** (1.0 / norm)
    length[length < np.finfo(x.dtype).tiny] = 1.0
    out = np.empty_like(x)
    out[:] = x / length
    return out


def power_to_db(power: np.ndarray, *, amin: float = 1e-10, top_db: float = 80.0) -> np.ndarray:
    """``10 log10(power)`` (reference 1), floored at ``amin`` and at ``top_db`` below the maximum
    (``librosa.power_to_db`` with its defaults)."""
    log_spec = 10.0 * np.log10(np.maximum(amin, power))
    log_spec -= 10.0 * np.log10(np.maximum(amin, 1.0))
    return np.maximum(log_spec, log_spec.max() - top_db)


def onset_strength(log_mel: np.ndarray, *, hop: int, n_fft: int = 2048) -> np.ndarray:
    """Spectral flux of a log-power mel spectrogram ``[bands, frames]``: the mean over bands of
    the positive first difference, delayed by one frame plus half a frame of ``n_fft`` (the
    centred STFT's framing) and trimmed to the spectrogram's length (``librosa.onset.
    onset_strength(S=log_mel)`` with its defaults: lag 1, no max filter, mean)."""
    flux = np.maximum(0.0, log_mel[:, 1:] - log_mel[:, :-1])
    env = np.mean(flux, axis=-2, keepdims=True)
    env = np.pad(env, [(0, 0), (1 + n_fft // (2 * hop), 0)], mode="constant")
    return env[0, : log_mel.shape[-1]]
