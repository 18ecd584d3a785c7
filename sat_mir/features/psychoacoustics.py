"""Signal analyses shared by the Audio Commons timbral models, vectorised over frames.

Arrays in, arrays out; nothing here reads audio or keeps state.  Frames are the
first axis and frequency (or critical-band rate) the last, so one call handles a
whole track:

* :func:`third_octave_weights` — power responses of the 28 one-third-octave band
  filters (25 Hz … 12.5 kHz) at the bins of a spectrum, so band levels come from
  one FFT per frame instead of a filter bank per band;
* :func:`specific_loudness` — Zwicker loudness (ISO 532 B / DIN 45631, free field)
  from third-octave levels: specific loudness ``N'(z)`` in sone/Bark on a 0.1-Bark
  grid (240 points, z = 0.1 … 24 Bark) and the total loudness in sone;
* :func:`bark_weight`, :func:`fastl_sharpness`, :func:`booming_index` — the
  weightings of that pattern used by the models;
* :func:`spectral_peaks` — MIR-toolbox-style peak picking over many spectra at once;
* :func:`percussive_share` — the harmonic/percussive energy split (median-filter HPSS,
  the medians by :func:`median_filter_axis`, a sorting network on whole arrays);
(Note segmentation and the RT60 estimator live in :mod:`sat_mir.features.envelopes`.)

The tables of ISO 532 B are those of Zwicker's BASIC program (J. Acoust. Soc. Jpn.
(E) 12(1), 1991), as used by the Audio Commons timbral models.
"""

from __future__ import annotations


import numpy as np
from scipy.signal import find_peaks

__all__ = [
    "BARK_GRID",
    "THIRD_OCTAVE_CENTRES_HZ",
    "bark_weight",
    "booming_index",
    "fastl_sharpness",
    "median_filter_axis",
    "percussive_share",
    "specific_loudness",
    "spectral_peaks",
    "third_octave_weights",
]

#: Exact base-2 midband frequencies 1000·2^(j/3), j = −16 … 11 (nominal 25 Hz … 12.5 kHz).
THIRD_OCTAVE_CENTRES_HZ = 1000.0 * 2.0 ** (np.arange(-16, 12) / 3.0)
#: Critical-band rate of the specific-loudness grid, in Bark.
BARK_GRID = np.round(np.arange(1, 241) * 0.1, 1)

# --- ISO 532 B tables --------------------------------------------------------------
# Level ranges and low-frequency level reductions (equal-loudness contours) of the
# eleven bands 25 Hz … 250 Hz.
_RAP = np.array([45, 55, 65, 71, 80, 90, 100, 120], dtype=float)
_DLL = np.array([
    [-32, -24, -16, -10, -5, 0, -7, -3, 0, -2, 0],
    [-29, -22, -15, -10, -4, 0, -7, -2, 0, -2, 0],
    [-27, -19, -14, -9, -4, 0, -6, -2, 0, -2, 0],
    [-25, -17, -12, -9, -3, 0, -5, -2, 0, -2, 0],
    [-23, -16, -11, -7, -3, 0, -4, -1, 0, -1, 0],
    [-20, -14, -10, -6, -3, 0, -4, -1, 0, -1, 0],
    [-18, -12, -9, -6, -2, 0, -3, -1, 0, -1, 0],
    [-15, -10, -8, -4, -2, 0, -3, -1, 0, -1, 0],
], dtype=float)
# Threshold in quiet per critical band, transmission free field → ear, and the
# correction for using third-octave rather than critical-band levels.
_LTQ = np.array([30, 18, 12, 8, 7, 6, 5, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3], dtype=float)
_A0 = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -0.5, -1.6, -3.2, -5.4, -5.6, -4, -1.5, 2, 5, 12])
_DCB = np.array([-0.25, -0.6, -0.8, -0.8, -0.5, 0, 0.5, 1.1, 1.5, 1.7, 1.8, 1.8, 1.7, 1.6, 1.4,
                 1.2, 0.8, 0.5, 0, -0.5])
# Upper edges (Bark) of the 21 approximated critical bands.
_ZUP = np.array([0.9, 1.8, 2.8, 3.5, 4.4, 5.4, 6.6, 7.9, 9.2, 10.6, 12.3, 13.8, 15.2, 16.7, 18.1,
                 19.3, 20.6, 21.8, 22.7, 23.6, 24.0])
