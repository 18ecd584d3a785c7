"""Note segmentation and decay analysis shared by the Audio Commons timbral models.

Arrays in, values out: :func:`hold_decay_envelope`, :func:`note_onsets`,
:func:`attack_time`, :func:`attack_start` (the note segmentation shared by hardness,
depth and warmth) and :func:`rt60_blind` (the blind reverberation-time estimator of
the reverb model).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import convolve1d, maximum_filter1d
from scipy.signal import lfilter

from sat_mir.features.onset_detect import onset_detect

__all__ = ["attack_start", "attack_time", "hold_decay_envelope", "note_onsets", "rt60_blind"]


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
    # the max of the last hold+1 blocks (the filter's window is [m - hold, m]), a step at a time
    # with hold blocks of context: ndimage buffers a whole line twice, 2 x 46 MB for 9 minutes
    # (the first step reaches past hold blocks: the filter reflects the signal at its start)
    held = np.empty_like(a)
    s = 0
    while s < n:
        e = min(n, s + _STEP if s else max(_STEP, hold + 1))
        lo = max(0, s - hold)
        held[s:e] = maximum_filter1d(a[lo:e], size=hold + 1, origin=hold // 2)[s - lo:]
        s = e
    # the same operations a block of blocks at a time, the running maximum carried across: a
    # 10-minute track's whole-signal temporaries held 0.4 GB
    run = -np.inf
    for s in range(0, max(n - hold - 1, 0), _STEP):
        e = min(s + _STEP, n - hold - 1)
        best = np.arange(s, e, dtype=np.float64)
        best *= slope
        best += a[s:e]
        best[0] = max(best[0], run)
        np.maximum.accumulate(best, out=best)  # max over m' ≤ m of a[m'] + slope·m'
        run = best[-1]
        decayed = np.arange(s + hold + 1, e + hold + 1, dtype=np.float64)
        decayed -= hold
        decayed *= slope
        np.subtract(best, decayed, out=decayed)
        np.maximum(held[s + hold + 1:e + hold + 1], decayed, out=held[s + hold + 1:e + hold + 1])
    return held


_STEP = 1 << 16  # envelope blocks per step of the hold-decay maximum


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
    times = (onset_detect(strength, sr=onset_sr, hop=onset_hop, backtrack=True) * onset_hop) / float(onset_sr)
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
    shift = max(1, round(sr / 240 / down))  # frame shift: 200 samples at 24 kHz
    nb = -(-x.size // down) // shift
    frames = nb - 7 * 7 + 1
    if frames <= 0:
        raise ValueError(f"too short for the RT60 estimator ({x.size / sr:.2f} s)")
    # per block of `shift` decimated samples: max, min, sum of squares, sum, and the moments
    # sum(r^q·|h_r|) of the likelihood's expansion; a few thousand blocks at a time, so no
    # float64 copies of the whole signal are held (three of them were 96 MB for 3 minutes)
    r = np.arange(shift, dtype=np.float64)
    powers = [r**q for q in range(4)]
    bmax, bmin, bsq, bsum = (np.empty(nb) for _ in range(4))
    moment_rows = np.empty((nb, 4))
    step = 4096
    for s in range(0, nb, step):
        e = min(s + step, nb)
        blocks = np.asarray(x[s * shift * down:e * shift * down:down], dtype=np.float64).reshape(e - s, shift)
        bmax[s:e], bmin[s:e] = blocks.max(axis=1), blocks.min(axis=1)
        bsq[s:e], bsum[s:e] = (blocks**2).sum(axis=1), blocks.sum(axis=1)
        mag = np.abs(blocks)
        for q in range(4):
            moment_rows[s:e, q] = mag @ powers[q]

    def sub(values: np.ndarray, how) -> np.ndarray:  # statistics of 7-block sub-frames
        return how(np.lib.stride_tricks.sliding_window_view(values, 7), axis=1)

    n_sub = 7 * shift
    top, bottom = sub(bmax, np.max), sub(bmin, np.min)
    var = sub(bsq, np.sum) / n_sub - (sub(bsum, np.sum) / n_sub) ** 2
    at = np.arange(frames)[:, None] + 7 * np.arange(7)[None, :]
    v, hi, lo = var[at], top[at], bottom[at]
    falling = (v[:, 1:] < v[:, :-1]) & (hi[:, 1:] < hi[:, :-1]) & (lo[:, 1:] > lo[:, :-1])
    run = np.cumprod(falling, axis=1).sum(axis=1)
    cand = np.flatnonzero(run >= 3)
    # ML fit: sigma_T = mean(exp(lam_T·n)·|h_n|), log-likelihood -N·ln(sigma_T) + lam_T·N(N-1)/2.
    lam = 3.0 * math.log(10.0) / (grid * sr / down)
    moments = [np.ascontiguousarray(moment_rows[:, q]) for q in range(4)]  # per block: sum of r^q·|h|
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
