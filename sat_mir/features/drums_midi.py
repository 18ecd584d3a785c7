"""Drum transcription of the drum stem into a General MIDI file (ADTOF Frame_RNN).

The drum stem (44.1 kHz mono) goes through :mod:`sat_mir.models.adtof`: frame activations
of five classes, madmom-style peak picking with ADTOF's per-class thresholds, then one
note per onset on MIDI channel 10 (GM kick 35, snare 38, tom 47, closed hi-hat 42,
crash 49).  The file's tempo is the mix's beat grid: the ``bpm`` the ``rhythm`` extractor
measured when it ran on this item (the model phase sees it), else the same beat grid's tempo
computed here by the same rule (``metrical.tempo_from_beats``), so a DAW shows bars that follow
the song; notes sit at their exact times through that tempo, whatever it is.  Values: onsets per class and per
minute of the stem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ConfigError, ExtractorError
from sat_mir.extras import require
from sat_mir.features.registry import ExtractorResult, ModelExtractor, OutputSpec, register
from sat_mir.features.midi_file import DEFAULT_BPM, MidiNote, grid_tempo, notes_midi_bytes
from sat_mir.models import adtof
from sat_mir.models.spec import locate

__all__ = ["DrumHit", "DrumsMidi", "drum_midi_bytes"]

DRUM_CHANNEL = 9  # MIDI channel 10, General MIDI percussion
ARTIFACT = "drums.mid"


class DrumHit(NamedTuple):
    time_s: float
    note: int  # General MIDI percussion key
    velocity: int  # 1..127


def drum_midi_bytes(hits: Sequence[DrumHit], *, tempo_bpm: float = DEFAULT_BPM, ticks_per_beat: int = 480,
                    note_s: float = 0.05, name: str = "drums") -> bytes:
    """A type-0 Standard MIDI File holding ``hits`` on channel 10, as bytes
    (:func:`~sat_mir.features.midi_file.notes_midi_bytes`): each hit a note of ``note_s``
    seconds, cut short before the next hit of the same key.

    Raises
    ------
    ValueError
        A tempo, tick resolution or duration out of range, or a hit with a note or
        velocity outside 0..127 / 1..127 or a negative time.
    """
    if not note_s > 0:
        raise ValueError(f"note_s must be > 0, got {note_s!r}")
    for hit in hits:
        if not 0 <= hit.note <= 127 or not 1 <= hit.velocity <= 127 or not hit.time_s >= 0:
            raise ValueError(f"invalid drum hit {hit!r}")
    notes = [MidiNote(h.time_s, h.time_s + note_s, int(h.note), int(h.velocity)) for h in hits]
    return notes_midi_bytes(notes, tempo_bpm=tempo_bpm, ticks_per_beat=ticks_per_beat, channel=DRUM_CHANNEL,
                            name=name)


def _outputs() -> tuple[OutputSpec, ...]:
    counts = tuple(OutputSpec(f"drum_onsets_{c}", "count", f"{c} onsets ADTOF transcribes in the drum stem "
                              f"(GM note {n} in {ARTIFACT})", (0.0, 1e6), kind="int")
                   for c, n in zip(adtof.CLASSES, adtof.GM_NOTES))
    rates = tuple(OutputSpec(f"drum_onsets_per_min_{c}", "1/min", f"{c} onsets per minute of the drum stem",
                             (0.0, 2000.0)) for c in adtof.CLASSES)
    return counts + rates


@register
class DrumsMidi(ModelExtractor):
    name = "drums_midi"
    version = "1"
    signals = ("stems",)
    outputs = _outputs()

    @dataclass(frozen=True)
    class Config:
        models_dir: str | None = None  # None: sat_mir.models.default_models_dir()
        device: str = "auto"
        thresholds: tuple[float, ...] = adtof.THRESHOLDS
        velocity: str = "fixed"  # "fixed" (fixed_velocity) | "activation" (1 + 126 * peak activation)
        fixed_velocity: int = 100
        note_s: float = 0.05
        ticks_per_beat: int = 480
        tightness: float = 100.0  # the mix's beat grid settings (shared with `rhythm`), when run alone
        batch_seconds: float = 1800.0  # audio per forward pass (padded), bounds device memory

        def __post_init__(self):
            object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
            if len(self.thresholds) != len(adtof.CLASSES) or not all(0 < t < 1 for t in self.thresholds):
                raise ConfigError(f"drums_midi.thresholds must be {len(adtof.CLASSES)} values in (0, 1) "
                                  f"for {list(adtof.CLASSES)}, got {list(self.thresholds)}")
            if self.velocity not in ("fixed", "activation"):
                raise ConfigError(f"drums_midi.velocity must be 'fixed' or 'activation', got {self.velocity!r}")
            if not 1 <= self.fixed_velocity <= 127:
                raise ConfigError(f"drums_midi.fixed_velocity must be in 1..127, got {self.fixed_velocity!r}")
            if not self.note_s > 0 or not 0 < self.ticks_per_beat < 2**15 or not self.batch_seconds > 0:
                raise ConfigError("drums_midi: note_s and batch_seconds must be > 0 and ticks_per_beat in "
                                  f"1..32767, got {self.note_s!r}, {self.batch_seconds!r}, {self.ticks_per_beat!r}")

    @property
    def reads_features(self) -> list[str]:
        return ["bpm"]

    def preflight(self) -> None:
        locate(adtof.SPEC, self.config.models_dir)
        require("models", "extractor drums_midi", ("torch", "mido"))
        adtof.resolve_device(self.config.device)


    def compute_batch(self, ctxs: list[TrackContext]) -> list[ExtractorResult | Exception]:
        out: list[ExtractorResult | Exception | None] = [None] * len(ctxs)
        todo: list[tuple[int, np.ndarray]] = []
        for i, ctx in enumerate(ctxs):
            try:
                if "drums" not in ctx.stem_names:
                    why = f"track has no drums stem (stems: {', '.join(ctx.stem_names) or 'none'})"
                    out[i] = ExtractorResult(absent={s.key: why for s in self.outputs})
                    continue
                mono = ctx.stem("drums").mono_at(adtof.SAMPLE_RATE)
                if mono.size == 0:
                    raise ExtractorError("the drums stem is empty")
                if not np.all(np.isfinite(mono)):
                    raise ExtractorError("the drums stem contains NaN or infinity")
                todo.append((i, mono))
            except Exception as exc:  # noqa: BLE001 - returned to the runner, which records it
                out[i] = exc
        if todo:
            try:
                model = adtof.load_transcriber(self.config.models_dir, self.config.device)
            except Exception as exc:  # noqa: BLE001 - every item shares the one load failure
                for i, _ in todo:
                    out[i] = exc
                todo = []
        for group in self._groups(todo):
            try:
                acts = model.activations([mono for _, mono in group])
            except Exception as exc:  # noqa: BLE001
                for i, _ in group:
                    out[i] = exc
                continue
            for (i, mono), act in zip(group, acts):
                try:
                    out[i] = self._result(ctxs[i], act, mono.size / adtof.SAMPLE_RATE)
                except Exception as exc:  # noqa: BLE001
                    out[i] = exc
        return out  # type: ignore[return-value]

    def _groups(self, todo: list[tuple[int, np.ndarray]]) -> list[list[tuple[int, np.ndarray]]]:
        """Consecutive items whose padded batch stays within ``batch_seconds`` of audio."""
        budget = self.config.batch_seconds * adtof.SAMPLE_RATE
        groups: list[list[tuple[int, np.ndarray]]] = []
        longest = 0
        for item in todo:
            n = item[1].size
            if groups and max(longest, n) * (len(groups[-1]) + 1) <= budget:
                groups[-1].append(item)
                longest = max(longest, n)
            else:
                groups.append([item])
                longest = n
        return groups

    def _result(self, ctx: TrackContext, act: np.ndarray, duration_s: float) -> ExtractorResult:
        c = self.config
        picked = adtof.pick_onsets(act, thresholds=c.thresholds, **adtof.PEAK_PICKING)
        hits = []
        for note, (frames, peaks) in zip(adtof.GM_NOTES, picked):
            for f, p in zip(frames, peaks):
                vel = c.fixed_velocity if c.velocity == "fixed" else int(np.clip(round(1 + 126 * p), 1, 127))
                hits.append(DrumHit(float(f) / adtof.FPS, note, vel))
        tempo = grid_tempo(ctx, tightness=c.tightness)
        result = ExtractorResult()
        result.artifacts[ARTIFACT] = drum_midi_bytes(hits, tempo_bpm=tempo, ticks_per_beat=c.ticks_per_beat,
                                                     note_s=c.note_s)
        minutes = duration_s / 60.0
        for cls, (frames, _) in zip(adtof.CLASSES, picked):
            result.values[f"drum_onsets_{cls}"] = int(frames.size)
            result.values[f"drum_onsets_per_min_{cls}"] = round(frames.size / minutes, 4)
        return result
