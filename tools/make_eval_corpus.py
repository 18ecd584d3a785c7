"""Render an evaluation corpus of General-MIDI songs whose beats, downbeats, meter, tempo, key and
chords are known exactly: the audio sat-mir's musical facts are measured on (never the demo).

    .venv/bin/python tools/make_eval_corpus.py OUT_DIR [--songs 200] [--seconds 32] [--seed 0] [--jobs 2] [--styles rock,waltz]
        [--soundfont FILE] [--drift LO,HI | --step LO,HI] [--flat-kick P]

Needs Debian's ``fluidsynth`` and ``fluid-soundfont-gm`` (``apt-get install fluidsynth
fluid-soundfont-gm``).  ``--soundfont`` renders the same songs with another General MIDI
soundfont (e.g. MuseScore's, ``apt-get install musescore-general-soundfont-lossless``, or
TimGM6mb, ``apt-get install timgm6mb-soundfont``): the same notes and truth in other
instruments' timbres, to check that nothing measured here was fitted to FluidR3's sounds.

Every song is drawn from a seed: a style (rock, pop, four-on-the-floor, half-time, breakbeat,
bossa, shuffle, swing, brushed ballad, waltz, march, 6/8, 12/8 blues, 5/4, 7/4, and piano,
pads and strings with no drums), a tempo (log-uniform within the style's range, 50-200 BPM
overall), a groove (straight, swung, shuffled), a key (all 24), a progression with
borrowed chords, harmonic-minor dominants, inversions, sevenths and suspensions, a harmonic
rhythm, GM programs per part, fills, crashes, a pickup, an intro without drums, slight timing
and velocity humanisation, reverb sends, and on some songs a drifting tempo.  Two probes of
tempi that move (``--drift``, ``--step``): every song drifts steadily by a drawn fraction, or
steps from one tempo to another at the bar line nearest its middle.

Written, per song ``<id>``::

    OUT_DIR/library/<id>/full_mix.flac, drums.flac, bass.flac, other.flac   (mix = sum of stems)
    OUT_DIR/midi/<id>/song.mid, drums.mid, bass.mid, other.mid
    OUT_DIR/truth/<id>.json

The truth follows pretty_midi's reading of the song's MIDI (the usual convention for
synthesised ground truth): ``beats`` are ``get_beats()`` (every denominator note; every third
one in compound meters 6/8, 9/8, 12/8, so a 6/8 bar has 2 beats), ``downbeats`` are
``get_downbeats()``, ``beats_per_bar`` is the time signature's numerator (6 for 6/8, 12 for
12/8), ``bpm`` is 60 / median inter-beat interval of ``beats``; beats before the first note and
after the last are dropped.  ``chords`` are ``[start s, end s, Harte label]`` (``A:min7``,
``C:maj/3``), ``key`` is ``"<tonic> major|minor"``.  A song with no drums has none in its
library folder (drums.flac is absent).  Renders are bit-identical run to run.

Size: about 850 lines of a research tool, not of the package: a song's styles, grooves,
progressions and renders are drawn from one seed in one place, so the truth written beside
each song cannot drift from how it was rendered.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
PPQ = 480
SR = 44100
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLAT_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")

# chord qualities: intervals above the root, and Harte shorthand
QUALITIES = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6), "sus4": (0, 5, 7), "sus2": (0, 2, 7), "hdim7": (0, 3, 6, 10),
}
# Harte names of a bass interval above the root, for inversions
INVERSION_NAME = {3: "b3", 4: "3", 6: "b5", 7: "5", 10: "b7", 11: "7"}

# Scale degrees (semitones above the tonic, quality) per mode; borrowed chords included.
DEGREES = {
    "major": {"I": (0, "maj"), "ii": (2, "min"), "iii": (4, "min"), "IV": (5, "maj"), "V": (7, "maj"),
              "vi": (9, "min"), "vii": (11, "dim"), "bVII": (10, "maj"), "iv": (5, "min"), "bVI": (8, "maj"),
              "II": (2, "maj"), "III": (4, "maj")},
    "minor": {"i": (0, "min"), "ii": (2, "dim"), "III": (3, "maj"), "iv": (5, "min"), "v": (7, "min"),
              "V": (7, "maj"), "VI": (8, "maj"), "VII": (10, "maj"), "IV": (5, "maj"), "bII": (1, "maj")},
}
PROGRESSIONS = {
    "major": [["I", "V", "vi", "IV"], ["I", "IV", "V", "I"], ["I", "vi", "IV", "V"], ["I", "V", "vi", "iii", "IV", "I", "IV", "V"],
              ["I", "IV", "I", "V"], ["I", "vi", "ii", "V"], ["I", "iii", "IV", "V"], ["I", "bVII", "IV", "I"],
              ["I", "IV", "iv", "I"], ["I", "ii", "V", "I"], ["I", "V", "IV", "V"], ["I", "II", "IV", "I"],
              ["I", "bVI", "bVII", "I"], ["I", "IV", "vi", "V"], ["I", "iii", "vi", "IV", "ii", "V", "I", "I"]],
    "minor": [["i", "VI", "III", "VII"], ["i", "iv", "V", "i"], ["i", "VII", "VI", "V"], ["i", "iv", "VII", "III"],
              ["i", "VI", "iv", "V"], ["i", "i", "iv", "V"], ["i", "VII", "VI", "VII"], ["i", "iv", "v", "i"],
              ["i", "III", "VII", "iv"], ["i", "ii", "V", "i"], ["i", "VI", "VII", "i"], ["i", "IV", "i", "V"],
              ["i", "bII", "V", "i"], ["i", "iv", "i", "V", "VI", "iv", "V", "i"]],
}

# GM programs (0-based) per role
BASS_PROGRAMS = [32, 33, 34, 35, 36, 37, 38, 39, 43]
KEYS_PROGRAMS = [0, 1, 2, 4, 5, 6, 7, 11, 16, 17, 18, 19, 24, 25, 26, 27, 28, 29, 30]
PAD_PROGRAMS = [48, 49, 50, 51, 52, 88, 89, 90, 91, 92, 93, 94, 95, 61, 19]
LEAD_PROGRAMS = [40, 41, 56, 57, 60, 64, 65, 66, 68, 71, 73, 74, 80, 81, 22, 11, 13, 8, 9, 105, 104]
# GM drum notes
KICK, SIDE, SNARE, CLAP, SNARE2, HH, PEDAL, OPEN, CRASH, RIDE, BELL, TAMB, COWBELL, SHAKER, CLAVE = (
    36, 37, 38, 39, 40, 42, 44, 46, 49, 51, 53, 54, 56, 70, 75)
TOMS = (50, 48, 47, 45, 43, 41)
# drum kits (bank 128 programs in FluidR3 GM)
KITS = {"standard": 0, "room": 8, "power": 16, "electronic": 24, "tr808": 25, "jazz": 32, "brush": 40}


@dataclass(frozen=True)
class Style:
    meters: tuple[tuple[int, int], ...]  # (numerator, denominator)
    bpm: tuple[float, float]  # range of the beat tempo (the pulse of a compound meter)
    grooves: tuple[str, ...]  # straight | swing | shuffle
    drums: str | None  # drum pattern name, None = no drums
    bass: str
    comp: str
    kits: tuple[str, ...] = ("standard", "room", "power")
    weight: float = 1.0


STYLES: dict[str, Style] = {
    "rock": Style(((4, 4),), (76, 168), ("straight",), "rock", "eighths", "strum", weight=2.0),
    "pop": Style(((4, 4),), (68, 128), ("straight", "swing"), "pop", "pop", "piano", ("standard", "room", "electronic"), 2.0),
    "four_floor": Style(((4, 4),), (110, 138), ("straight",), "four_floor", "offbeat", "stabs", ("electronic", "tr808", "standard"), 1.5),
    "half_time": Style(((4, 4),), (130, 178), ("straight",), "half_time", "long", "pad", ("electronic", "standard", "tr808")),
    "breakbeat": Style(((4, 4),), (84, 140), ("straight",), "breakbeat", "pop", "stabs", ("standard", "room", "electronic")),
    "bossa": Style(((4, 4), (2, 4)), (100, 150), ("straight",), "bossa", "bossa", "piano", ("jazz", "standard", "brush"), 0.8),
    "shuffle": Style(((4, 4),), (84, 140), ("shuffle",), "shuffle", "boogie", "strum"),
    "swing": Style(((4, 4),), (100, 200), ("swing",), "swing", "walking", "comp", ("jazz", "brush", "standard")),
    "ballad": Style(((4, 4),), (52, 84), ("straight", "swing"), "brushes", "roots", "arpeggio", ("brush", "jazz")),
    "waltz": Style(((3, 4),), (84, 180), ("straight", "swing"), "waltz", "oompah", "waltz", ("standard", "jazz", "brush"), 1.2),
    "march": Style(((2, 4),), (96, 136), ("straight",), "march", "oompah", "march", ("standard", "room"), 0.8),
    "six_eight": Style(((6, 8),), (50, 100), ("straight",), "six_eight", "compound", "arpeggio", ("standard", "room", "jazz"), 1.2),
    "twelve_eight": Style(((12, 8),), (48, 76), ("straight",), "twelve_eight", "compound", "strum", ("standard", "room", "jazz"), 1.0),
    "five_four": Style(((5, 4),), (110, 180), ("straight", "swing"), "five", "roots", "comp", ("jazz", "standard", "room"), 0.8),
    "seven_four": Style(((7, 4),), (100, 170), ("straight",), "seven", "eighths", "strum", ("standard", "room", "power"), 0.8),
    "piano": Style(((4, 4), (3, 4), (6, 8)), (60, 150), ("straight", "swing"), None, "left_hand", "arpeggio", weight=1.2),
    "pads": Style(((4, 4), (3, 4)), (60, 130), ("straight",), None, "pulse", "pad_arp", weight=0.8),
    "strings": Style(((4, 4), (3, 4), (6, 8)), (56, 120), ("straight",), None, "ostinato", "pad", weight=0.8),
}


PUSH_STYLES = ("rock", "pop", "four_floor", "bossa", "ballad", "pads", "breakbeat", "half_time")


@dataclass
class Note:
    q: float  # start, in quarter notes from the song start (before swing and humanisation)
    dur: float  # quarter notes
    pitch: int
    vel: int
    part: str  # drums | bass | keys | lead


@dataclass
class Song:
    id: str
    seed: int
    style: str
    numerator: int
    denominator: int
    bpm: float  # pulse tempo
    groove: str
    swing: float  # position of the swung off-beat within its pair (0.5 = straight)
    tonic: int
    mode: str
    bars: int
    pickup_beats: int
    intro_bars: int
    has_drums: bool
    kit: str
    programs: dict = field(default_factory=dict)
    drift: float = 0.0  # tempo drift over the song (fraction), 0 = steady
    step: float = 1.0  # the tempo from the bar line nearest the middle, as a multiple of the first
    jitter_ms: float = 0.0
    push: float = 0.0  # chords on a bar line come this many quarter notes early (anticipation)
    flat_kick: bool = False  # every kick of a bar at one velocity (--flat-kick)

    @property
    def compound(self) -> bool:
        return self.numerator % 3 == 0 and self.numerator > 3

    @property
    def beat_q(self) -> float:  # one notated beat (denominator note) in quarter notes
        return 4.0 / self.denominator

    @property
    def pulse_q(self) -> float:  # the felt beat
        return self.beat_q * (3 if self.compound else 1)

    @property
    def bar_q(self) -> float:
        return self.numerator * self.beat_q

    @property
    def quarter_bpm(self) -> float:
        return self.bpm * self.pulse_q


def draw_song(index: int, seed: int, seconds: float, style: str | None = None) -> Song:
    rng = np.random.default_rng([seed, index])
    names = list(STYLES)
    weights = np.array([STYLES[n].weight for n in names])
    name = names[rng.choice(len(names), p=weights / weights.sum())]
    if style is not None:  # asked for: the draw above still happens, so the other choices stay put
        name = style
    style = STYLES[name]
    num, den = style.meters[rng.integers(len(style.meters))]
    compound = num % 3 == 0 and num > 3
    lo, hi = style.bpm
    if compound and style.drums is None:  # a 6/8 pulse (dotted quarter) of the drumless styles
        lo, hi = 48.0, 96.0
    bpm = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
    groove = style.grooves[rng.integers(len(style.grooves))]
    if compound:
        groove = "straight"  # the ternary subdivision is the meter itself
    swing = {"straight": 0.5, "swing": float(rng.uniform(0.58, 0.67)), "shuffle": 2.0 / 3.0}[groove]
    pulse_s = 60.0 / bpm
    pulses_per_bar = num // 3 if compound else num
    bars = max(4, int(round(seconds / (pulse_s * pulses_per_bar))))
    has_drums = style.drums is not None
    song = Song(
        id=f"s{index:03d}-{name.replace('_', '')}",
        seed=seed, style=name, numerator=num, denominator=den, bpm=round(bpm, 3), groove=groove, swing=swing,
        tonic=int(rng.integers(12)), mode=("major", "minor")[int(rng.integers(2))], bars=bars,
        pickup_beats=int(rng.choice([0, 0, 0, 1, 2])) if num >= 3 else 0,
        intro_bars=int(rng.choice([0, 0, 0, 1, 2])) if has_drums else 0,
        has_drums=has_drums, kit=style.kits[rng.integers(len(style.kits))],
        drift=float(rng.choice([0.0] * 5 + [rng.uniform(-0.06, 0.06)])),
        jitter_ms=float(rng.choice([0.0, 4.0, 8.0])),
    )
    if not compound and name in PUSH_STYLES and rng.random() < 0.3:
        song.push = 0.5  # an eighth early: pop's anticipated chord changes
    song.programs = {
        "bass": int(rng.choice(BASS_PROGRAMS)) if name not in ("strings", "piano") else (
            int(rng.choice([42, 45, 48])) if name == "strings" else 0),
        "keys": int(rng.choice(KEYS_PROGRAMS)) if name not in ("pads", "strings", "piano") else (
            {"pads": int(rng.choice(PAD_PROGRAMS[5:])), "strings": int(rng.choice([48, 49, 50])),
             "piano": int(rng.choice([0, 1, 2, 4, 5]))}[name]),
        "lead": int(rng.choice(LEAD_PROGRAMS)) if rng.random() < 0.7 else (
            int(rng.choice([46, 81, 98, 108, 11])) if style.comp == "pad_arp" else -1),  # the arpeggio's voice
        "pad": int(rng.choice(PAD_PROGRAMS)) if rng.random() < 0.35 or style.comp == "pad" else -1,
    }
    return song


# --------------------------------------------------------------------------------------------
# harmony


@dataclass
class Chord:
    q: float
    dur: float
    root: int  # pitch class
    quality: str
    bass: int  # pitch class of the lowest note

    def label(self) -> str:
        name = f"{PITCH_CLASSES[self.root]}:{self.quality}"
        if self.bass != self.root:
            name += "/" + INVERSION_NAME[(self.bass - self.root) % 12]
        return name

    def pitch_classes(self) -> list[int]:
        return [(self.root + i) % 12 for i in QUALITIES[self.quality]]


def draw_harmony(song: Song, rng: np.random.Generator) -> list[Chord]:
    prog = PROGRESSIONS[song.mode][rng.integers(len(PROGRESSIONS[song.mode]))]
    # chords per bar: two (on beats 1 and 3 of 4/4), one, or one every two bars
    if song.numerator == 4 and song.denominator == 4:
        per_bar = float(rng.choice([1.0, 1.0, 1.0, 2.0, 0.5]))
    elif song.numerator in (2,):
        per_bar = float(rng.choice([1.0, 0.5]))
    else:
        per_bar = float(rng.choice([1.0, 1.0, 0.5]))
    dur = song.bar_q / per_bar
    sevenths = rng.random() < 0.5
    start = song.pickup_beats and song.bar_q  # a pickup bar comes first
    chords: list[Chord] = []
    q, i = float(start), 0
    end_q = start + song.bars * song.bar_q
    while q < end_q - 1e-6:
        degree = prog[i % len(prog)]
        offset, quality = DEGREES[song.mode][degree]
        root = (song.tonic + offset) % 12
        if sevenths and rng.random() < 0.6:
            if quality == "maj":
                quality = "7" if degree in ("V", "II", "III") else "maj7"
            elif quality == "min":
                quality = "min7"
            elif quality == "dim" and rng.random() < 0.5:
                quality = "hdim7"
        this = min(dur, end_q - q)
        if degree == "V" and quality in ("maj", "7") and this >= 2 * song.pulse_q and rng.random() < 0.25:
            # a suspension resolving onto the dominant
            half = round(this / 2 / song.pulse_q) * song.pulse_q
            chords.append(Chord(q, half, root, "sus4", root))
            chords.append(Chord(q + half, this - half, root, quality, root))
        else:
            bass = root
            if rng.random() < 0.15 and quality in ("maj", "min", "7", "maj7", "min7"):
                bass = (root + QUALITIES[quality][int(rng.integers(1, 3))]) % 12  # first or second inversion
            chords.append(Chord(q, this, root, quality, bass))
        q += this
        i += 1
    return chords


def voicing(chord: Chord, low: int = 52) -> list[int]:
    """Close position above ``low`` (MIDI note), root position on top of the bass."""
    notes = []
    for pc in chord.pitch_classes():
        n = low + (pc - low) % 12
        notes.append(n)
    return sorted(notes)


def bass_note(pc: int, low: int = 36) -> int:
    return low + (pc - low) % 12


def scale_of(song: Song) -> list[int]:
    steps = (0, 2, 4, 5, 7, 9, 11) if song.mode == "major" else (0, 2, 3, 5, 7, 8, 10)
    return [(song.tonic + s) % 12 for s in steps]


# --------------------------------------------------------------------------------------------
# parts: each returns notes for one bar starting at quarter position q0


def drum_bar(song: Song, bar: int, q0: float, rng: np.random.Generator, *, fill: bool, crash: bool) -> list[Note]:
    p = STYLES[song.style].drums
    b = song.beat_q
    n = song.numerator
    hits: list[tuple[float, int, int, int]] = []  # (position in quarter notes from bar start, note, velocity, jitter)

    def add(pos, note, vel):
        hits.append((pos, note, vel, int(rng.integers(-8, 9))))

    if p in ("rock", "pop", "breakbeat", "half_time", "shuffle"):
        sub = 0.25 if p in ("pop", "breakbeat") and song.groove == "straight" and rng.random() < 0.5 else 0.5
        hat = RIDE if p == "rock" and bar % 8 >= 4 and rng.random() < 0.5 else HH
        for k in np.arange(0, 4, sub):
            add(k, hat, 90 if k % 1 == 0 else 65)
        if p == "rock":
            for k in (0, 2) + ((2.5,) if rng.random() < 0.4 else ()):
                add(k, KICK, 115 if k == 0 else 100)
            add(1, SNARE, 112)
            add(3, SNARE, 112)
        elif p == "pop":
            for k in (0, 1.5, 2.5) if rng.random() < 0.5 else (0, 2, 2.75):
                add(k, KICK, 110 if k == 0 else 95)
            add(1, SNARE if song.kit != "electronic" else CLAP, 108)
            add(3, SNARE if song.kit != "electronic" else CLAP, 108)
        elif p == "breakbeat":
            for k in (0, 0.5, 2.5):
                add(k, KICK, 112 if k == 0 else 95)
            for k, v in ((1, 112), (1.75, 55), (2.25, 50), (3, 112), (3.5, 60)):
                add(k, SNARE, v)
        elif p == "half_time":
            for k in (0, 1.5) if rng.random() < 0.5 else (0, 2.5):
                add(k, KICK, 115 if k == 0 else 95)
            add(2, SNARE, 118)
        elif p == "shuffle":
            for k in (0, 2):
                add(k, KICK, 110 if k == 0 else 100)
            add(1, SNARE, 110)
            add(3, SNARE, 110)
    elif p == "four_floor":
        for k in range(4):
            add(k, KICK, 118)
            add(k + 0.5, OPEN if rng.random() < 0.8 else HH, 80)
        add(1, CLAP, 100)
        add(3, CLAP, 100)
        if rng.random() < 0.5:
            for k in np.arange(0, 4, 0.25):
                add(k, SHAKER, 50)
    elif p == "bossa":
        for k in (0, 1.5, 2, 3.5):
            add(k % (n * b), KICK, 95 if k in (0, 2) else 80)
        for k in np.arange(0, n * b, 0.5):
            add(k, HH, 60)
        clave = (0, 1.5, 3) if bar % 2 == 0 else (1, 2.5)
        for k in clave:
            if k < n * b:
                add(k, SIDE, 90)
    elif p == "swing":
        for k in (0, 1, 1.5, 2, 3, 3.5):
            add(k, RIDE, 95 if k % 1 == 0 else 70)
        add(1, PEDAL, 80)
        add(3, PEDAL, 80)
        for k in range(4):
            add(k, KICK, 45)
        if rng.random() < 0.3:
            add(3.5, SNARE, 55)
    elif p == "brushes":
        for k in range(4):
            add(k, SNARE, 55 if k % 2 == 0 else 80)
            add(k + 0.5, SNARE, 40)
        add(0, KICK, 75)
        add(2, KICK, 60)
        add(1, PEDAL, 60)
        add(3, PEDAL, 60)
    elif p == "waltz":
        add(0, KICK, 112)
        add(1, SNARE if rng.random() < 0.5 else HH, 85)
        add(2, SNARE if rng.random() < 0.5 else HH, 85)
        for k in np.arange(0, 3, 0.5):
            add(k, HH, 70 if k % 1 == 0 else 50)
    elif p == "march":
        add(0, KICK, 115)
        add(1, SNARE, 100)
        add(1.5, SNARE, 70)
        add(1.75, SNARE, 70)
        for k in np.arange(0, 2, 0.5):
            add(k, HH, 60)
    elif p == "six_eight":  # eighth notes are beats: b = 0.5
        for k in range(6):
            add(k * b, HH, 85 if k in (0, 3) else 60)
        add(0, KICK, 115)
        add(3 * b, SNARE, 105)
        if rng.random() < 0.5:
            add(5 * b, KICK, 85)
    elif p == "twelve_eight":
        for k in range(12):
            add(k * b, RIDE if song.kit == "jazz" else HH, 85 if k % 3 == 0 else 60)
        add(0, KICK, 115)
        add(6 * b, KICK, 100)
        add(3 * b, SNARE, 110)
        add(9 * b, SNARE, 110)
        if rng.random() < 0.5:
            add(5 * b, KICK, 80)
    elif p == "five":  # 3 + 2
        for k in np.arange(0, 5, 0.5):
            add(k, RIDE if song.kit == "jazz" else HH, 85 if k % 1 == 0 else 60)
        add(0, KICK, 112)
        add(3, KICK, 100)
        add(2, SNARE, 105)
        add(4, SNARE, 105)
    elif p == "seven":  # 4 + 3
        for k in np.arange(0, 7, 0.5):
            add(k, HH, 85 if k % 1 == 0 else 60)
        for k in (0, 2, 4):
            add(k, KICK, 112 if k == 0 else 98)
        add(1, SNARE, 108)
        add(3, SNARE, 108)
        add(5.5, SNARE, 100)
    bar_len = song.bar_q
    if fill:
        pulse = song.pulse_q
        start = bar_len - pulse * (2 if song.numerator >= 4 and not song.compound else 1)
        hits = [h for h in hits if h[0] < start or h[1] in (KICK,)]
        step = pulse / (3 if song.compound or song.groove != "straight" else 4)
        toms = list(TOMS)
        for j, k in enumerate(np.arange(start, bar_len - 1e-6, step)):
            add(k, toms[min(j * len(toms) // max(1, int((bar_len - start) / step)), len(toms) - 1)]
                if rng.random() < 0.7 else SNARE, 100)
    if crash:
        add(0, CRASH, 110)
        if not any(h[0] == 0 and h[1] == KICK for h in hits):
            add(0, KICK, 110)
    if song.flat_kick:  # a drum machine's kick: every one in the bar alike, the first no louder
        kicks = [vel for _, note, vel, _ in hits if note == KICK]
        flat = int(round(float(np.mean(kicks)))) if kicks else 0
        hits = [(pos, note, flat if note == KICK else vel, jit) for pos, note, vel, jit in hits]
    # metrical accent: beat 1 strongest (not on a flat kick)
    return [Note(q0 + pos, 0.25, note, int(np.clip(vel + jit, 20, 127))
                 + (6 if pos == 0 and not (song.flat_kick and note == KICK) else 0), "drums")
            for pos, note, vel, jit in hits if pos < bar_len - 1e-6]


def bass_bar(song: Song, chords_in_bar: list[Chord], q0: float, rng: np.random.Generator) -> list[Note]:
    kind = STYLES[song.style].bass
    out: list[Note] = []
    b = song.beat_q
    for ch in chords_in_bar:
        root = bass_note(ch.bass)
        fifth = bass_note((ch.root + 7) % 12)
        s, d = ch.q, ch.dur
        if kind == "eighths":
            for k in np.arange(0, d, 0.5):
                out.append(Note(s + k, 0.45, root, 100 if k == 0 else 82, "bass"))
        elif kind == "pop":
            for k in (0, 1.5, 2, 3) if d >= 4 else (0, 1):
                if k < d:
                    out.append(Note(s + k, 0.9 if k != 1.5 else 0.45, root if k != 3 else fifth, 100, "bass"))
        elif kind == "offbeat":
            for k in np.arange(0.5, d, 1.0):
                out.append(Note(s + k, 0.4, root, 100, "bass"))
            out.append(Note(s, 0.3, root, 90, "bass"))
        elif kind == "long":
            out.append(Note(s, d * 0.95, root, 105, "bass"))
        elif kind == "bossa":
            for k, n in ((0, root), (1.5, fifth), (2, fifth), (3.5, root)):
                if k < d:
                    out.append(Note(s + k, 0.45 if k % 1 else 1.4, n, 95, "bass"))
        elif kind == "boogie":
            third = bass_note((ch.root + QUALITIES[ch.quality][1]) % 12)
            six = bass_note((ch.root + 9) % 12)
            line = [root, third, fifth, six, bass_note((ch.root + 10) % 12), six, fifth, third]
            for j, k in enumerate(np.arange(0, d, 0.5)):
                out.append(Note(s + k, 0.4, line[j % len(line)], 100 if k % 1 == 0 else 80, "bass"))
        elif kind == "walking":
            tones = [root, bass_note((ch.root + QUALITIES[ch.quality][1]) % 12), fifth,
                     bass_note((ch.root + 2) % 12)]
            for j, k in enumerate(np.arange(0, d, 1.0)):
                out.append(Note(s + k, 0.9, tones[j % 4] if j else root, 100 if j == 0 else 85, "bass"))
        elif kind == "roots":
            out.append(Note(s, min(d, 2.0) * 0.95, root, 100, "bass"))
            if d >= 3:
                out.append(Note(s + (3 * b if song.numerator == 5 else 2), 0.9, fifth, 85, "bass"))
        elif kind == "oompah":
            for j, k in enumerate(np.arange(0, d, song.bar_q)):
                out.append(Note(s + k, b * 0.9, root if j % 2 == 0 else fifth, 105, "bass"))
        elif kind == "compound":
            for j, k in enumerate(np.arange(0, d, song.pulse_q)):
                out.append(Note(s + k, song.pulse_q * 0.66, root if j % 2 == 0 else fifth, 100 if j == 0 else 85,
                                "bass"))
                out.append(Note(s + k + 2 * b, b * 0.9, root, 70, "bass"))
        elif kind == "left_hand":  # piano left hand: root then fifth/octave on pulses
            low = root - 12 if root >= 43 else root
            for j, k in enumerate(np.arange(0, d, song.pulse_q)):
                out.append(Note(s + k, song.pulse_q * 0.95, [low, low + 7, low + 12][j % 3], 88 if j == 0 else 70,
                                "bass"))
        elif kind == "pulse":
            for j, k in enumerate(np.arange(0, d, song.pulse_q)):
                out.append(Note(s + k, song.pulse_q * 0.5, root, 95 if j == 0 else 75, "bass"))
        elif kind == "ostinato":
            for j, k in enumerate(np.arange(0, d, song.beat_q / (1 if song.compound else 2))):
                out.append(Note(s + k, 0.3, root if j % 2 == 0 else root + 12, 90 if j == 0 else 72, "bass"))
    return out


def comp_bar(song: Song, chords_in_bar: list[Chord], rng: np.random.Generator, kind: str) -> list[Note]:
    out: list[Note] = []
    for ch in chords_in_bar:
        notes = voicing(ch, low=int(rng.choice([50, 53, 55])))
        s, d = ch.q, ch.dur
        if kind == "strum":
            pattern = (0, 1, 1.5, 2.5, 3) if not song.compound else tuple(np.arange(0, d, song.beat_q))
            for k in pattern:
                if k < d:
                    for j, n in enumerate(notes):
                        out.append(Note(s + k + j * 0.01, 0.45, n, 85 if k == 0 else 70, "keys"))
        elif kind == "piano":
            for k in np.arange(0, d, 1.0):
                for n in notes:
                    out.append(Note(s + k, 0.8, n, 80 if k == 0 else 65, "keys"))
        elif kind == "stabs":
            for k in np.arange(0.5, d, 1.0) if rng.random() < 0.5 else (0, 1.5, 3):
                if k < d:
                    for n in notes:
                        out.append(Note(s + k, 0.3, n, 85, "keys"))
        elif kind in ("pad",):
            for n in notes:
                out.append(Note(s, d * 0.98, n, 75, "keys"))
        elif kind == "comp":  # jazz comping: syncopated chords
            for k in (0, 1.5, 2.5) if d >= 3 else (0,):
                if k < d:
                    for n in notes:
                        out.append(Note(s + k, 0.4, n, 70, "keys"))
        elif kind == "arpeggio":
            step = song.beat_q / (1 if song.compound else 2)
            seq = notes + [notes[0] + 12] + notes[1:][::-1]
            for j, k in enumerate(np.arange(0, d, step)):
                out.append(Note(s + k, step * 1.5, seq[j % len(seq)], 75 if j % 2 == 0 else 62, "keys"))
        elif kind == "waltz":
            for k in np.arange(1, d, 1.0):
                if k % song.bar_q:
                    for n in notes:
                        out.append(Note(s + k, 0.7, n, 72, "keys"))
        elif kind == "march":
            for k in np.arange(0.5, d, 1.0):
                for n in notes:
                    out.append(Note(s + k, 0.3, n, 78, "keys"))
        elif kind == "pad_arp":
            for n in notes:
                out.append(Note(s, d * 0.98, n, 60, "keys"))
            step = song.beat_q / 2
            for j, k in enumerate(np.arange(0, d, step)):
                out.append(Note(s + k, step * 0.8, notes[j % len(notes)] + 12, 80 if j % 2 == 0 else 60, "lead"))
    return out


def melody(song: Song, chords: list[Chord], rng: np.random.Generator, q_start: float) -> list[Note]:
    scale = scale_of(song)
    out: list[Note] = []
    q = q_start
    end = chords[-1].q + chords[-1].dur
    pitch = 67 + (scale[0] - 67) % 12
    rhythms = [0.5, 0.5, 1.0, 1.0, 1.5, 2.0] if not song.compound else [0.5, 1.0, 1.5]
    while q < end - 0.5:
        d = float(rng.choice(rhythms))
        ch = next((c for c in chords if c.q <= q < c.q + c.dur), chords[-1])
        strong = abs(q / song.pulse_q - round(q / song.pulse_q)) < 1e-6
        pool = ch.pitch_classes() if strong else scale
        cands = [n for n in range(pitch - 5, pitch + 6) if n % 12 in pool and 62 <= n <= 86]
        if cands:
            pitch = int(rng.choice(cands))
            if rng.random() < 0.85:
                out.append(Note(q, d * 0.9, pitch, int(rng.integers(70, 100)), "lead"))
        q += d
    return out


def compose(song: Song) -> tuple[list[Note], list[Chord]]:
    rng = np.random.default_rng([song.seed, int(song.id[1:4]), 7])
    chords = draw_harmony(song, rng)
    style = STYLES[song.style]
    start = song.pickup_beats and song.bar_q
    notes: list[Note] = []
    fill_every = int(rng.choice([4, 8]))
    for bar in range(song.bars):
        q0 = start + bar * song.bar_q
        in_bar = [Chord(max(c.q, q0), min(c.q + c.dur, q0 + song.bar_q) - max(c.q, q0), c.root, c.quality, c.bass)
                  for c in chords if c.q < q0 + song.bar_q - 1e-6 and c.q + c.dur > q0 + 1e-6]
        notes += bass_bar(song, in_bar, q0, rng)
        notes += comp_bar(song, in_bar, rng, style.comp)
        if song.has_drums and bar >= song.intro_bars:
            fill = (bar + 1) % fill_every == 0 and bar < song.bars - 1 and rng.random() < 0.8
            crash = bar == song.intro_bars or (bar % fill_every == 0 and rng.random() < 0.7)
            notes += drum_bar(song, bar, q0, rng, fill=fill, crash=crash)
    if song.programs["pad"] >= 0 and style.comp != "pad":
        for c in chords:
            for n in voicing(c, low=60):
                notes.append(Note(c.q, c.dur * 0.98, n, 55, "pad"))
    if song.programs["lead"] >= 0:
        lead_from = start - song.pickup_beats * song.beat_q if song.pickup_beats else start + song.bar_q * int(
            rng.choice([0, 1, 2]))
        notes += melody(song, chords, rng, lead_from)
    elif song.pickup_beats:  # a pickup needs somebody to play it: the bass leads in
        for k in range(song.pickup_beats):
            notes.append(Note(start - (song.pickup_beats - k) * song.beat_q, song.beat_q * 0.9,
                              bass_note(scale_of(song)[(4 + k) % 7]), 85, "bass"))
    if song.push:
        notes, chords = anticipate(song, notes, chords, start)
    return notes, chords


def anticipate(song: Song, notes: list[Note], chords: list[Chord], start: float) -> tuple[list[Note], list[Chord]]:
    """Chord changes on bar lines (after the first bar) played ``song.push`` quarter notes early by the
    harmony parts (bass, keys, pad); the truth's chord segments move with them."""
    bars = {round(start + b * song.bar_q, 6) for b in range(1, song.bars)}
    changes = [c.q for c in chords[1:] if round(c.q, 6) in bars]
    early = {round(q, 6) for q in changes}
    out: list[Note] = []
    for n in notes:
        if n.part in ("bass", "keys", "pad"):
            if round(n.q, 6) in early:
                n = Note(n.q - song.push, n.dur + song.push, n.pitch, n.vel, n.part)
            elif any(q - song.push - 1e-6 <= n.q < q - 1e-6 for q in changes):
                continue  # the old chord's note in the span the new chord now takes
            else:
                cut = [q for q in changes if n.q < q - song.push < n.q + n.dur]
                if cut:
                    n = Note(n.q, cut[0] - song.push - n.q, n.pitch, n.vel, n.part)
        out.append(n)
    moved = []
    for c in chords:
        if round(c.q, 6) in early:
            moved.append(Chord(c.q - song.push, c.dur + song.push, c.root, c.quality, c.bass))
            if moved[-2:-1]:
                prev = moved[-2]
                moved[-2] = Chord(prev.q, prev.dur - song.push, prev.root, prev.quality, prev.bass)
        else:
            moved.append(c)
    return out, moved


