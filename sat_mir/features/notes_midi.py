"""Notes of the bass and other stems (Basic Pitch) as MIDI files, and what they say.

Each stem (22.05 kHz mono) goes through Basic Pitch (:mod:`sat_mir.models.basic_pitch`, the
real weights that ship in its wheel).  Two steps follow, chosen by measurement on the rendered
development corpus (``tools/score_notes.py``; the figures are in ``docs/eval.md``):

- **onsets snapped to the stem's attacks**: a note's start moves to the nearest onset of the
  stem's own spectral-flux onset detector (librosa) within ``snap_before_ms`` before it or
  ``snap_after_ms`` after it.  Basic Pitch places notes at the frame its pitch becomes clear,
  which for a slapped or picked bass is 40-60 ms after the attack - outside the ±50 ms a note
  onset is scored with.
- **one bass note at a time**: a bass line is a melody; of notes that overlap by more than half
  of the weaker one's length, only the stronger (network activation) is kept, which removes
  the octave-up and sub-octave ghosts Basic Pitch reports beside a bass note.

``bass.mid`` (GM program 33, fingered bass) and ``other.mid`` (program 0) are written beside the
sidecar; their tempo is the mix's beat grid, as ``drums.mid``'s.  Values: note counts, bass
notes per bar (bars from the ``rhythm`` extractor's downbeats), the bass line's range and the
mean polyphony of the other stem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ConfigError, ExtractorError
from sat_mir.features.midi_file import MidiNote, grid_tempo, notes_midi_bytes
from sat_mir.features.registry import ExtractorResult, ModelExtractor, OutputSpec, register
from sat_mir.models import basic_pitch

__all__ = ["NotesMidi", "monophonic", "polyphony_mean", "snap_onsets", "transcribe"]

# the keys each stem's notes give
KEYS = {"bass": ("bass_note_count", "bass_notes_per_bar", "bass_pitch_range"),
        "other": ("other_note_count", "polyphony_mean")}
PROGRAMS = {"bass": 33, "other": 0}  # GM: fingered electric bass, acoustic grand piano
POLYPHONY_FPS = 100


def snap_onsets(notes: Sequence[MidiNote], onsets_s: np.ndarray, *, before_s: float, after_s: float
                ) -> list[MidiNote]:
    """Each note's start moved to the nearest of ``onsets_s`` within ``[start - before_s, start +
    after_s]`` (kept when none is there, and never past 10 ms before the note's end)."""
    onsets_s = np.sort(np.asarray(onsets_s, dtype=float))
    out = []
    for n in notes:
        near = onsets_s[(onsets_s >= n.start_s - before_s) & (onsets_s <= n.start_s + after_s)]
        if near.size:
            start = float(near[np.argmin(np.abs(near - n.start_s))])
            n = n._replace(start_s=max(0.0, min(start, n.end_s - 0.01)))
        out.append(n)
    return sorted(out)


def monophonic(notes: Sequence[MidiNote], *, max_overlap: float = 0.5) -> list[MidiNote]:
    """The notes left when, strongest (velocity) first, a note overlapping an already kept one
    by more than ``max_overlap`` of its own length is dropped."""
    kept: list[MidiNote] = []
    for n in sorted(notes, key=lambda n: (-n.velocity, n.start_s)):
        length = max(n.end_s - n.start_s, 1e-9)
        if all(min(n.end_s, k.end_s) - max(n.start_s, k.start_s) <= max_overlap * length for k in kept):
            kept.append(n)
    return sorted(kept)


def polyphony_mean(notes: Sequence[MidiNote], *, fps: int = POLYPHONY_FPS) -> float | None:
    """Mean number of notes sounding at once, over the frames where at least one sounds
    (None without notes), so silence between phrases does not dilute it."""
    if not notes:
        return None
    last = int(np.ceil(max(n.end_s for n in notes) * fps)) + 2
    delta = np.zeros(last, dtype=np.int64)
    for n in notes:
        a, b = int(round(n.start_s * fps)), int(round(n.end_s * fps))
        if b > a:
            delta[a] += 1
            delta[b] -= 1
    count = np.cumsum(delta)
    sounding = count[count > 0]
    return float(sounding.mean()) if sounding.size else None


def transcribe(mono: np.ndarray, model, *, line: bool,
               settings: basic_pitch.NoteSettings = basic_pitch.NoteSettings(), snap_before_ms: float = 100.0,
               snap_after_ms: float = 20.0) -> list[MidiNote]:
    """Notes of a stem (mono at :data:`basic_pitch.SAMPLE_RATE`): Basic Pitch's, onsets snapped
    to the stem's attacks, and for a ``line`` (the bass) one note at a time."""
    import librosa

    notes = [MidiNote(*n) for n in model.notes(mono, settings)]
    if notes and (snap_before_ms or snap_after_ms):
        onsets = librosa.onset.onset_detect(y=mono, sr=basic_pitch.SAMPLE_RATE, hop_length=256, units="time")
        notes = snap_onsets(notes, onsets, before_s=snap_before_ms / 1000, after_s=snap_after_ms / 1000)
    return monophonic(notes) if line else notes


def _outputs() -> tuple[OutputSpec, ...]:
    return (
        OutputSpec("bass_note_count", "notes", "notes Basic Pitch transcribes in the bass stem (bass.mid)",
                   (0, 1e6), kind="int"),
        OutputSpec("bass_notes_per_bar", "notes/bar", "bass notes per bar (bars: the mix's downbeats)", (0.0, 64.0)),
        OutputSpec("bass_pitch_range", "semitones", "range of the bass line: 5th to 95th percentile of its "
                   "note pitches, so one stray note does not widen it", (0, 88), kind="int"),
        OutputSpec("other_note_count", "notes", "notes Basic Pitch transcribes in the other stem (other.mid)",
                   (0, 1e6), kind="int"),
        OutputSpec("polyphony_mean", "notes", "mean number of notes sounding at once in the other stem, over "
                   "the time any sounds", (1.0, 24.0)),
    )


@register
class NotesMidi(ModelExtractor):
    name = "notes_midi"
    version = "1"
    signals = ("stems",)
    outputs = _outputs()

    @dataclass(frozen=True)
    class Config:
        onset_threshold: float = 0.5  # Basic Pitch's defaults (its command line's names)
        frame_threshold: float = 0.3
        minimum_note_length_ms: float = 127.7
        snap_before_ms: float = 100.0
        snap_after_ms: float = 20.0
        ticks_per_beat: int = 480
        tightness: float = 100.0  # the mix's beat grid settings (shared with `rhythm`), when run alone

        def __post_init__(self):
            if not (0 < self.onset_threshold < 1 and 0 < self.frame_threshold < 1):
                raise ConfigError("notes_midi: onset_threshold and frame_threshold must be in (0, 1), got "
                                  f"{self.onset_threshold!r}, {self.frame_threshold!r}")
            if self.minimum_note_length_ms <= 0 or self.snap_before_ms < 0 or self.snap_after_ms < 0:
                raise ConfigError("notes_midi: minimum_note_length_ms must be > 0 and the snap windows >= 0")
            if not 0 < self.ticks_per_beat < 2**15:
                raise ConfigError(f"notes_midi.ticks_per_beat must be in 1..32767, got {self.ticks_per_beat!r}")

    @property
    def reads_features(self) -> list[str]:
        return ["bpm", "downbeat_count"]

    def preflight(self) -> None:
        basic_pitch.model_path()

    def compute_batch(self, ctxs: list[TrackContext]) -> list[ExtractorResult | Exception]:
        if not any(stem in ctx.stem_names for ctx in ctxs for stem in KEYS):
            return [self._one(ctx, None) for ctx in ctxs]  # nothing to transcribe: no model to load
        try:
            model = basic_pitch.load_transcriber()
        except Exception as exc:  # noqa: BLE001 - every item shares the one load failure
            return [exc] * len(ctxs)
        out: list[ExtractorResult | Exception] = []
        for ctx in ctxs:
            try:
                out.append(self._one(ctx, model))
            except Exception as exc:  # noqa: BLE001 - returned to the runner, which records it
                out.append(exc)
        return out

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        return self._one(ctx, basic_pitch.load_transcriber())

    def _notes(self, ctx: TrackContext, stem: str, model) -> list[MidiNote]:
        mono = ctx.stem(stem).mono_at(basic_pitch.SAMPLE_RATE)
        if not np.all(np.isfinite(mono)):
            raise ExtractorError(f"the {stem} stem contains NaN or infinity")
        c = self.config
        settings = basic_pitch.NoteSettings(onset_threshold=c.onset_threshold, frame_threshold=c.frame_threshold,
                                            minimum_note_length_ms=c.minimum_note_length_ms)
        return transcribe(mono, model, line=stem == "bass", settings=settings, snap_before_ms=c.snap_before_ms,
                          snap_after_ms=c.snap_after_ms)

    def _bars(self, ctx: TrackContext) -> int:
        counted = ctx.features.get("downbeat_count")
        if isinstance(counted, int):
            return counted
        from sat_mir.features.rhythm import metrical_of

        return int(metrical_of(ctx, tightness=self.config.tightness).downbeats.size)

    def _one(self, ctx: TrackContext, model) -> ExtractorResult:
        result = ExtractorResult()
        tempo = None
        for stem, keys in KEYS.items():
            if stem not in ctx.stem_names:
                why = f"track has no {stem} stem (stems: {', '.join(ctx.stem_names) or 'none'})"
                result.absent.update({k: why for k in keys})
                continue
            notes = self._notes(ctx, stem, model)
            tempo = tempo if tempo is not None else grid_tempo(ctx, tightness=self.config.tightness)
            result.artifacts[f"{stem}.mid"] = notes_midi_bytes(notes, tempo_bpm=tempo,
                                                               ticks_per_beat=self.config.ticks_per_beat,
                                                               program=PROGRAMS[stem], name=stem)
            result.values[f"{stem}_note_count"] = len(notes)
            if stem == "bass":
                bars = self._bars(ctx)
                if bars >= 2:
                    result.values["bass_notes_per_bar"] = round(len(notes) / bars, 4)
                else:
                    result.absent["bass_notes_per_bar"] = f"the mix has {bars} downbeat(s): no bars to count in"
                if notes:
                    lo, hi = np.percentile([n.pitch for n in notes], [5, 95], method="inverted_cdf")
                    result.values["bass_pitch_range"] = int(hi - lo)
                else:
                    result.absent["bass_pitch_range"] = "no notes in the bass stem"
            else:
                poly = polyphony_mean(notes)
                if poly is None:
                    result.absent["polyphony_mean"] = "no notes in the other stem"
                else:
                    result.values["polyphony_mean"] = round(poly, 4)
        return result
