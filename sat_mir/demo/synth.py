"""A small numpy synthesiser for songs whose tempo, meter, key, beats, downbeats and
stems are known exactly.

Four stems in Demucs' order: ``drums`` (kick, snare, hi-hat), ``bass`` (filtered
saw on chord roots), ``other`` (sustained triads) and ``vocals`` (a formant-shaped
"sung" melody with vibrato, in the second half of the song).  The mix is the
exact sum of the stems.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.signal import butter, sosfilt

__all__ = ["PITCH_CLASSES", "SongSpec", "SongTruth", "render_song"]

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
# Progressions as scale degrees (0-based): I-V-vi-IV and i-VI-III-VII.
_PROGRESSION = {"major": (0, 4, 5, 3), "minor": (0, 5, 2, 6)}


@dataclass(frozen=True)
class SongSpec:
    title: str
    bpm: float
    beats_per_bar: int
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" | "minor"
    bars: int
    seed: int
    lead_in_s: float = 0.5


@dataclass
class SongTruth:
    title: str
    bpm: float
    beats_per_bar: int
    key: str
    tonic: int
    mode: str
    sr: int
    duration_s: float
    lead_in_s: float
    beats: list[float] = field(default_factory=list)
    downbeats: list[float] = field(default_factory=list)
    vocals_start_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def _midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _add(buf: np.ndarray, start_s: float, sound: np.ndarray, sr: int, pan: float = 0.0) -> None:
    """Mix a mono ``sound`` into stereo ``buf`` at ``start_s`` with constant-power ``pan`` in [-1, 1]."""
    i = int(round(start_s * sr))
    n = min(sound.size, buf.shape[1] - i)
    if n <= 0:
        return
    theta = (pan + 1.0) * np.pi / 4.0
    buf[0, i : i + n] += np.cos(theta) * sound[:n]
    buf[1, i : i + n] += np.sin(theta) * sound[:n]


def _kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.35 * sr)) / sr
    freq = 45.0 + 75.0 * np.exp(-t / 0.03)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.12)


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.25 * sr)) / sr
    noise = sosfilt(butter(2, [1500, 7000], "bandpass", fs=sr, output="sos"), rng.standard_normal(t.size))
    return 0.7 * noise * np.exp(-t / 0.06) + 0.5 * np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.05)


def _hat(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.08 * sr)) / sr
    noise = sosfilt(butter(4, 7000, "highpass", fs=sr, output="sos"), rng.standard_normal(t.size))
    return 0.5 * noise * np.exp(-t / 0.015)


def _envelope(n: int, sr: int, attack_s: float, release_s: float) -> np.ndarray:
    env = np.ones(n)
    a = min(n, max(1, int(attack_s * sr)))
    r = min(n - a, max(1, int(release_s * sr)))
    env[:a] = np.linspace(0.0, 1.0, a)
    if r > 0:
        env[n - r :] *= np.linspace(1.0, 0.0, r)
    return env


def _saw_bass(hz: float, dur_s: float, sr: int) -> np.ndarray:
    n = int(dur_s * sr)
    t = np.arange(n) / sr
    # band-limited saw from its first harmonics
    wave = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 12) if k * hz < sr / 2.5)
    return wave * _envelope(n, sr, 0.005, 0.05) * np.exp(-t / (dur_s * 1.5))


def _pad_chord(notes: list[int], dur_s: float, sr: int) -> np.ndarray:
    n = int(dur_s * sr)
    t = np.arange(n) / sr
    out = np.zeros(n)
    for note in notes:
        hz = _midi_hz(note)
        out += sum((0.6**k) * np.sin(2 * np.pi * (k + 1) * hz * t) for k in range(5))
    return out * _envelope(n, sr, 0.03, 0.15) / len(notes)


def _voice(note: int, dur_s: float, sr: int) -> np.ndarray:
    n = int(dur_s * sr)
    t = np.arange(n) / sr
    hz = _midi_hz(note) * (1.0 + 0.006 * np.sin(2 * np.pi * 5.5 * t))  # vibrato
    phase = 2 * np.pi * np.cumsum(hz) / sr
    out = np.zeros(n)
    # vowel /a/: harmonics weighted by formants near 800 and 1150 Hz
    for k in range(1, 25):
        f = k * _midi_hz(note)
        if f > sr / 2.5:
            break
        w = np.exp(-(((f - 800.0) / 250.0) ** 2)) + 0.6 * np.exp(-(((f - 1150.0) / 300.0) ** 2)) + 0.15 / k
        out += w * np.sin(k * phase)
    return out * _envelope(n, sr, 0.04, 0.12)


def render_song(spec: SongSpec, *, sr: int = 44100) -> tuple[dict[str, np.ndarray], SongTruth]:
    """Render ``spec`` → (``{stem: float32 [2, frames]}``, ground truth).

    The stems are scaled together so that their sum (the mix) peaks at 0.9.
    """
    rng = np.random.default_rng(spec.seed)
    beat_s = 60.0 / spec.bpm
    bar_s = beat_s * spec.beats_per_bar
    n_beats = spec.bars * spec.beats_per_bar
    duration = spec.lead_in_s + spec.bars * bar_s + 1.0  # one second of tail
    frames = int(round(duration * sr))
    beats = [spec.lead_in_s + i * beat_s for i in range(n_beats)]
    downbeats = beats[:: spec.beats_per_bar]
    stems = {name: np.zeros((2, frames)) for name in ("drums", "bass", "other", "vocals")}

    kick, snare, hat = _kick(sr), _snare(sr, rng), _hat(sr, rng)
    for i, t in enumerate(beats):
        pos = i % spec.beats_per_bar
        if pos == 0 or (spec.beats_per_bar == 4 and pos == 2):
            _add(stems["drums"], t, kick, sr)
        if (spec.beats_per_bar == 4 and pos in (1, 3)) or (spec.beats_per_bar == 3 and pos in (1, 2)):
            _add(stems["drums"], t, snare, sr, pan=-0.1)
        for sub in (0.0, 0.5):
            _add(stems["drums"], t + sub * beat_s, hat * (1.0 if sub == 0 else 0.6), sr, pan=0.35)

    scale = _MAJOR if spec.mode == "major" else _MINOR
    root_midi = 48 + spec.tonic  # C3-based chord register
    progression = _PROGRESSION[spec.mode]
    vocals_start = downbeats[len(downbeats) // 2]
    melody_rng = np.random.default_rng(spec.seed + 1000)
    for b, t in enumerate(downbeats):
        degree = progression[b % len(progression)]
        chord = [root_midi + scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        _add(stems["other"], t, _pad_chord(chord, bar_s, sr), sr, pan=-0.25)
        bass_note = chord[0] - 24
        for k in range(spec.beats_per_bar):
            _add(stems["bass"], t + k * beat_s, _saw_bass(_midi_hz(bass_note), beat_s * 0.9, sr), sr)
        if t >= vocals_start:
            for half in range(2):
                note = chord[melody_rng.integers(0, 3)] + 12
                start = t + half * bar_s / 2
                _add(stems["vocals"], start, _voice(note, bar_s / 2 * 0.85, sr), sr, pan=0.1)

    gains = {"drums": 0.8, "bass": 0.45, "other": 0.35, "vocals": 0.3}
    for name in stems:
        stems[name] *= gains[name]
    peak = np.max(np.abs(sum(stems.values())))
    stems = {name: (x * (0.9 / peak)).astype(np.float32) for name, x in stems.items()}
    truth = SongTruth(
        title=spec.title, bpm=spec.bpm, beats_per_bar=spec.beats_per_bar,
        key=f"{PITCH_CLASSES[spec.tonic]} {spec.mode}", tonic=spec.tonic, mode=spec.mode, sr=sr,
        duration_s=frames / sr, lead_in_s=spec.lead_in_s, beats=beats, downbeats=downbeats,
        vocals_start_s=vocals_start,
    )
    return stems, truth
