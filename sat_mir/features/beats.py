"""Beat grid, metrical level, meter and downbeats from an onset envelope — arrays in, values out.

Beats: librosa's tempo estimate (prior at 120 BPM) and dynamic-programming tracker.
A prior at 120 BPM halves fast tempi (a 180 BPM song tracked at 90); the tracked
grid tells: when the points halfway between beats are nearly as strong as the
beats, every other beat was missed, and the tempo is doubled.

Downbeats: for each meter (3 or 4 beats per bar) and phase, how much more
harmonic change and low-frequency attack falls on the candidate bar starts than on
the other beats; the best (meter, phase) wins.
"""

from __future__ import annotations

import numpy as np

from sat_mir.errors import ExtractorError

__all__ = ["choose_downbeats", "local_strength", "tempo_from_beats", "track_beats"]


def local_strength(env: np.ndarray, frames: np.ndarray, width: int = 2) -> np.ndarray:
    """Max of ``env`` within ±``width`` frames of each frame index."""
    frames = np.clip(np.asarray(frames, dtype=int), 0, env.size - 1)
    offsets = np.arange(-width, width + 1)
    idx = np.clip(frames[:, None] + offsets[None, :], 0, env.size - 1)
    return env[idx].max(axis=1)


def tempo_from_beats(beats: np.ndarray) -> float:
    """BPM from beat times (s): 60 / mean of the inter-beat intervals within 10 % of the median.

    Dropping irregular intervals keeps a missed or doubled beat from biasing the mean.
    """
    ibi = np.diff(np.asarray(beats, dtype=np.float64))
    if ibi.size == 0:
        raise ExtractorError("need at least two beats to measure a tempo")
    med = float(np.median(ibi))
    regular = ibi[np.abs(ibi - med) <= 0.1 * med]
    return 60.0 / float(regular.mean())


def track_beats(env: np.ndarray, *, sr: int, hop: int, start_bpm: float = 120.0, tightness: float = 100.0,
                double_threshold: float = 0.45, max_bpm: float = 200.0) -> np.ndarray:
    """Beat frames of the onset envelope ``env`` (frame rate ``sr / hop``)."""
    import librosa

    bpm = float(librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop, start_bpm=start_bpm)[0])
    _, frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop, bpm=bpm,
                                        tightness=tightness, trim=True)
    if frames.size >= 4 and 2 * bpm <= max_bpm:
        mids = ((frames[:-1] + frames[1:]) // 2).astype(int)
        ratio = local_strength(env, mids).mean() / max(local_strength(env, frames).mean(), 1e-9)
        if ratio > double_threshold:
            _, frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop, bpm=2 * bpm,
                                                tightness=tightness, trim=True)
    return _extend_grid(env, np.asarray(frames, dtype=int))


def _extend_grid(env: np.ndarray, frames: np.ndarray, *, min_ratio: float = 0.3) -> np.ndarray:
    """Add beats one period before the first and after the last while the envelope there is
    strong: the tracker drops the first beat after a silent lead-in and the last one."""
    if frames.size < 3:
        return frames
    period = int(round(np.median(np.diff(frames))))
    floor = min_ratio * float(np.median(local_strength(env, frames)))
    head, tail = list(frames[:1]), list(frames[-1:])
    while head[0] - period >= 0 and local_strength(env, np.array([head[0] - period]))[0] >= floor:
        head.insert(0, head[0] - period)
    while tail[-1] + period < env.size and local_strength(env, np.array([tail[-1] + period]))[0] >= floor:
        tail.append(tail[-1] + period)
    return np.concatenate([head[:-1], frames, tail[1:]]).astype(int)


def choose_downbeats(evidence: np.ndarray, meters: tuple[int, ...] = (3, 4)) -> tuple[int, int, float]:
    """(beats per bar, index of the first downbeat, contrast) from per-beat bar-start evidence.

    ``evidence[i]`` says how much beat ``i`` looks like the start of a bar; the
    contrast is the mean evidence on the chosen bar starts minus that on the other beats.
    """
    best = (meters[-1], 0, -np.inf)
    for m in meters:
        if evidence.size < 2 * m:
            continue
        for phase in range(m):
            on = np.zeros(evidence.size, bool)
            on[phase::m] = True
            contrast = float(evidence[on].mean() - evidence[~on].mean())
            if contrast > best[2]:
                best = (m, phase, contrast)
    return best