# Specific-loudness ranges and the upper-slope steepness (sone/Bark per Bark) in each
# range (rows) for the bands (columns; the last column serves all higher bands).
_RNS = np.array([21.5, 18, 15.1, 11.5, 9, 6.1, 4.4, 3.1, 2.13, 1.36, 0.82, 0.42, 0.30, 0.22, 0.15,
                 0.10, 0.035, 0])
_USL = np.array([
    [13.0, 8.2, 6.3, 5.5, 5.5, 5.5, 5.5, 5.5],
    [9.0, 7.5, 6.0, 5.1, 4.5, 4.5, 4.5, 4.5],
    [7.8, 6.7, 5.6, 4.9, 4.4, 3.9, 3.9, 3.9],
    [6.2, 5.4, 4.6, 4.0, 3.5, 3.2, 3.2, 3.2],
    [4.5, 3.8, 3.6, 3.2, 2.9, 2.7, 2.7, 2.7],
    [3.7, 3.0, 2.8, 2.35, 2.2, 2.2, 2.2, 2.2],
    [2.9, 2.3, 2.1, 1.9, 1.8, 1.7, 1.7, 1.7],
    [2.4, 1.7, 1.5, 1.35, 1.3, 1.3, 1.3, 1.3],
    [1.95, 1.45, 1.3, 1.15, 1.1, 1.1, 1.1, 1.1],
    [1.5, 1.2, 0.94, 0.86, 0.82, 0.82, 0.82, 0.82],
    [0.72, 0.67, 0.64, 0.63, 0.62, 0.62, 0.62, 0.62],
    [0.59, 0.53, 0.51, 0.50, 0.42, 0.42, 0.42, 0.42],
    [0.40, 0.33, 0.26, 0.24, 0.24, 0.22, 0.22, 0.22],
    [0.27, 0.21, 0.20, 0.18, 0.17, 0.17, 0.17, 0.17],
    [0.16, 0.15, 0.14, 0.12, 0.11, 0.11, 0.11, 0.11],
    [0.12, 0.11, 0.10, 0.08, 0.08, 0.08, 0.08, 0.08],
    [0.09, 0.08, 0.07, 0.06, 0.06, 0.06, 0.06, 0.05],
    [0.06, 0.05, 0.03, 0.02, 0.02, 0.02, 0.02, 0.02],
])
# Critical band of each grid point, and the slope column used while descending in it.
_BAND_OF = np.searchsorted(_ZUP, BARK_GRID - 1e-9)
_SLOPE_COL = np.clip(_BAND_OF - 1, 0, 7)


def third_octave_weights(freqs_hz: np.ndarray, *, order: int = 4) -> np.ndarray:
    """Power responses ``[len(freqs_hz), 28]`` of the third-octave band-pass filters.

    Each band is an analog Butterworth band-pass of prototype ``order`` (4 gives the
    ≈ −20 dB leakage into neighbouring bands of usual third-octave filters) with
    edges at ``fc·2^(∓1/6)``.  Multiply a power spectrum by these weights and sum
    over frequency to get the mean-square output of each band filter.
    """
    f = np.maximum(np.asarray(freqs_hz, dtype=np.float64), 1e-6)[:, None]
    fc = THIRD_OCTAVE_CENTRES_HZ[None, :]
    bw = fc * (2.0 ** (1 / 6) - 2.0 ** (-1 / 6))
    omega = (f * f - fc * fc) / (f * bw)  # low-pass prototype frequency
    return 1.0 / (1.0 + omega ** (2 * order))