# --------------------------------------------------------------------------------------------
# MIDI and rendering

CHANNELS = {"bass": 0, "keys": 1, "lead": 2, "pad": 3, "drums": 9}
STEM_OF = {"drums": "drums", "bass": "bass", "keys": "other", "lead": "other", "pad": "other"}


def _tempo_map(song: Song, total_q: float) -> list[tuple[float, float]]:
    """(quarter position, quarter-note BPM) changes; a drifting song changes every pulse."""
    qb = song.quarter_bpm
    if song.step != 1.0:
        half = round(total_q / 2 / song.bar_q) * song.bar_q
        return [(0.0, qb), (float(half), qb * song.step)]
    if not song.drift:
        return [(0.0, qb)]
    out = []
    for q in np.arange(0.0, total_q, song.pulse_q):
        out.append((float(q), qb * (1.0 + song.drift * q / total_q)))
    return out


def write_midis(song: Song, notes: list[Note], folder: Path, rng: np.random.Generator) -> dict[str, Path]:
    import mido

    total_q = max(n.q + n.dur for n in notes) + 1.0
    tempo = _tempo_map(song, total_q)

    def q_to_ticks(q: float) -> int:
        return int(round(q * PPQ))

    def swung(q: float) -> float:
        if song.swing == 0.5 or song.compound:
            return q
        pair = math.floor(q + 1e-9)
        frac = q - pair
        if abs(frac - 0.5) < 1e-6:
            return pair + song.swing
        return q

    # humanisation: the same offsets for a note in every file
    jitter_q = song.jitter_ms / 1000.0 * song.quarter_bpm / 60.0
    shifted = []
    for n in notes:
        dq = float(np.clip(rng.normal(0.0, jitter_q * (0.5 if n.part == "drums" else 1.0)), -2 * jitter_q,
                           2 * jitter_q)) if jitter_q else 0.0
        vel = int(np.clip(n.vel + rng.integers(-6, 7), 15, 127))
        shifted.append((max(0.0, swung(n.q) + dq), n.dur, n.pitch, vel, n.part))

    def conductor(track):
        track.append(mido.MetaMessage("time_signature", numerator=song.numerator, denominator=song.denominator,
                                      time=0))
        last = 0
        for q, bpm in tempo:
            t = q_to_ticks(q)
            track.append(mido.MetaMessage("set_tempo", tempo=int(round(60e6 / bpm)), time=t - last))
            last = t

    def part_track(track, parts):
        events = []
        for part in parts:
            ch = CHANNELS[part]
            if part == "drums":
                events.append((0, 0, mido.Message("control_change", channel=ch, control=0, value=127)))
                events.append((0, 1, mido.Message("program_change", channel=ch, program=KITS.get(song.kit, 0))))
            else:
                events.append((0, 1, mido.Message("program_change", channel=ch, program=song.programs[part])))
            level = {"drums": 110, "bass": 100, "keys": 85, "lead": 88, "pad": 70}[part]
            events.append((0, 2, mido.Message("control_change", channel=ch, control=7,
                                              value=int(np.clip(level + rng.integers(-15, 16), 40, 127)))))
            events.append((0, 2, mido.Message("control_change", channel=ch, control=91,
                                              value=int(rng.integers(10, 70)))))
        for q, dur, pitch, vel, part in shifted:
            if part not in parts:
                continue
            ch = CHANNELS[part]
            on = q_to_ticks(q)
            off = max(on + 1, q_to_ticks(q + dur))
            events.append((on, 4, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
            events.append((off, 3, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
        events.sort(key=lambda e: (e[0], e[1]))
        last = 0
        for t, _, msg in events:
            track.append(msg.copy(time=t - last))
            last = t

    groups: dict[str, list[str]] = {}
    for part in CHANNELS:
        if any(n[4] == part for n in shifted):
            groups.setdefault(STEM_OF[part], []).append(part)
    paths = {}
    folder.mkdir(parents=True, exist_ok=True)
    for name, parts in [("song", [p for ps in groups.values() for p in ps])] + list(groups.items()):
        mid = mido.MidiFile(ticks_per_beat=PPQ)
        cond = mido.MidiTrack()
        conductor(cond)
        mid.tracks.append(cond)
        tr = mido.MidiTrack()
        part_track(tr, parts)
        mid.tracks.append(tr)
        paths[name] = folder / f"{name}.mid"
        mid.save(paths[name])
    return paths


def render(midi: Path, out_wav: Path, soundfont: Path | None = None) -> np.ndarray:
    """``midi`` played by fluidsynth with ``soundfont`` (default: :data:`SOUNDFONT`), ``[2, samples]``."""
    import soundfile as sf

    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-F", str(out_wav), "-r", str(SR), "-O", "float",
                    "-T", "wav", str(soundfont or SOUNDFONT), str(midi)], check=True, capture_output=True)
    x, sr = sf.read(out_wav, dtype="float32", always_2d=True)
    return x.T


def truth_of(song: Song, midi: Path, chords: list[Chord], first_s: float, last_s: float) -> dict:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(midi))
    beats = pm.get_beats()
    downbeats = pm.get_downbeats()
    keep = (beats >= first_s - 0.05) & (beats <= last_s + 1e-3)
    beats = beats[keep]
    downbeats = downbeats[(downbeats >= first_s - 0.05) & (downbeats <= last_s + 1e-3)]
    segs = []
    for c in chords:
        a, b = pm.tick_to_time(int(round(c.q * PPQ))), pm.tick_to_time(int(round((c.q + c.dur) * PPQ)))
        segs.append([round(a, 6), round(min(b, last_s), 6), c.label()])
    if segs and segs[0][0] > 0:
        segs.insert(0, [0.0, segs[0][0], "N"])
    ibi = np.diff(beats)
    return {
        "id": song.id, "style": song.style, "meter": f"{song.numerator}/{song.denominator}",
        "beats_per_bar": song.numerator, "pulses_per_bar": song.numerator // 3 if song.compound else song.numerator,
        "bpm": round(60.0 / float(np.median(ibi)), 4), "quarter_bpm": round(song.quarter_bpm, 4),
        "groove": song.groove, "key": f"{PITCH_CLASSES[song.tonic]} {song.mode}", "tonic": song.tonic,
        "mode": song.mode, "has_drums": song.has_drums, "tempo_drift": song.drift,
        "beats": [round(float(t), 6) for t in beats], "downbeats": [round(float(t), 6) for t in downbeats],
        "chords": segs, "spec": asdict(song),
    }


def moving_tempo(song: Song, index: int, seed: int, *, drift: tuple[float, float] | None = None,
                 step: tuple[float, float] | None = None, flat_kick: float = 0.0) -> Song:
    """``song`` with a tempo that moves: a drift of ±``drift`` (fraction, drawn within it) over the
    song, or a step by ±``step`` at the bar line nearest the middle (its drift then none); with
    probability ``flat_kick``, a kick with no accent (:attr:`Song.flat_kick`).  Drawn from their own
    seeds, so every other choice of the song stays as :func:`draw_song` made it."""
    if drift is not None:
        r = np.random.default_rng([seed, index, 99])
        song.drift = float(r.choice([-1, 1]) * r.uniform(*drift))
    if step is not None:
        r = np.random.default_rng([seed, index, 98])
        song.drift = 0.0
        song.step = float(1.0 + r.choice([-1, 1]) * r.uniform(*step))
    if flat_kick > 0.0:
        song.flat_kick = bool(np.random.default_rng([seed, index, 97]).random() < flat_kick)
    return song


def make_song(index: int, seed: int, seconds: float, out: Path, style: str | None = None,
              soundfont: Path | None = None, drift: tuple[float, float] | None = None,
              step: tuple[float, float] | None = None, flat_kick: float = 0.0) -> str:
    import soundfile as sf

    song = moving_tempo(draw_song(index, seed, seconds, style), index, seed, drift=drift, step=step,
                        flat_kick=flat_kick)
    notes, chords = compose(song)
    rng = np.random.default_rng([seed, index, 11])
    midis = write_midis(song, notes, out / "midi" / song.id, rng)
    lib = out / "library" / song.id
    lib.mkdir(parents=True, exist_ok=True)
    stems = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in midis.items():
            if name != "song":
                stems[name] = render(path, Path(tmp) / f"{name}.wav", soundfont)
    n = max(x.shape[1] for x in stems.values())
    stems = {k: np.pad(v, ((0, 0), (0, n - v.shape[1]))) for k, v in stems.items()}
    mix = np.sum(list(stems.values()), axis=0)
    gain = 0.89 / max(float(np.abs(mix).max()), 1e-9)
    for name, x in {"full_mix": mix, **stems}.items():
        sf.write(lib / f"{name}.flac", (x * gain).T, SR, subtype="PCM_24")
    # the truth spans the notes that sound (onsets in seconds come from pretty_midi's tempo map)
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(midis["song"]))
    onsets = np.sort([nt.start for inst in pm.instruments for nt in inst.notes])
    truth = truth_of(song, midis["song"], chords, float(onsets[0]), float(onsets[-1]))
    (out / "truth").mkdir(exist_ok=True)
    (out / "truth" / f"{song.id}.json").write_text(json.dumps(truth, indent=1))
    return song.id


