"""Standard MIDI Files of transcribed notes (drums.mid, bass.mid, other.mid), and their tempo.

Every transcription sat-mir writes is one type-0 file whose single ``set_tempo`` is the mix's
beat grid, so a DAW shows bars that follow the song; each note sits at its exact time through
that tempo, whatever it is.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["DEFAULT_BPM", "MidiNote", "grid_tempo", "notes_midi_bytes"]

DEFAULT_BPM = 120.0  # MIDI's own default tempo, for a track with no usable beat grid


class MidiNote(NamedTuple):
    start_s: float
    end_s: float
    pitch: int  # MIDI note number 0..127
    velocity: int  # 1..127


def notes_midi_bytes(notes: Sequence[MidiNote], *, tempo_bpm: float = DEFAULT_BPM, ticks_per_beat: int = 480,
                     channel: int = 0, program: int | None = None, name: str = "") -> bytes:
    """A type-0 Standard MIDI File holding ``notes`` on ``channel`` (0-based), as bytes.

    One ``set_tempo`` (``tempo_bpm``, rounded to whole microseconds per beat) at tick 0, then
    ``program_change`` when ``program`` is given; each note is placed at the ticks nearest its
    start and end through that tempo (error at most half a tick: 0.52 ms at 120 BPM and 480
    ticks), at least one tick long.  Notes of one pitch never overlap (MIDI cannot say which
    one a note-off ends): a note is cut where the next one of its pitch starts, and of two
    starting on one tick the later-listed one is kept.

    Raises
    ------
    ValueError
        A tempo, tick resolution, channel or program out of range, or a note with a pitch or
        velocity outside 0..127 / 1..127, a negative start or an end before its start.
    """
    import mido

    if not 0 < ticks_per_beat < 2**15:
        raise ValueError(f"ticks_per_beat must be in 1..32767, got {ticks_per_beat!r}")
    if not 3.6 <= tempo_bpm <= 60e6:  # MIDI stores 1..2^24-1 microseconds per beat
        raise ValueError(f"tempo_bpm must be in [3.6, 6e7], got {tempo_bpm!r}")
    if not 0 <= channel <= 15 or (program is not None and not 0 <= program <= 127):
        raise ValueError(f"channel must be in 0..15 and program in 0..127, got {channel!r}, {program!r}")
    tempo = round(mido.bpm2tempo(tempo_bpm))
    ticks_per_s = ticks_per_beat * 1e6 / tempo
    by_pitch: dict[int, list[MidiNote]] = {}
    for note in notes:
        if (not 0 <= note.pitch <= 127 or not 1 <= note.velocity <= 127 or not note.start_s >= 0
                or not note.end_s >= note.start_s):
            raise ValueError(f"invalid note {note!r}")
        by_pitch.setdefault(int(note.pitch), []).append(note)
    events: list[tuple[int, int, mido.Message]] = []
    for pitch, group in by_pitch.items():
        starts = sorted({round(n.start_s * ticks_per_s): n for n in group}.items())
        for k, (tick, note) in enumerate(starts):
            end = max(tick + 1, round(note.end_s * ticks_per_s))
            if k + 1 < len(starts):
                end = min(end, starts[k + 1][0])  # ticks are unique, so still > tick
            # at one tick, offs sort before ons so a note ending where the next begins stays closed
            events.append((tick, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=int(note.velocity))))
            events.append((end, 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1], e[2].note))
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0),
                            mido.MetaMessage("set_tempo", tempo=tempo, time=0)])
    if program is not None:
        track.append(mido.Message("program_change", channel=channel, program=program, time=0))
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    buf = io.BytesIO()
    mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat, tracks=[track]).save(file=buf)
    return buf.getvalue()


def grid_tempo(ctx, *, tightness: float) -> float:
    """The tempo a transcription's file gets: the ``bpm`` the ``rhythm`` extractor measured on
    this item (no second beat tracking of the mix), else the same beat grid's tempo computed
    by the same rule, else :data:`DEFAULT_BPM` when the mix has no usable grid."""
    from sat_mir.features.metrical import tempo_from_beats
    from sat_mir.features.rhythm import metrical_of

    measured = ctx.features.get("bpm")
    if isinstance(measured, (int, float)) and 3.6 <= measured <= 1000.0:
        return float(measured)
    beats = metrical_of(ctx, tightness=tightness).beats
    return tempo_from_beats(beats) if len(beats) >= 2 else DEFAULT_BPM