def specific_loudness(levels_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zwicker specific loudness from third-octave band levels (ISO 532 B, free field).

    Parameters
    ----------
    levels_db : np.ndarray ``[frames, 28]``
        Levels of the bands 25 Hz … 12.5 kHz in dB SPL (−inf for an empty band).

    Returns
    -------
    (N_single, N_total) : ``[frames, 240]`` sone/Bark on :data:`BARK_GRID`, and
    ``[frames]`` total loudness in sone (the integral of ``N_single``).
    """
    p = np.asarray(levels_db, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 28:
        raise ValueError(f"levels_db must be [frames, 28], got shape {p.shape}")
    frames = p.shape[0]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # Low-frequency bands: reduction by level range, then intensities summed into the
        # first three critical bands (25–80 Hz, 100–160 Hz, 200–250 Hz).
        low = p[:, :11]
        above = low[:, :, None] > (_RAP[None, None, :7] - _DLL[:7].T[None, :, :])
        rng = np.cumprod(above, axis=2).sum(axis=2)  # level range index 0 … 7
        xp = low + _DLL[rng, np.arange(11)[None, :]]
        ti = 10.0 ** (xp / 10.0)
        gi = np.stack([ti[:, 0:6].sum(1), ti[:, 6:9].sum(1), ti[:, 9:11].sum(1)], axis=1)
        lcb = np.where(gi > 0, 10.0 * np.log10(np.where(gi > 0, gi, 1.0)), 0.0)
        # Main loudness of the 20 critical bands (the 21st, above 12.5 kHz, is zero).
        le = np.concatenate([lcb, p[:, 11:28]], axis=1)
        audible = le > _LTQ
        le_core = le - _A0 - _DCB
        mp1 = 0.0635 * 10.0 ** (0.025 * _LTQ)
        mp2 = (0.75 + 0.25 * 10.0 ** (0.1 * (le_core - _LTQ))) ** 0.25 - 1.0
        nm = np.where(audible, np.maximum(mp1 * mp2, 0.0), 0.0)
    nm = np.nan_to_num(nm, nan=0.0, posinf=0.0)
    nm[:, 0] *= np.minimum(0.4 + 0.32 * nm[:, 0] ** 0.2, 1.0)
    nm = np.concatenate([nm, np.zeros((frames, 1))], axis=1)
    # Spread upwards: plateau at each band's main loudness, upper slopes whose steepness
    # depends on the level reached (RNS ranges) and on the band.
    plateau = nm[:, _BAND_OF]
    ns = np.empty_like(plateau)
    prev = np.zeros(frames)
    neg_rns = -_RNS
    for g in range(BARK_GRID.size):
        j = np.minimum(np.searchsorted(neg_rns, -prev, side="right"), 17)
        descended = prev - 0.1 * _USL[j, _SLOPE_COL[g]]
        prev = np.maximum(plateau[:, g], np.maximum(descended, 0.0))
        ns[:, g] = prev
    return ns, 0.1 * ns.sum(axis=1)


def bark_weight(low: int, high: int) -> np.ndarray:
    """Weights ``[240]`` over grid indices ``low … high−1``: a broad bell, 1 in the middle
    and 0 at the edges (the Audio Commons ``weighted_bark_level`` shape), 0 elsewhere."""
    idx = np.arange(low, high, dtype=np.float64)
    bell = np.exp(-((idx - (low + high) / 2.0) ** 2) * 0.5e-4)
    bell -= bell.min()
    bell /= bell.max()
    w = np.zeros(BARK_GRID.size)
    w[low:high] = bell
    return w


def fastl_sharpness(ns: np.ndarray) -> np.ndarray:
    """Sharpness in acum of each frame of a specific-loudness pattern ``[frames, 240]``
    (Fastl's weighting: 1 up to 14 Bark, a fitted polynomial above); 0 where silent."""
    z = BARK_GRID
    g = np.where(z <= 14.0, 1.0, 0.00012 * z**4 - 0.0056 * z**3 + 0.1 * z**2 - 0.81 * z + 3.5)
    total = ns.sum(axis=1)
    num = 0.11 * (ns * (g * z)).sum(axis=1)
    return np.divide(num, total, out=np.zeros_like(total), where=total > 0)


def _booming_weights() -> tuple[np.ndarray, int]:
    f = 600.0 * np.sinh(BARK_GRID / 6.0)
    step = np.log10(31.5) - np.log10(25.0)
    index = (np.log10(f) - np.log10(25.0)) / step + 1.0  # position on the third-octave scale
    w = 2.13 * np.exp(-0.151 * index)
    w[:4] = [0.8, 1.05, 1.10, 1.18]
    return w, int(np.argmax(f >= 280.0))


_BOOM_W, _BOOM_280 = _booming_weights()


def booming_index(ns: np.ndarray) -> np.ndarray:
    """Hatano–Hashimoto booming index of each frame ``[frames, 240]``: the level sum of
    the weighted pattern times the share of loudness below 280 Hz; 0 where silent."""
    total = ns.sum(axis=1)
    band_sum = 10.0 * np.log10((10.0 ** (ns * _BOOM_W / 10.0)).sum(axis=1))
    low = ns[:, :_BOOM_280].sum(axis=1)
    return np.divide(band_sum * low, total, out=np.zeros_like(total), where=total > 0)


def spectral_peaks(
    spectra: np.ndarray, *, threshold: float, values: np.ndarray | None = None,
    freqs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Peaks of many spectra at once, MIR-toolbox style.

    A peak is a local maximum of a row of ``spectra`` at least ``threshold`` high that
    stands out from the valleys on both sides by at least ``threshold`` (topographic
    prominence; row ends count as −2, so edge peaks are allowed).  Position and value
    are refined by parabolic interpolation on ``values`` (default: ``spectra``).

    Returns ``(row, col, freq, value)`` arrays, one entry per peak, ordered by row
    then frequency (``col`` is the bin of the local maximum).
    """
    s = np.asarray(spectra, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    v = s if values is None else np.asarray(values, dtype=np.float64).reshape(s.shape)
    rows, bins = s.shape
    flat = np.full((rows, bins + 1), -2.0)
    flat[:, :bins] = s
    flat = np.concatenate([[-2.0], flat.ravel()])
    idx, _ = find_peaks(flat, height=threshold, prominence=threshold, wlen=2 * bins + 3)
    idx = idx - 1  # index into the row-major [rows, bins + 1] layout
    row, col = np.divmod(idx, bins + 1)
    y0 = v[row, col]
    inner = (col > 0) & (col < bins - 1)
    ym = np.where(inner, v[row, np.maximum(col - 1, 0)], y0)
    yp = np.where(inner, v[row, np.minimum(col + 1, bins - 1)], y0)
    den = 2.0 * (2.0 * y0 - yp - ym)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(inner & (den != 0), (yp - ym) / den, 0.0)
    value = y0 - 0.25 * (ym - yp) * p
    f = np.asarray(freqs, dtype=np.float64)
    step = np.where(p >= 0, f[np.minimum(col + 1, bins - 1)] - f[col], f[col] - f[np.maximum(col - 1, 0)])
    return row, col, f[col] + p * step, value


# --- harmonic/percussive split ----------------------------------------------------------

def _median_network(k: int) -> list[tuple[int, int]]:
    """Compare-exchange pairs that bring the median of ``k`` wires to wire ``k // 2``: Batcher's
    odd-even merge sort of the next power of two, without the padding wires and pruned to
    what the middle output depends on (9 → 24 pairs, 15 → 49)."""
    n = 1 << (k - 1).bit_length()
    pairs, p = [], 1
    while p < n:
        q = p
        while q >= 1:
            for j in range(q % p, n - q, 2 * q):
                for i in range(min(q, n - j - q)):
                    if (i + j) // (2 * p) == (i + j + q) // (2 * p) and i + j + q < k:
                        pairs.append((i + j, i + j + q))
            q //= 2
        p *= 2
    need, kept = {k // 2}, []
    for a, b in reversed(pairs):
        if a in need or b in need:
            kept.append((a, b))
            need |= {a, b}
    return kept[::-1]


def median_filter_axis(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Running median of odd ``size`` along ``axis`` (edges mirrored, as scipy's "reflect"),
    by a sorting network on whole arrays: several times faster than ``scipy.ndimage`` for
    the small kernels of HPSS."""
    half = size // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (half, half)
    xp = np.pad(x, pad, mode="symmetric")
    n = x.shape[axis]
    index = [slice(None)] * x.ndim
    wires = []
    for i in range(size):  # views of the padded array, one per kernel offset
        index[axis] = slice(i, i + n)
        wires.append(xp[tuple(index)])
    for a, b in _median_network(size):
        wires[a], wires[b] = np.minimum(wires[a], wires[b]), np.maximum(wires[a], wires[b])
    return wires[half]


def percussive_share(power: np.ndarray, *, time_kernel: int, freq_kernel: int) -> float:
    """Energy-weighted share of the percussive part of a power spectrogram ``[frames, bins]``:
    median-filter HPSS (harmonic: median over ``time_kernel`` frames, percussive: over
    ``freq_kernel`` bins) with librosa's soft masks of power 2; per frame the RMS of each
    part, then Σ percussive / Σ (percussive + harmonic).  0 for an empty spectrogram."""
    mag = np.sqrt(power)
    h2 = median_filter_axis(mag, time_kernel, 0).astype(np.float64) ** 2
    p2 = median_filter_axis(mag, freq_kernel, 1).astype(np.float64) ** 2
    den = np.where(h2 + p2 > 0, h2 + p2, np.inf)
    e_perc = np.sqrt(np.sum(power * (p2 / den) ** 2, axis=1))
    e_harm = np.sqrt(np.sum(power * (h2 / den) ** 2, axis=1))
    total = float(np.sum(e_perc + e_harm))
    return float(np.sum(e_perc)) / total if total > 0 else 0.0


# --- envelopes and note onsets ----------------------------------------------------------