def available(soundfont: Path | None = None) -> bool:
    """fluidsynth and the General MIDI soundfont (default: :data:`SOUNDFONT`) are installed."""
    return Path(soundfont or SOUNDFONT).exists() and shutil.which("fluidsynth") is not None


def require(soundfont: Path | None = None) -> None:
    """Exit naming what to install when :func:`available` is not so."""
    if not available(soundfont):
        raise SystemExit(f"needs fluidsynth and the soundfont {soundfont or SOUNDFONT}: "
                         "apt-get install fluidsynth fluid-soundfont-gm")


def make_corpus(out: Path, *, songs: int, seconds: float, seed: int, jobs: int = 2,
                styles: list[str] | None = None, soundfont: Path | None = None,
                drift: tuple[float, float] | None = None, step: tuple[float, float] | None = None,
                flat_kick: float = 0.0) -> list[str]:
    """Render ``songs`` songs into ``out``; with ``styles``, song ``i`` has style ``styles[i % len]``;
    with ``soundfont``, in its sounds rather than FluidR3's; with ``drift`` or ``step``, every
    song's tempo moves, and with ``flat_kick`` that share of songs has kicks with no accent
    (:func:`moving_tempo`)."""
    require(soundfont)
    unknown = sorted(set(styles or []) - set(STYLES))
    if unknown:
        raise SystemExit(f"unknown styles {unknown}; known: {', '.join(STYLES)}")
    out.mkdir(parents=True, exist_ok=True)
    chosen = [styles[i % len(styles)] if styles else None for i in range(songs)]
    if jobs <= 1:  # in this process (fluidsynth runs as its own process anyway)
        return [make_song(i, seed, seconds, out, chosen[i], soundfont, drift, step, flat_kick) for i in range(songs)]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(make_song, range(songs), [seed] * songs, [seconds] * songs, [out] * songs, chosen,
                             [soundfont] * songs, [drift] * songs, [step] * songs, [flat_kick] * songs))


