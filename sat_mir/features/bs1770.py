"""ITU-R BS.1770-4 loudness and EBU Tech 3342 loudness range, on arrays.

Pure functions: ``samples`` is ``[channels, frames]`` (or ``[frames]`` for one
channel), ``sr`` in Hz, results in LUFS / LU.  The K-weighting pre-filter is
designed for any sample rate from its analog parameters, which reproduce the
48 kHz coefficients printed in BS.1770 (see the tests).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import sosfilt

__all__ = [
    "ABSOLUTE_GATE_LUFS",
    "channel_weights",
    "chunk_energy",
    "chunk_parts",
    "integrated_loudness",
    "k_weighting_sos",
    "loudness_range",
    "loudness_stats",
    "loudness_stats_of_chunks",
    "short_term_loudness",
    "whole_chunks",
]

ABSOLUTE_GATE_LUFS = -70.0
_OFFSET = -0.691

# Analog parameters of the two BS.1770 pre-filter stages (shelf, then high-pass).
_SHELF_F0, _SHELF_GAIN_DB, _SHELF_Q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
_HP_F0, _HP_Q = 38.13547087602444, 0.5003270373238773


def k_weighting_sos(sr: int) -> np.ndarray:
    """Second-order sections ``[2, 6]`` of the K-weighting filter at ``sr`` Hz."""
    k = math.tan(math.pi * _SHELF_F0 / sr)
    vh = 10.0 ** (_SHELF_GAIN_DB / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / _SHELF_Q + k * k
    shelf = [
        (vh + vb * k / _SHELF_Q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / _SHELF_Q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / _SHELF_Q + k * k) / a0,
    ]
    k = math.tan(math.pi * _HP_F0 / sr)
    a0 = 1.0 + k / _HP_Q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / _HP_Q + k * k) / a0]
    return np.array([shelf, highpass], dtype=np.float64)


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770 channel weights: 1.0 for L/R/C, 1.41 for surrounds, 0 for LFE.

    Assumes the usual orders L R C Ls Rs (5 channels) and L R C LFE Ls Rs (6).
    """
    if channels == 5:
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41])
    if channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    return np.ones(channels)


_BLOCK = 1 << 18  # samples per channel filtered together

# An IIR filter fed exact zeros (digital silence: a stem that rests, a padded intro) decays into
# subnormal floats, which the CPU computes 10-50x slower: a 3-minute drum stem with rests took
# 0.84 s to K-weight instead of 0.10 s.  A +-1e-15 dither at the Nyquist rate keeps the filter's
# state normal; it leaves the K-filter at about 1.6e-15, adding ~1e-26 to a 100-ms chunk's
# energy: nothing at float32 precision beside any sound, and silence stays ~190 LU below the
# -70 LUFS gate.
DITHER = 1e-15


_GUARD = np.full(_BLOCK, DITHER, dtype=np.float32)
_GUARD[1::2] = -DITHER


def denormal_guard(block: np.ndarray) -> np.ndarray:
    """``block`` (``[..., samples]`` float32) plus the +-:data:`DITHER` alternation (a copy)."""
    n = block.shape[-1]
    guard = _GUARD[:n] if n <= _GUARD.size else np.resize(_GUARD, n)
    return block + guard


