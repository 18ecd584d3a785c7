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
* :func:`hold_decay_envelope`, :func:`note_onsets`, :func:`attack_time`,
  :func:`attack_start` — the note segmentation shared by hardness, depth and warmth;
* :func:`rt60_blind` — the blind reverberation-time estimator of the reverb model.

The tables of ISO 532 B are those of Zwicker's BASIC program (J. Acoust. Soc. Jpn.
(E) 12(1), 1991), as used by the Audio Commons timbral models.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import convolve1d, maximum_filter1d
from scipy.signal import find_peaks, lfilter

__all__ = [
    "BARK_GRID",
    "THIRD_OCTAVE_CENTRES_HZ",
    "attack_start",
    "attack_time",
    "bark_weight",
    "booming_index",
    "fastl_sharpness",
    "hold_decay_envelope",
    "median_filter_axis",
    "note_onsets",
    "percussive_share",
    "rt60_blind",
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

def hold_decay_envelope(x: np.ndarray, sr: int, *, block: int, decay_s: float, hold_s: float) -> np.ndarray:
    """Peak envelope with hold and linear decay, on blocks of ``block`` samples.

    Each block's peak ``|x|`` is held for ``hold_s`` and then falls linearly, reaching
    zero after ``decay_s`` when it starts at the signal's peak (the Audio Commons
    "sample and hold" envelope).  Computed as a running maximum of decaying copies,
    so it is exact up to the block size, except that every sample gets a hold, not
    only those that exceed the envelope.  Returns float64 ``[len(x) // block]``.
    """
    n = x.size // block
    a = np.abs(x[0: n * block: block])
    for k in range(1, block):  # block peaks without a full-length temporary
        np.maximum(a, np.abs(x[k: n * block: block]), out=a)
    a = a.astype(np.float64)
    fe = sr / block
    hold = max(int(hold_s * fe), 0)
    slope = a.max() / (decay_s * fe)  # per block
    held = maximum_filter1d(a, size=hold + 1, origin=hold // 2)  # max of the last hold+1 blocks
    m = np.arange(n, dtype=np.float64)
    decayed = np.full(n, -np.inf)
    if n > hold + 1:
        best = np.maximum.accumulate(a + slope * m)  # max over m' ≤ m of a[m'] + slope·m'
        decayed[hold + 1:] = best[: n - hold - 1] - slope * (m[hold + 1:] - hold)
    return np.maximum(held, decayed)


def _refine_onset(loc: int, env: np.ndarray, look: int, span: int, min_rise: float, guard: int) -> int:
    """Walk an onset back to where its envelope stops falling (20 ms look-back, with a
    300 ms hysteresis that ignores rises smaller than ``min_rise``); 0 if it reaches the
    start.  Ties stop the walk (the original walked through flat, e.g. silent, stretches
    to the start and so lost every onset that follows digital silence)."""
    while True:
        cur = env[loc]
        lo = max(loc - look - 1, 0)
        back = env[lo:loc]
        if back.size == 0:
            return 0
        if back.min() < cur:
            new = lo + int(np.argmin(back))
            if new <= guard:
                return 0
            loc = new
            continue
        lo = max(loc - span - 1, 0)
        back = env[lo:loc]
        lower = np.flatnonzero(back < cur)
        if lower.size == 0:
            return loc
        last = int(lower[-1])
        if back[last:].max() - back[last:].min() >= min_rise:
            return loc
        if lo + last < guard:
            return 0
        loc = lo + last


def note_onsets(env: np.ndarray, env_rate: float, strength: np.ndarray, strength_rate: float, *,
                onset_sr: int, onset_hop: int, min_strength: float = 3.0) -> np.ndarray:
    """Note onsets (envelope indices, sorted) as the Audio Commons models find them.

    librosa's peak-picked, backtracked onsets of ``strength`` (an onset-strength
    envelope at ``onset_sr``/``onset_hop``) are walked back on ``env`` to where the
    envelope starts rising; then onsets are dropped whose segment rises by less than
    10 % of the envelope's range, that follow the previous one within 100 ms, or
    whose segment never reaches an onset strength of ``min_strength``.
    """
    import librosa

    times = librosa.onset.onset_detect(onset_envelope=strength, sr=onset_sr, hop_length=onset_hop,
                                       backtrack=True, units="time")
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    dyn = float(env.max() - env.min())
    look, span, guard = int(0.02 * env_rate), int(0.3 * env_rate), int(512 / 44100 * env_rate)
    found: list[int] = []
    for loc in np.round(np.asarray(times) * env_rate).astype(int):
        loc = min(loc, env.size - 1)
        if loc <= 0:
            found.append(0)
        elif not found or loc + int(0.0116 * env_rate) < env.size:
            found.append(_refine_onset(loc, env, look, span, 0.1 * dyn, guard))
    onsets = sorted({o for i, o in enumerate(found) if o > 0 or i == 0})
    if len(onsets) > 1:  # each segment must rise by ≥ 10 % of the envelope's range
        for i in reversed(range(len(onsets))):
            seg = env[onsets[i]: onsets[i + 1] if i + 1 < len(onsets) else None]
            p = int(np.argmax(seg)) if seg.size > 1 else 0
            if p == 0 or seg[p] - seg[:p].min() < 0.1 * dyn:
                del onsets[i]
    gap = 0.1 * env_rate
    while len(onsets) > 1 and np.min(np.diff(onsets)) < gap:
        close = {i + 1 for i in range(len(onsets) - 1) if onsets[i + 1] - onsets[i] < gap}
        onsets = [o for i, o in enumerate(onsets) if i not in close]
    frames = [int(o / env_rate * strength_rate) for o in onsets]
    for i in reversed(range(len(onsets))):
        end = frames[i + 1] if i + 1 < len(frames) else None
        seg = strength[frames[i]:end] if end is None or end > frames[i] else strength[frames[i]:frames[i] + 1]
        if seg.size == 0 or seg.max() < min_strength:
            del onsets[i], frames[i]
    return np.asarray(onsets, dtype=np.int64)


def attack_time(env_seg: np.ndarray, sr: int, block: int, *, max_attack_s: float) -> tuple[float, int]:
    """log10 attack time (s) of one note's envelope segment and the attack's start index.

    "Minimum effort" method (Peeters, CUIDADO): thresholds at 10 … 90 % of the rise from
    the last minimum before the peak; the attack spans the thresholds whose spacing is
    at most 3× the mean spacing; capped at ``max_attack_s``.  A segment that peaks at its
    first block has an instant (one-sample) attack.
    """
    peak = int(np.argmax(env_seg))
    if peak == 0:
        return math.log10(1.0 / sr), 0
    pre = env_seg[:peak]
    low = int(np.flatnonzero(pre == pre.min())[-1])
    rise = env_seg[low:peak + 1]
    levels = rise.min() + (rise.max() - rise.min()) * np.linspace(0.1, 0.9, 9)
    idx = np.searchsorted(np.maximum.accumulate(rise), levels, side="left")
    effort = np.diff(idx)
    limit = 3.0 * effort.mean()
    first = int(np.argmax(effort <= limit))
    last = int(np.argmax(effort[first:] >= limit))
    last = (effort.size - first - 1 if last == 0 else last) + first
    start, end = int(idx[first]), int(idx[last])
    if start == end:
        start, end = int(idx[0]), int(idx[-1])
    seconds = min(((end - start) * block + 1) / sr, max_attack_s + 1.0 / sr)
    return math.log10(seconds), low + start


def attack_start(seg: np.ndarray) -> int | None:
    """Start of the attack of ``seg`` (first crossing of 20 % of the rise from the last
    minimum before the peak, the "fixed threshold" method); None if it peaks at once."""
    peak = int(np.argmax(seg))
    if peak == 0:
        return None
    pre = seg[:peak]
    low = int(np.flatnonzero(pre == pre.min())[-1])
    rise = seg[low:peak + 1]
    return low + int(np.argmax(rise >= rise.min() + 0.2 * (rise.max() - rise.min())))


# --- reverberation time -----------------------------------------------------------------

def rt60_blind(x: np.ndarray, sr: int, *, grid: np.ndarray, min_decays: int = 10) -> float:
    """Blind RT60 (s): maximum-likelihood decay rates of the free sound decays of ``x``.

    Löllmann et al. (IWAENC 2010) with Jan & Wang's Laplacian model (EUSIPCO 2012), as
    in the Audio Commons reverb model: ``x`` is decimated by 2; frames of seven ≈29 ms
    sub-frames start every ≈4.2 ms; a frame whose sub-frames' variance and maximum fall
    and minimum rises at least 3 times in a row holds a decay, whose rate is fitted by
    ML over the reverberation times ``grid`` (s); the mode of the histogram of the last
    ≈735 fits, smoothed recursively (α = 0.995 per frame), is averaged over the frames
    that have a fit.

    Deviations from the original: ``grid`` (e.g. 0.1–3 s in 5 % steps) replaces
    0.2–1.1 s in 0.1 s steps, so long and very short decays are not clipped; fits at
    the longest grid value (the likelihood still rising: a sustained sound, not a
    decay) are left out of the histogram, which is smoothed over ±2 grid steps; a
    decay through all seven sub-frames is fitted (the Python port skipped it); the
    smoothing starts at the first mode instead of 0.3 s; the likelihood's sums use a
    3rd-order expansion within 4.2 ms blocks (relative error < 3e-4), so all fits
    share one pass over the signal.

    Raises ``ValueError`` when fewer than ``min_decays`` decays are found.
    """
    grid = np.asarray(grid, dtype=np.float64)
    down = 2 if sr > 8000 else 1
    h = np.asarray(x[::down], dtype=np.float64)
    shift = max(1, round(sr / 240 / down))  # frame shift: 200 samples at 24 kHz
    nb = h.size // shift
    frames = nb - 7 * 7 + 1
    if frames <= 0:
        raise ValueError(f"too short for the RT60 estimator ({x.size / sr:.2f} s)")
    blocks = h[: nb * shift].reshape(nb, shift)

    def sub(values: np.ndarray, how) -> np.ndarray:  # statistics of 7-block sub-frames
        return how(np.lib.stride_tricks.sliding_window_view(values, 7), axis=1)

    n_sub = 7 * shift
    top, bottom = sub(blocks.max(axis=1), np.max), sub(blocks.min(axis=1), np.min)
    var = sub((blocks**2).sum(axis=1), np.sum) / n_sub - (sub(blocks.sum(axis=1), np.sum) / n_sub) ** 2
    at = np.arange(frames)[:, None] + 7 * np.arange(7)[None, :]
    v, hi, lo = var[at], top[at], bottom[at]
    falling = (v[:, 1:] < v[:, :-1]) & (hi[:, 1:] < hi[:, :-1]) & (lo[:, 1:] > lo[:, :-1])
    run = np.cumprod(falling, axis=1).sum(axis=1)
    cand = np.flatnonzero(run >= 3)
    # ML fit: sigma_T = mean(exp(lam_T·n)·|h_n|), log-likelihood -N·ln(sigma_T) + lam_T·N(N-1)/2.
    lam = 3.0 * math.log(10.0) / (grid * sr / down)
    mag = np.abs(blocks)
    r = np.arange(shift, dtype=np.float64)
    moments = [mag @ r**q for q in range(4)]  # per block: sum of r^q·|h|
    est = np.empty(cand.size, dtype=np.int64)
    for length in range(3, 7):
        sel = np.flatnonzero(run[cand] == length)
        if sel.size:
            k = 7 * length
            n = k * shift
            rows = cand[sel][:, None] + np.arange(k)[None, :]
            grow = np.exp(np.outer(np.arange(k) * shift, lam))
            total = sum((moments[q][rows] @ grow) * (lam**q / math.factorial(q)) for q in range(4))
            est[sel] = np.argmax(-n * np.log(total / n) + lam * n * (n - 1) / 2.0, axis=1)
    decay = est < grid.size - 1
    cand, est = cand[decay], est[decay]
    if est.size < min_decays:
        raise ValueError(f"only {est.size} free sound decays found (the RT60 estimate needs {min_decays})")
    buffer = max(1, round(sr / 24000 * 800 / down))
    counts = np.cumsum(np.eye(grid.size, dtype=np.int32)[est], axis=0)
    counts[buffer:] -= counts[:-buffer].copy()
    counts = convolve1d(counts, np.array([1, 2, 3, 2, 1], dtype=np.int32), axis=1, mode="constant")
    mode = grid[np.argmax(counts, axis=1)]
    raw = mode[np.maximum(np.searchsorted(cand, np.arange(frames), side="right") - 1, 0)]
    smooth, _ = lfilter([0.005], [1.0, -0.995], raw, zi=[0.995 * mode[0]])
    return float(np.mean(smooth[cand]))
