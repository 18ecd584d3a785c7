"""Chords: a beat-synchronous chord sequence of the harmonic content, per-bar chords, and the
keys prompts use (``chord_progression``, ``chord_changes_per_bar``, ``chord_vocabulary_size``).

Per beat (the metrical analysis's grid, shared with ``rhythm``, continued at its period to the
start and the end of the track), the mean chroma of the
harmonic content (the tonal front end: bass+other stems when the track has them, else the
mix) and of its lowest notes (the bass stem, else the peaks below 250 Hz) are compared with
chord templates: maj, min, 7, maj7, min7, dim, sus4, sus2 on each of the 12 roots.  A
template's score is the cosine of its chord tones with the chroma plus a bonus when the bass
sounds its root (the bass tells A:min7 from C:maj6, which share their notes); a Viterbi pass
over the beats keeps chords from flickering (a change costs ``change_cost``, less on a
downbeat, where chords usually change).  Beats without pitched sound are ``N``.  The bass
note names the inversion when it is the chord's third or fifth (``C:maj/3``).

Labels follow Harte et al.'s syntax (``A:min7``, ``C:maj/3``), as mir_eval scores them; prompts
read the short names (``Am7``).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ConfigError, ExtractorError
from sat_mir.features.metrical import Metrical
from sat_mir.features.registry import ExtractorResult, Needs, OutputSpec, register
from sat_mir.features.rhythm import GridConfig, UsesBeatGrid, grid_settings, metrical_of
from sat_mir.features.tonal import PITCH_CLASSES, harmonic_frames

__all__ = ["CHORDS_FILE", "CHORD_LAB_FILE", "QUALITIES", "ChordSegment", "Chords", "chord_segments", "covering_beats",
           "phrase_tonics", "recognise", "short_name"]

CHORDS_FILE = "chords.json"
CHORD_LAB_FILE = "chords.lab"
# chord tones (semitones above the root) per Harte quality
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "dim": (0, 3, 6), "sus4": (0, 5, 7), "sus2": (0, 2, 7),
}
# The triad a quality is scored as (mir_eval's majmin reading): sevenths count as their triad.
TRIAD_KIND = {"maj": "maj", "7": "maj", "maj7": "maj", "min": "min", "min7": "min", "dim": "dim", "sus4": "sus4",
              "sus2": "sus2"}
_KIND_INDEX = {k: i for i, k in enumerate(dict.fromkeys(TRIAD_KIND.values()))}
# Makes the mean chord_confidence match the mean majmin recall of the development corpora
# (0.80 against 0.80 on dev2 and human-dev; per song, Spearman 0.61 and 0.73 with the recall).
CONFIDENCE_BETA = 50.0
SHORT = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7", "dim": "dim", "sus4": "sus4", "sus2": "sus2"}
INVERSIONS = {3: "b3", 4: "3", 7: "5"}


@dataclass(frozen=True)
class ChordSegment:
    start: float  # s
    end: float  # s
    root: int | None  # pitch class; None = no chord
    quality: str | None
    bass: int | None = None  # pitch class of the bass when it is not the root
    confidence: float | None = None  # mean over its beats of the probability of its root and triad kind

    @property
    def label(self) -> str:
        """Harte label: ``A:min7``, ``C:maj/3``, ``N``."""
        if self.root is None:
            return "N"
        lab = f"{PITCH_CLASSES[self.root]}:{self.quality}"
        if self.bass is not None and self.bass != self.root:
            lab += "/" + INVERSIONS[(self.bass - self.root) % 12]
        return lab

    @property
    def short(self) -> str:
        return "N" if self.root is None else short_name(self.root, self.quality)


def short_name(root: int, quality: str) -> str:
    """``(9, "min7")`` → ``"Am7"``."""
    return f"{PITCH_CLASSES[root]}{SHORT[quality]}"


def _scale(tonic: int, mode: str) -> list[int]:
    """Pitch classes of the key's scale; a minor key also has the harmonic minor's leading tone."""
    steps = (0, 2, 4, 5, 7, 9, 11) if mode == "major" else (0, 2, 3, 5, 7, 8, 10, 11)
    return [(tonic + s) % 12 for s in steps]


def _templates(qualities: tuple[str, ...]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    rows, names = [], []
    for q in qualities:
        for r in range(12):
            t = np.zeros(12)
            t[[(r + i) % 12 for i in QUALITIES[q]]] = 1.0
            rows.append(t / np.linalg.norm(t))
            names.append((r, q))
    return np.stack(rows), names


def recognise(chroma: np.ndarray, bass: np.ndarray, active: np.ndarray, hop_s: float, beats: np.ndarray,
              downbeats: np.ndarray, *, qualities: tuple[str, ...] = tuple(QUALITIES), bass_weight: float = 0.0,
              change_cost: float = 0.08, downbeat_discount: float = 0.5, seventh_penalty: float = 0.03,
              sus_penalty: float = 0.0, key: tuple[int, str] | None = None, key_bonus: float = 0.1,
              end_s: float | None = None, confidence_beta: float = CONFIDENCE_BETA) -> list[ChordSegment]:
    """Chord segments from beat to beat.

    Parameters
    ----------
    chroma, bass : ``[12, frames]`` pitch-class energy of the harmonic content and of its bass.
    active : ``[frames]`` bool, frames with sound.
    hop_s : float > 0, frame hop in seconds.
    beats, downbeats : s, increasing.
    bass_weight : bonus for a template whose root is the strongest bass pitch class.
    change_cost : Viterbi cost of a chord change between beats; ``downbeat_discount`` times it on
        a downbeat.
    seventh_penalty : subtracted from four-note chords, so a plain triad is not called a seventh
        on a trace of overtone.
    sus_penalty : subtracted from sus4 and sus2 chords: a triad whose third sounds softly beside
        a passing second or fourth (or its fifth's overtones) otherwise reads as the sus chord a
        fifth away (C:maj as G:sus4), and sus chords are far rarer than triads.
    end_s : the end of the last segment (default: one beat after the last beat).
    confidence_beta : sharpness of the per-beat softmax over the templates' scores that gives
        each segment its ``confidence``: the probability of the chosen root and triad kind
        (maj, 7 and maj7 count as major; min and min7 as minor), averaged over its beats.
    """
    beats = np.asarray(beats, dtype=np.float64)
    if beats.size < 2:
        raise ExtractorError(f"only {beats.size} beats: too few to segment chords")
    n_frames = chroma.shape[1]
    if bass.shape[1] != n_frames:  # a bass stem shorter or longer than the harmonic content: silent past its end
        bass = np.pad(bass[:, :n_frames], ((0, 0), (0, max(0, n_frames - bass.shape[1]))))
    period = float(np.median(np.diff(beats)))
    edges = np.append(beats, end_s if end_s is not None else beats[-1] + period)
    idx = np.clip(np.round(edges / hop_s).astype(int), 0, n_frames)
    T, names = _templates(qualities)
    penalty = np.array([seventh_penalty if len(QUALITIES[q]) > 3 else sus_penalty if q.startswith("sus") else 0.0
                        for _, q in names])
    if key is not None:  # chords whose notes all belong to the key's scale are likelier
        scale = set(_scale(*key))
        penalty = penalty - key_bonus * np.array([all((r + i) % 12 in scale for i in QUALITIES[q]) for r, q in names])
    n = beats.size
    scores = np.full((n, len(names) + 1), -np.inf)
    basses: list[int | None] = []
    for i in range(n):
        a, b = idx[i], max(idx[i + 1], idx[i] + 1)
        sl = slice(a, min(b, n_frames))
        act = active[sl] if sl.start < n_frames else np.zeros(0, bool)
        if not act.any():
            scores[i, -1] = 0.0  # silence: no chord
            basses.append(None)
            continue
        c = np.sqrt(chroma[:, sl][:, act]).mean(axis=1)  # compressed: a loud note does not drown the rest
        lo = bass[:, sl][:, act].mean(axis=1)
        norm = np.linalg.norm(c)
        if norm <= 0:
            scores[i, -1] = 0.0
            basses.append(None)
            continue
        s = T @ (c / norm) - penalty
        b_pc = int(np.argmax(lo)) if lo.max() > 0 else None
        basses.append(b_pc)
        if b_pc is not None:
            roots = np.array([r for r, _ in names])
            s = s + bass_weight * (roots == b_pc) * float(lo.max() / (lo.sum() + 1e-9))
        scores[i, :-1] = s
        scores[i, -1] = 0.2  # an "N" that a clearly pitched beat never prefers
    # Viterbi: maximise the sum of scores minus change costs
    is_down = np.zeros(n, bool)
    for d in np.asarray(downbeats, dtype=np.float64):
        k = int(np.argmin(np.abs(beats - d)))
        if abs(beats[k] - d) < 0.25 * period:
            is_down[k] = True
    m = scores.shape[1]
    best = scores[0].copy()
    back = np.zeros((n, m), dtype=np.int32)
    for i in range(1, n):
        cost = change_cost * (downbeat_discount if is_down[i] else 1.0)
        j = int(np.argmax(best))
        stay = best
        move = best[j] - cost
        choose_move = move > stay
        back[i] = np.where(choose_move, j, np.arange(m))
        best = np.where(choose_move, move, stay) + scores[i]
    path = np.empty(n, dtype=np.int32)
    path[-1] = int(np.argmax(best))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    prob = _chosen_probability(scores[:, :-1], path, names, confidence_beta)
    segs: list[ChordSegment] = []
    first = 0  # beat index where the last segment starts
    for i, k in enumerate(path):
        root, quality = (None, None) if k == len(names) else names[k]
        b_pc = basses[i]
        inv = b_pc if (root is not None and b_pc is not None and (b_pc - root) % 12 in INVERSIONS
                       and (b_pc - root) % 12 in [x % 12 for x in QUALITIES[quality]]) else None
        start, end = float(edges[i]), float(edges[i + 1])
        if segs and segs[-1].root == root and segs[-1].quality == quality and segs[-1].bass == inv:
            conf = None if root is None else round(float(prob[first:i + 1].mean()), 4)
            segs[-1] = ChordSegment(segs[-1].start, end, root, quality, inv, conf)
        else:
            first = i
            segs.append(ChordSegment(start, end, root, quality, inv, None if root is None else round(float(prob[i]), 4)))
    return segs


def _chosen_probability(scores: np.ndarray, path: np.ndarray, names: list[tuple[int, str]],
                        beta: float) -> np.ndarray:
    """Per beat, the softmax probability (over the templates' scores) of every template with the
    chosen chord's root and triad kind; NaN on "N" beats."""
    kind = np.array([r * len(_KIND_INDEX) + _KIND_INDEX[TRIAD_KIND[q]] for r, q in names])
    out = np.full(path.size, np.nan)
    for i, k in enumerate(path):
        if k >= len(names) or not np.isfinite(scores[i]).all():
            continue
        z = beta * (scores[i] - scores[i].max())
        p = np.exp(z)
        out[i] = float(p[kind == kind[k]].sum() / p.sum())
    return out


def covering_beats(beats: np.ndarray, end_s: float) -> np.ndarray:
    """``beats`` continued at their median period back to the start of the track and on to its
    end (the first clipped to 0): the tracker's first beat often comes late (it needs a few
    onsets, or the drums enter after the chords), and chords sound before it and after its last
    beat (3.6 % of the chorded time of the development songs was "N" before the first beat)."""
    beats = np.asarray(beats, dtype=np.float64)
    if beats.size < 2:
        return beats
    period = float(np.median(np.diff(beats)))
    before = beats[0] - period * np.arange(int(beats[0] / period) + 1, 0, -1)
    before = np.maximum(before[before > -0.5 * period], 0.0)
    after = beats[-1] + period * np.arange(1, int(max(0.0, end_s - beats[-1]) / period) + 1)
    after = after[after < end_s - 0.5 * period]
    return np.concatenate([before, beats, after])


def per_bar(segs: list[ChordSegment], downbeats: np.ndarray, end_s: float) -> list[dict]:
    """The chords sounding in each bar (in order, no repeats), bar by bar."""
    bars = []
    edges = np.append(np.asarray(downbeats, dtype=np.float64), end_s)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        names = [s.short for s in segs if s.end > a + 1e-6 and s.start < b - 1e-6 and
                 min(s.end, b) - max(s.start, a) >= 0.2 * (b - a)]
        seq = [x for j, x in enumerate(names) if j == 0 or x != names[j - 1]]
        bars.append({"bar": i, "start": round(float(a), 4), "chords": seq})
    return bars


def most_common_progression(bars: list[dict], length: int = 4) -> list[str]:
    """The most frequent run of ``length`` chords in the sequence of bar chords (each bar's first
    chord, repeats collapsed: a chord held for two bars counts once), the earliest on ties;
    shorter songs give what they have."""
    firsts = [b["chords"][0] for b in bars if b["chords"] and b["chords"][0] != "N"]
    seq = [c for i, c in enumerate(firsts) if i == 0 or c != firsts[i - 1]]
    if len(seq) <= length:
        return seq
    runs = Counter(tuple(seq[i:i + length]) for i in range(0, len(seq) - length + 1))
    top = max(runs.values())
    for i in range(0, len(seq) - length + 1):
        if runs[tuple(seq[i:i + length])] == top:
            return list(seq[i:i + length])
    return seq[:length]


@register
class Chords(UsesBeatGrid):
    name = "chords"
    needs = Needs(min_sound_s=4.0, pitched=True, rhythmic=True)  # chords per beat
    version = "19"  # 4: bars from the refitted bar models; 5: the grid's half-beat slip mended; 6: refit, accent;
    # 7: beat candidates at 3/4 and 4/3; 8: the kick moves a grid off a shuffle's off-beats;
    # 9: the mix's drums left out of its harmonic content (tonal.harmonic_mask); 10: the metrical
    # models' average of two fits; 11: the note chroma searches every lower peak for a fundamental;
    # 12: beats on the notes' starts (rhythm.ATTACK_LEAD_S); 13: beats on their local line (steady_beats);
    # 14: beats on the track's own attacks (attack.attack_shift); 15: drums sure from a flatness of 0.46;
    # 16: the kick's move asks for onsets there and a drums stem's kick 4 times stronger (kick_shift);
    # 17: where the tempo steps, the tracker's period follows it (metrical.local_tempo); 18: bar models
    # refitted with the kick's place in the bar; 19: bar models refitted with drum-machine kicks
    signals = ("mix", "stems")
    outputs = (
        OutputSpec("chord_progression", "chord names",
                   "the most frequent run of 4 chords in the bar chords (each bar's first chord, repeats "
                   "collapsed), e.g. ['Am', 'F', 'C', 'G']; "
                   f"the whole sequence is in {CHORDS_FILE} (per bar) and {CHORD_LAB_FILE} (per segment)",
                   kind="list", confidence="chord_confidence"),
        OutputSpec("chord_confidence", "probability",
                   "how sure the chord names are: per beat, the softmax probability of the chosen root and triad "
                   "kind among all chord templates, averaged over the chorded time; on the development corpora "
                   "its mean matches the share of the chorded time named right", (0.0, 1.0)),
        OutputSpec("chord_changes_per_bar", "changes", "chord changes per bar, averaged over the bars with chords",
                   (0.0, 12.0)),
        OutputSpec("chord_vocabulary_size", "chords", "distinct chords (root and quality) in the track", (0, 96),
                   kind="int"),
        OutputSpec("chord_seventh_ratio", "fraction", "share of the chorded time on seventh chords", (0.0, 1.0)),
    )

    @dataclass(frozen=True)
    class Config(GridConfig):
        qualities: tuple[str, ...] = tuple(QUALITIES)
        bass_weight: float = 0.04
        change_cost: float = 0.08
        downbeat_discount: float = 0.5
        seventh_penalty: float = 0.05
        sus_penalty: float = 0.1
        progression_bars: int = 4

        def __post_init__(self):
            super().__post_init__()
            object.__setattr__(self, "qualities", tuple(self.qualities))
            unknown = [q for q in self.qualities if q not in QUALITIES]
            if unknown or not self.qualities:
                raise ConfigError(f"extractors.chords.qualities: unknown {unknown}; known: {list(QUALITIES)}")
            if self.progression_bars < 1:
                raise ConfigError(f"extractors.chords.progression_bars must be >= 1, got {self.progression_bars}")

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        c = self.config
        segs, grid = chord_segments(ctx, c)
        bars = per_bar(segs, grid.downbeats, segs[-1].end)
        chorded = [b for b in bars if b["chords"] and b["chords"] != ["N"]]
        if not chorded:
            raise ExtractorError("no chords: no bar has pitched harmonic content")
        changes = [max(0, len(b["chords"]) - 1) for b in chorded]
        # a change across a bar line counts for the bar it enters
        for prev, cur in zip(chorded[:-1], chorded[1:]):
            if prev["chords"][-1] != cur["chords"][0]:
                changes[chorded.index(cur)] += 1
        named = [s for s in segs if s.root is not None]
        dur = sum(s.end - s.start for s in named)  # > 0: some bar has a chord for a fifth of it
        sevenths = sum(s.end - s.start for s in named if len(QUALITIES[s.quality]) > 3)
        values = {
            "chord_progression": most_common_progression(bars, c.progression_bars),
            "chord_changes_per_bar": round(float(np.mean(changes)), 4),
            "chord_vocabulary_size": len({(s.root, s.quality) for s in named}),
            "chord_seventh_ratio": round(sevenths / dur, 4),
            "chord_confidence": round(sum(s.confidence * (s.end - s.start) for s in named) / dur, 4),
        }
        lab = "".join(f"{s.start:.4f}\t{s.end:.4f}\t{s.label}\n" for s in segs)
        return ExtractorResult(values=values, artifacts={
            CHORDS_FILE: json.dumps({"bars": bars}, indent=1) + "\n", CHORD_LAB_FILE: lab})


def chord_segments(ctx: TrackContext, config: Chords.Config) -> tuple[list[ChordSegment], Metrical]:
    """The track's chord segments and the beat grid they follow, memoised (``chords`` and the
    key's phrase starts in ``tonal`` read the same ones).

    Raises
    ------
    ExtractorError
        No beat grid, or no pitched harmonic content.
    """
    c = config

    def compute() -> tuple[list[ChordSegment], Metrical]:
        grid = metrical_of(ctx, **grid_settings(c))
        harmonic = harmonic_frames(ctx) if c.use_stems else harmonic_frames(_mix_only(ctx))
        fr = harmonic.frames
        if not fr.active.any():
            raise ExtractorError("no harmonic content: nothing pitched to name chords from")
        low = harmonic.stems["bass"].chroma if "bass" in harmonic.stems and harmonic.stems["bass"].active.any() \
            else fr.low_chroma
        end = ctx.mix.duration_s
        segs = recognise(fr.note_chroma, low, fr.active, fr.hop_s, covering_beats(grid.beats, end), grid.downbeats,
                         qualities=c.qualities, bass_weight=c.bass_weight, change_cost=c.change_cost,
                         downbeat_discount=c.downbeat_discount, seventh_penalty=c.seventh_penalty,
                         sus_penalty=c.sus_penalty, end_s=end)
        return segs, grid

    # progression_bars names no segment: a setting of it alone does not segment the track again
    return ctx.mix.memo(("chord_segments", dataclasses.replace(c, progression_bars=1)), compute)


def phrase_tonics(segs: list[ChordSegment], downbeats: np.ndarray, beat_s: float,
                  every: int = 4) -> np.ndarray | None:
    """``[2 modes, 12 tonics]``: the share of phrase starts whose chord is that key's tonic triad
    (maj, 7 or maj7 on a major key's tonic; min or min7 on a minor key's).  Phrase starts are
    every ``every``-th downbeat from the first one with a chord; a downbeat's chord is the one
    sounding a quarter of a beat (``beat_s``) after it.  None when no downbeat has a chord."""
    downbeats = np.asarray(downbeats, dtype=np.float64)
    named = [s for s in segs if s.root is not None]
    if downbeats.size == 0 or not named:
        return None
    offset = 0.25 * beat_s

    def chord_at(t: float) -> ChordSegment | None:
        return next((s for s in named if s.start <= t < s.end), None)

    chords = [chord_at(t + offset) for t in downbeats]
    first = next((i for i, ch in enumerate(chords) if ch is not None), None)
    if first is None:
        return None
    share = np.zeros((2, 12))
    starts = [ch for ch in chords[first::every] if ch is not None]
    for ch in starts:
        kind = TRIAD_KIND[ch.quality]
        if kind in ("maj", "min"):
            share[0 if kind == "maj" else 1, ch.root] += 1
    return share / len(starts)


def _mix_only(ctx: TrackContext):
    from sat_mir.features.rhythm import _MixOnly

    return _MixOnly(ctx)  # the stems hidden