def chunk_energy(samples: np.ndarray, sr: int, parts: int = 1) -> np.ndarray:
    """Energy ``[channels, chunks]`` of the K-weighted signal in consecutive 100 ms chunks
    (``round(0.1 * sr)`` samples each), or in ``parts`` equal parts of each (``parts`` divides
    that: :func:`chunk_parts`); the samples after the last whole part are left out.

    BS.1770 blocks (400 ms) and EBU 3342 short-term windows (3 s) both start every
    100 ms, so each is a sum of whole chunks: one filter pass and one reduction
    serve integrated loudness and loudness range.  The filter runs in float32, and so
    do the chunk sums (one dot product per chunk: within 1e-6 of a float64 sum, i.e.
    0.00001 LU, at a fifth of the cost of squaring into a temporary).
    """
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    sos = k_weighting_sos(sr).astype(np.float32)
    whole = int(round(0.1 * sr))
    if parts < 1 or whole % parts:
        raise ValueError(f"a 100 ms chunk of {whole} samples does not split into {parts} equal parts")
    step = whole // parts
    n = x.shape[-1] // step
    out = np.empty((x.shape[0], n), dtype=np.float32)
    # the filter a block of chunks at a time, its state carried across (the same samples as one
    # pass): no K-weighted copy of the whole signal (64 MB for a 3-minute stereo track)
    state = np.zeros((sos.shape[0], x.shape[0], 2), dtype=np.float32)
    per = max(1, _BLOCK // step)
    for a in range(0, n, per):
        b = min(a + per, n)
        y, state = sosfilt(sos, denormal_guard(x[:, a * step:b * step]), axis=-1, zi=state)
        v = y.reshape(x.shape[0], b - a, step)
        out[:, a:b] = np.einsum("cnk,cnk->cn", v, v)
    return out.astype(np.float64)


def chunk_parts(sr: int) -> int:
    """The most parts, up to 10 (10 ms each), that a 100 ms chunk at ``sr`` splits into evenly."""
    whole = int(round(0.1 * sr))
    return next(d for d in (10, 5, 4, 2, 1) if whole % d == 0)


def whole_chunks(parts_energy: np.ndarray, parts: int) -> np.ndarray:
    """100 ms chunk energies ``[channels, chunks]`` from :func:`chunk_energy`'s ``parts`` parts."""
    n = parts_energy.shape[-1] // parts
    return parts_energy[:, :n * parts].reshape(parts_energy.shape[0], n, parts).sum(axis=-1)


def _window_power(chunks: np.ndarray, sr: int, window_s: float) -> np.ndarray:
    """Channel-weighted mean square of the K-weighted signal in each window (step 100 ms)."""
    k = int(round(window_s / 0.1))
    n = chunks.shape[-1]
    if n < k:
        return np.empty(0)
    csum = np.concatenate([np.zeros((chunks.shape[0], 1)), np.cumsum(chunks, axis=-1)], axis=-1)
    energy = (csum[:, k:] - csum[:, :-k]) / (k * int(round(0.1 * sr)))
    return channel_weights(chunks.shape[0]) @ np.maximum(energy, 0.0)


def _to_lufs(power: np.ndarray | float) -> np.ndarray | float:
    with np.errstate(divide="ignore"):
        return _OFFSET + 10.0 * np.log10(power)


def integrated_loudness(samples: np.ndarray, sr: int) -> float:
    """Gated integrated loudness in LUFS (400 ms blocks, 75 % overlap, −70 / −10 LU gates).

    Returns ``-inf`` when no block passes the absolute gate (silence) and ``nan``
    when the signal is shorter than one 400 ms block; callers decide what that means.
    """
    return _integrated(chunk_energy(samples, sr), sr)


def _integrated(chunks: np.ndarray, sr: int) -> float:
    power = _window_power(chunks, sr, 0.4)
    if power.size == 0:
        return float("nan")
    loud = _to_lufs(power)
    above_abs = power[loud > ABSOLUTE_GATE_LUFS]
    if above_abs.size == 0:
        return float("-inf")
    relative_gate = _to_lufs(above_abs.mean()) - 10.0
    gated = power[(loud > ABSOLUTE_GATE_LUFS) & (loud > relative_gate)]
    return float(_to_lufs(gated.mean()))


def loudness_stats(samples: np.ndarray, sr: int) -> tuple[float, float]:
    """(integrated loudness, loudness range) from one K-weighting pass; see the two functions."""
    return loudness_stats_of_chunks(chunk_energy(samples, sr), sr)


def loudness_stats_of_chunks(chunks: np.ndarray, sr: int) -> tuple[float, float]:
    """:func:`loudness_stats` from the signal's :func:`chunk_energy`."""
    return _integrated(chunks, sr), _range(chunks, sr)


def short_term_loudness(samples: np.ndarray, sr: int) -> np.ndarray:
    """Short-term loudness (3 s windows, ungated) every 100 ms, in LUFS."""
    return np.asarray(_to_lufs(_window_power(chunk_energy(samples, sr), sr, 3.0)))


def loudness_range(samples: np.ndarray, sr: int) -> float:
    """EBU Tech 3342 loudness range in LU: P95 − P10 of gated short-term loudness.

    Gates: −70 LUFS absolute, then 20 LU below the power mean of what passed.
    Returns ``nan`` when the signal is shorter than 3 s or nothing passes the gates.
    """
    return _range(chunk_energy(samples, sr), sr)


def _range(chunks: np.ndarray, sr: int) -> float:
    st = np.asarray(_to_lufs(_window_power(chunks, sr, 3.0)))
    st = st[st > ABSOLUTE_GATE_LUFS]
    if st.size == 0:
        return float("nan")
    relative_gate = 10.0 * np.log10(np.mean(10.0 ** (st / 10.0))) - 20.0
    st = st[st > relative_gate]
    if st.size == 0:
        return float("nan")
    lo, hi = np.percentile(st, [10.0, 95.0])
    return float(hi - lo)