def _span(text: str) -> tuple[float, float]:
    lo, hi = (float(v) for v in text.split(","))
    if not 0.0 <= lo <= hi < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: want LO,HI with 0 <= LO <= HI < 1")
    return lo, hi


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("out", type=Path)
    ap.add_argument("--songs", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=32.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--styles", default="", help=f"comma-separated, cycled over the songs (default: drawn); "
                                                 f"known: {', '.join(STYLES)}")
    ap.add_argument("--soundfont", type=Path, help=f"a General MIDI .sf2/.sf3 (default {SOUNDFONT})")
    ap.add_argument("--drift", type=_span, help="LO,HI: every song's tempo drifts by a drawn ±fraction "
                                                "within it over the song (0.10,0.20)")
    ap.add_argument("--step", type=_span, help="LO,HI: every song's tempo steps by a drawn ±fraction within "
                                               "it at the bar line nearest its middle (0.12,0.20)")
    ap.add_argument("--flat-kick", type=float, default=0.0, metavar="P",
                    help="the share of songs (drawn, 0-1) whose kicks all strike alike, the bar's first no "
                         "louder (a drum machine's); default 0: the first kick accented")
    args = ap.parse_args()
    if not 0.0 <= args.flat_kick <= 1.0:
        ap.error("--flat-kick wants a share between 0 and 1")
    done = make_corpus(args.out, songs=args.songs, seconds=args.seconds, seed=args.seed, jobs=args.jobs,
                       styles=[s for s in args.styles.split(",") if s] or None, soundfont=args.soundfont,
                       drift=args.drift, step=args.step, flat_kick=args.flat_kick)
    print(f"{len(done)} songs in {args.out}")


if __name__ == "__main__":
    main()
