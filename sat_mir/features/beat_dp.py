"""Ellis's dynamic-programming beat tracker at a given tempo, as ``librosa.beat.beat_track``
computes it (librosa 0.11, ``trim=True``, static tempo), in numpy.

Why not librosa's: importing ``librosa.beat`` compiles one of its numba functions
(``cache=False``) for two signatures in every process, about 3 s, which was a quarter of
a whole three-track run.  The recursion is sequential over frames, but every frame's
predecessors lie at least half a beat back, so the frames of each half beat are scored
together as one array.  The beats are the same as librosa's (tests/features/test_beat_dp.py):
the same local score (a Gaussian-windowed onset envelope normalised by its deviation), the
same transition penalty ``tightness · log(Δ / period)²`` over predecessors from half a beat to
two beats back (the nearest of equal scores wins), the same last-beat rule and trimming.
"""

from __future__ import annotations

import numpy as np

__all__ = ["track_beats"]


def track_beats(env: np.ndarray, fps: float, bpm: float, *, tightness: float = 100.0,
                rel: np.ndarray | None = None) -> np.ndarray:
    """Beat frames (int array, ascending) of onset envelope ``env`` (``[frames]``, ``fps``
    frames per second) at tempo ``bpm``; empty when the envelope is all zero.

    ``rel`` (``[frames]``, optional): the beat period at each frame as a multiple of ``bpm``'s,
    for a tempo that changes (:func:`sat_mir.features.metrical.local_tempo`): each frame's
    transition penalty is then measured from its own period, and its predecessors are looked
    for from half the shortest period to twice the longest back.  Without it, librosa's tracker."""
    env = np.asarray(env)
    env = env if env.dtype in (np.float32, np.float64) else env.astype(np.float32)
    if not env.any():
        return np.zeros(0, dtype=int)
    if bpm <= 0 or tightness <= 0:
        raise ValueError(f"bpm ({bpm}) and tightness ({tightness}) must be positive")
    # librosa's tempo is a float64 array, which selects the float64 loops of its numba
    # functions: everything after the normalisation is float64, tightness float32
    period = np.round(fps * 60.0 / np.float64(bpm))  # frames per beat
    normalised = env / (env.std(ddof=1, axis=-1, keepdims=True) + np.finfo(env.dtype).tiny)
    local = _local_score(normalised.astype(np.float64), period)
    periods = None
    if rel is not None:  # one period per frame of the envelope (the last repeated if rel is short)
        r = np.asarray(rel, dtype=np.float64)[: local.size]
        periods = period * np.pad(r, (0, local.size - r.size), mode="edge")
    backlink, cumulative = _dp(local, period, np.float32(tightness), periods)
    beats = np.zeros(local.size, dtype=bool)
    n = _last_beat(cumulative)
    while n >= 0:
        beats[n] = True
        n = backlink[n]
    return np.flatnonzero(_trim(local, beats))


def _local_score(env: np.ndarray, period: float) -> np.ndarray:
    """``env`` smoothed by a Gaussian of ±``period`` frames (σ = period / 32), centred, summed
    tap by tap in librosa's order (whose loop bounds leave the envelope's first frame out)."""
    window = np.exp(-0.5 * (np.arange(-period, period + 1) * 32.0 / period) ** 2)
    half, n = window.size // 2, env.size
    out = np.zeros(n)
    for k, w in enumerate(window):
        lo, hi = max(0, k - half + 1), min(n - 1, k - half + n - 1)  # the frames tap k reaches
        if lo <= hi:
            out[lo: hi + 1] += w * env[lo + half - k: hi + half - k + 1]
    return out


def _dp(local: np.ndarray, period: float, tightness: np.float32,
        periods: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Backlinks and cumulative scores: every frame's best predecessor from ``round(period/2)``
    to ``2·period`` frames back.  Frames within one such half-beat block have all their
    predecessors before the block, so each block is one array operation.  ``periods`` (``[frames]``):
    each frame's own period (a changing tempo), the penalty measured from it."""
    n = local.size
    lo, hi = (period, period) if periods is None else (float(periods.min()), float(periods.max()))
    near, far = int(np.round(lo / 2)), int(2 * hi)
    backlink = np.full(n, -1, dtype=np.int64)
    padded = np.full(far + n, -np.inf)  # cumulative scores after `far` frames before the start
    cumulative = padded[far:]
    threshold = 0.01 * local.max()
    back = np.arange(near, far + 1)  # frames back, nearest first: argmax keeps the nearest of ties
    penalty = np.float64(tightness) * (np.log(back) - np.log(period)) ** 2
    # row i: the cumulative scores of frames i - back (padded[far + i - back]); a view, so it
    # sees the scores as they are written
    windows = np.lib.stride_tricks.sliding_window_view(padded, far - near + 1)
    started = False
    step = max(1, near)
    all_rows = np.arange(step)
    for start in range(0, n, step):
        end = min(start + step, n)
        rows = all_rows[: end - start]
        if periods is None:
            score = windows[start:end, ::-1] - penalty
        else:
            own = np.float64(tightness) * (np.log(back)[None, :] - np.log(periods[start:end])[:, None]) ** 2
            score = windows[start:end, ::-1] - own
        best = score.argmax(axis=1)
        best_score = score[rows, best]
        found = np.isfinite(best_score)  # a frame within half a beat of the start has none
        cumulative[start:end] = np.where(found, local[start:end] + best_score, local[start:end])
        links = np.where(found, start + rows - back[best], -1)
        if not started:  # no backlink until the first frame that reaches 1 % of the peak
            strong = np.flatnonzero(local[start:end] >= threshold)
            if strong.size == 0:
                continue
            links[: strong[0]] = -1
            started = True
        backlink[start:end] = links
    return backlink, cumulative.copy()


def _last_beat(cumulative: np.ndarray) -> int:
    """The last local maximum of the cumulative score that reaches half the median of them."""
    x = cumulative
    peak = np.zeros(x.size, dtype=bool)  # librosa.util.localmax: > left, >= right; never the first
    if x.size > 1:
        peak[1:-1] = (x[1:-1] > x[:-2]) & (x[1:-1] >= x[2:])
        peak[-1] = x[-1] > x[-2]
    threshold = 0.5 * np.median(x[peak]) if peak.any() else np.nan
    ok = np.flatnonzero(peak & (x >= threshold))
    return int(ok[-1]) if ok.size else x.size - 1


def _trim(local: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Beats off the frames at either end whose local score is at most half the RMS of the
    smoothed local score at the beats."""
    out = beats.copy()
    w = np.hanning(5)
    smooth = np.convolve(local[beats], w)[len(w) // 2: local.size + len(w) // 2]
    threshold = 0.5 * np.sqrt(np.mean(smooth**2))
    n = 0
    while n < local.size and local[n] <= threshold:
        out[n] = False
        n += 1
    n = local.size - 1
    while n >= 0 and local[n] <= threshold:
        out[n] = False
        n -= 1
    return out
