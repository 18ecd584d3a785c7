"""Where training crops start and end: arrays in, sample spans out (no I/O).

Modes (``length`` = the wanted crop length in samples, ``min_length`` the shortest
crop kept):

``sequential``
    Consecutive crops of exactly ``length`` samples from the first non-silent window.
``beat_aligned``
    Each crop starts on a downbeat and ends on the last downbeat that keeps it within
    ``length``; the next crop starts where this one ended.
``overlap``
    Like ``beat_aligned``, but the next crop starts at the downbeat nearest half a crop
    after this one's start (crops overlap by about half).
``div4``
    Like ``beat_aligned``, but each crop holds a multiple of ``bar_multiple`` (4) whole
    bars: it runs from downbeat ``i`` to downbeat ``i + 4k``.  The cutter counts bars of 2
    beats (2/4, 6/8) in pairs (:func:`bar_multiple_for`).  (The seed counted the
    downbeats inside the crop *inclusively*, so its crops held 3, 7 or 11 bars.)

Cut points on downbeats are snapped to the nearest sign change of the channel-mean
signal within ``snap`` samples (10 ms by default), so a cut does not click; a cut
with no sign change that close stays where it was.  The same sample positions are used
for the mix and for every stem.  In ``sequential`` mode only the start is snapped: its
crops have exactly ``length`` samples.

A crop shorter than ``min_length`` is dropped (``short="drop"``) or padded with silence
up to ``length`` (``short="pad"``); this also decides the last, partial crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sat_mir.errors import ConfigError

__all__ = ["MODES", "CropSpan", "bar_multiple_for", "first_sound", "grid_doubt", "no_crops_reason", "plan_crops",
           "pulses_per_bar", "snap_to_zero_crossing"]

MODES = ("sequential", "beat_aligned", "overlap", "div4")
SHORT_POLICIES = ("drop", "pad")


@dataclass(frozen=True)
class CropSpan:
    """Samples ``[start, end)`` of the track, then ``pad`` samples of silence.

    ``bars``: whole bars inside (downbeat modes), None in sequential mode.
    ``grid_start``/``grid_end``: the downbeat times (s) the cut points came from, before
    the zero-crossing snap (None in sequential mode).
    """

    index: int
    start: int
    end: int
    pad: int = 0
    bars: int | None = None
    grid_start: float | None = None
    grid_end: float | None = None

    @property
    def frames(self) -> int:
        """Length of the written crop in samples (audio plus padding)."""
        return self.end - self.start + self.pad


def pulses_per_bar(beats_per_bar: int | None, time_signature: str | None) -> int | None:
    """Felt beats per bar from the rhythm extractor's values: the numerator, over 3 for a
    compound meter (6/8: 2, 12/8: 4); ``None`` when the track has no meter."""
    if beats_per_bar is None:
        return None
    compound = isinstance(time_signature, str) and time_signature.endswith("/8") and beats_per_bar in (6, 9, 12)
    return int(beats_per_bar) // 3 if compound else int(beats_per_bar)


def bar_multiple_for(bar_multiple: int, pulses: int | None) -> int:
    """``div4``'s bar multiple for bars of ``pulses`` felt beats: doubled for bars of 2 (2/4, 2/2,
    6/8), so that a crop holds the same 16 beats whether the music is read in 2/4 or in 4/4,
    in 6/8 or in 12/8.  The two readings sound the same, and the meter model cannot always
    tell them apart (about 9 points of meter accuracy on the evaluation corpus); counted in
    bars of 2, a crop of 4 bars of a 4/4 song read as 2/4 held 2 of its bars."""
    return 2 * bar_multiple if pulses == 2 else bar_multiple


def grid_doubt(features: dict, min_confidence: dict[str, float]) -> str | None:
    """Why the track's beat grid is not trusted to cut on, or None when it is: a confidence of
    ``min_confidence`` (``{"tempo_confidence": 0.8, "meter_confidence": 0.5,
    "downbeat_confidence": 0.7}``) below its minimum, in words for the log.  A wrong beat level,
    meter or bar phase puts every cut off the bar lines, so such a grid is treated like the
    prompts treat its BPM and meter: not a fact.  A confidence the sidecar does not hold (an
    older version) doubts nothing.  The rule is the prompts' own
    (:func:`sat_mir.build.confidence.trusted_facts`), asked of the confidences."""
    from sat_mir.build.confidence import trusted_facts

    _, dropped = trusted_facts(features, min_confidence, {key: key for key in min_confidence})
    return ", ".join(dropped.values()) or None


def first_sound(mono: np.ndarray, *, sr: int, window_s: float = 0.1, threshold_db: float = -72.0) -> int:
    """Start (sample) of the first ``window_s`` window whose peak exceeds ``threshold_db`` dBFS.

    Returns ``len(mono)`` when the whole signal is quieter (nothing to crop).
    """
    win = max(1, int(round(window_s * sr)))
    n = len(mono) // win * win
    peaks = np.abs(mono[:n]).reshape(-1, win).max(axis=1) if n else np.zeros(0)
    if len(mono) > n:
        peaks = np.append(peaks, np.abs(mono[n:]).max())
    loud = np.flatnonzero(peaks > 10.0 ** (threshold_db / 20.0))
    return int(loud[0] * win) if loud.size else len(mono)


def snap_to_zero_crossing(mono: np.ndarray, pos: int, window: int, *, before: bool = False) -> int:
    """The sign change of ``mono`` nearest ``pos`` within ``±window`` samples (``before``: within
    ``window`` samples at or before ``pos``), else ``pos``.

    A sign change between samples ``k-1`` and ``k`` snaps to ``k``, the first sample of
    the new sign; an exact zero counts as a crossing.
    """
    n = len(mono)
    if window <= 0 or n < 2:
        return int(min(max(pos, 0), n))
    lo, hi = max(1, pos - window), min(n - 1, pos if before else pos + window)
    if lo > hi:
        return int(min(max(pos, 0), n))
    seg = mono[lo - 1 : hi + 1]
    s = np.signbit(seg)
    crossings = np.flatnonzero((s[1:] != s[:-1]) | (seg[1:] == 0.0)) + lo
    if not crossings.size:
        return int(pos)
    return int(crossings[np.argmin(np.abs(crossings - pos))])


def plan_crops(
    mode: str,
    mono: np.ndarray,
    *,
    sr: int,
    length: int,
    min_length: int,
    downbeats_s: np.ndarray | None = None,
    snap: int = 441,
    short: str = "drop",
    bar_multiple: int = 4,
    silence_db: float = -72.0,
    pair_phase: int | None = None,
) -> list[CropSpan]:
    """Plan the crops of one track.

    Parameters
    ----------
    mode : one of :data:`MODES`.
    mono : float ``[frames]``, the channel mean of the mix (snap and silence detection).
    sr : int > 0, Hz.
    length : int > 0, the crop length in samples (the longest crop).
    min_length : int in (0, length], shorter crops follow ``short``.
    downbeats_s : downbeat times in s, increasing; required by the downbeat modes.
    snap : int >= 0, zero-crossing snap window in samples (0 = no snap).
    short : "drop" or "pad".
    bar_multiple : int >= 1, ``div4``'s bar multiple.
    silence_db : dBFS; the first window louder than this starts the music.
    pair_phase : 0 or 1, ``div4`` only: crops start on downbeats of this parity (bars of 2 beats
        counted in pairs from where the kick comes in, rhythm's ``bar_pair_phase``); ``None``:
        from the first downbeat at the first sound.

    Raises
    ------
    ConfigError
        Unknown mode or policy, inconsistent lengths, or a downbeat mode without at
        least two downbeats.
    """
    if mode not in MODES:
        raise ConfigError(f"crops.mode must be one of {list(MODES)}, got {mode!r}")
    if short not in SHORT_POLICIES:
        raise ConfigError(f"crops.short must be one of {list(SHORT_POLICIES)}, got {short!r}")
    if not 0 < min_length <= length:
        raise ConfigError(f"crop lengths must satisfy 0 < min_length <= length, got {min_length} and {length}")
    n = len(mono)
    start0 = first_sound(mono, sr=sr, threshold_db=silence_db)
    if start0 >= n:
        return []
    if mode == "sequential":
        return _sequential(mono, n, start0, length, min_length, snap, short)
    grid = np.asarray(downbeats_s if downbeats_s is not None else [], dtype=np.float64)
    if grid.size < 2:
        raise ConfigError(f"crops.mode={mode} needs a downbeat grid; this track has {grid.size} downbeat(s)")
    step = bar_multiple if mode == "div4" else 1
    return _on_downbeats(mono, sr, n, grid, start0, length, min_length, snap, short, step,
                         overlap=mode == "overlap", pair_phase=pair_phase if mode == "div4" else None)


def no_crops_reason(mode: str, mono: np.ndarray, *, sr: int, length: int, min_length: int,
                    downbeats_s: np.ndarray | None = None, bar_multiple: int = 4, silence_db: float = -72.0) -> str:
    """Why :func:`plan_crops` with these arguments planned no crop, in words for the log."""
    n = len(mono)
    start0 = first_sound(mono, sr=sr, threshold_db=silence_db)
    if start0 >= n:
        return f"nothing in it is louder than {silence_db:g} dBFS"
    need = f"length × min_fraction = {min_length / sr:.1f} s"
    heard = (n - start0) / sr
    if heard < min_length / sr or mode == "sequential":
        return f"{heard:.1f} s of audio from its first sound is shorter than {need}"
    grid = np.asarray(downbeats_s if downbeats_s is not None else [], dtype=np.float64)
    grid = grid[(grid >= start0 / sr - 0.05) & (grid <= n / sr)]
    step = bar_multiple if mode == "div4" else 1
    bars = f"{step} bar{'s' if step > 1 else ''}"
    if grid.size < step + 1:
        return f"it has {grid.size} downbeat(s) after its first sound, fewer than the {step + 1} that {bars} need"
    bar_s = float(np.median(np.diff(grid)))
    if step * bar_s > length / sr:
        return f"{bars} of {bar_s:.2f} s ({step * bar_s:.1f} s) do not fit in a crop of {length / sr:.1f} s"
    span = grid[-1] - grid[0]
    return (f"its downbeats from the first sound on span {span:.1f} s; no run of whole {bars} there holds {need} "
            f"and fits in {length / sr:.1f} s")


def _finish(index: int, start: int, end: int, length: int, min_length: int, short: str, **kw) -> CropSpan | None:
    if end - start >= min_length:
        return CropSpan(index, start, end, **kw)
    if short == "pad":
        return CropSpan(index, start, end, pad=length - (end - start), **kw)
    return None


def _sequential(mono, n, start0, length, min_length, snap, short) -> list[CropSpan]:
    out: list[CropSpan] = []
    start = snap_to_zero_crossing(mono, start0, snap)
    while start < n:
        span = _finish(len(out), start, min(start + length, n), length, min_length, short)
        if span is None:
            break
        out.append(span)
        start += length
    return out


def _on_downbeats(mono, sr, n, grid, start0, length, min_length, snap, short, step, *, overlap,
                  pair_phase=None) -> list[CropSpan]:
    samples = np.round(grid * sr).astype(np.int64)
    # the first downbeat at (or within 50 ms before) the first sound: a crop never starts in silence
    i = int(np.searchsorted(samples, start0 - int(0.05 * sr)))
    if pair_phase is not None and (i - pair_phase) % 2:
        i += 1  # a pickup bar: the pair starts on the next one
    out: list[CropSpan] = []
    while i < len(samples) - 1 and samples[i] < n:
        reach = np.searchsorted(samples, samples[i] + length, side="right") - 1  # last downbeat within length
        bars = (int(reach) - i) // step * step
        if bars < step:
            if short == "drop":
                break
            bars = step  # "pad": a crop with whole bars is still better than none
        j = i + bars
        if j >= len(samples):
            break
        # a cut on a downbeat snaps back, never forward: a later cut takes off the start of the
        # attack that the downbeat is (the beats sit on the notes' starts: attack.attack_shift),
        # an earlier one keeps a few ms of the bar before
        start = snap_to_zero_crossing(mono, int(samples[i]), snap, before=True)
        end = min(snap_to_zero_crossing(mono, int(samples[j]), snap, before=True), n)
        span = _finish(len(out), start, end, length, min_length, short, bars=bars,
                       grid_start=float(grid[i]), grid_end=float(grid[j]))
        if span is None or span.frames > length:
            break
        out.append(span)
        if overlap:
            target = samples[i] + length // 2
            nxt = int(np.argmin(np.abs(samples - target)))
            i = nxt if nxt > i else i + 1
        else:
            i = j
    return out
