"""Render human-composed music with exact truth: Bach chorales, folk dance tunes (Ryan's Mammoth
Collection: jigs, reels, hornpipes, polkas, waltzes, slip jigs) and classical movements and songs,
from the scores that ship inside the ``music21`` package, in the layout of
``tools/make_eval_corpus.py``.

    pip install music21 mido pretty_midi soundfile   # music21 needs numpy >= 1.26: use a separate venv
    python tools/make_human_corpus.py OUT_DIR [--chorales 30] [--tunes 50] [--classical 0] [--seconds 30]
        [--seed 0] [--split test] [--soundfont FILE]

``--split`` keeps the pieces apart: every score belongs to ``test`` or ``dev`` by a hash of its
file name (a classical movement's with its folder: ``opus18no1/movement1.mxl``), so a development
set (fitting, tuning) never shares a piece with the test set.

A check on audio the project's generator did not compose: its rhythms, pickups, phrase lengths,
voice leading and harmony are people's.  What is ours: the tempo (drawn per piece in the range
the genre is played at; the scores carry none), the General MIDI programs, and for the dance
tunes a drum part in the tune's meter (kick on the bar, snare or rim on the other beats, hi-hat
on the subdivisions) that half of them get; the other half are the melody alone.

Truth, from the score (never from the audio):
  beats       every beat of every bar (music21's beat: the dotted quarter in 6/8, 9/8, 12/8;
              pretty_midi's convention too); a pickup measure's beats count back from its end
  downbeats   the starts of the bars: two short measures that fill one bar (a strain's end and
              the next strain's pickup, split at a repeat sign) are one bar; an excerpt ends at
              anything else that breaks the bar grid (see ``bar_grid``), and one shorter than
              6 bars or 12 s is left out
  beats_per_bar  the time signature's numerator; bpm = 60 / median inter-beat interval
  key         chorales: the key signature's major or relative minor, whichever the final bass
              note of the whole chorale names; tunes: the same with the tune's final note; a modal
              ending (neither) leaves the key out of the truth
  chords      chorales and classical pieces: each beat's chordified sonority named by music21
              (root, quality, bass) in Harte syntax, "X" (left out of the score) when it is no
              triad or seventh

``--classical N`` adds N classical movements and songs (string quartets by Haydn, Mozart and
Beethoven, piano and chamber pieces, songs: ``CLASSICAL_COMPOSERS``), with no drums, their key
from the key signature and the final bass note as the chorales'; 0 (the default) leaves every
other corpus as it was.  ``--soundfont`` renders with another General MIDI soundfont than
FluidR3 (as ``make_eval_corpus.py --soundfont``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("make_eval_corpus", Path(__file__).with_name("make_eval_corpus.py"))
ec = importlib.util.module_from_spec(_spec)
sys.modules["make_eval_corpus"] = ec
_spec.loader.exec_module(ec)

PITCH_CLASSES = ec.PITCH_CLASSES
TUNE_TEMPO = {"6/8": (100, 126), "9/8": (100, 120), "12/8": (90, 110), "2/2": (90, 110), "4/4": (100, 124),
              "2/4": (96, 124), "3/4": (100, 170), "3/8": (60, 80)}  # in music21 beats per minute
CHORALE_PROGRAMS = [[19, 19, 19, 19], [52, 52, 52, 52], [48, 48, 48, 42], [0, 0, 0, 0], [61, 60, 57, 58],
                    [73, 68, 71, 70], [20, 20, 20, 20]]
MIN_BARS, MIN_SECONDS = 6, 12.0  # shorter excerpts (cut at an irregular bar) are left out
TUNE_PROGRAMS = [40, 73, 22, 21, 74, 110, 0, 24, 25, 105, 71, 68, 56, 64]
# Classical movements and songs (string quartets, piano and chamber pieces, songs): every composer
# in music21's corpus with measured, metered scores (Palestrina and the trecento have no meter
# in the modern sense; Bach is the chorales').  Tempo drawn per piece in music21 beats per minute.
CLASSICAL_COMPOSERS = ("beethoven", "mozart", "haydn", "schumann_robert", "schumann_clara", "chopin", "joplin",
                       "corelli", "cpebach", "handel", "schubert", "weber", "verdi", "beach", "johnson_j_r",
                       "liliuokalani")
CLASSICAL_TEMPO = {"2/2": (56, 100), "4/4": (56, 132), "2/4": (60, 132), "3/4": (72, 176), "3/8": (50, 80),
                   "6/8": (48, 100), "9/8": (40, 80), "12/8": (40, 80)}
CLASSICAL_PROGRAMS = [[40, 40, 41, 42], [0, 0, 0, 0], [48, 48, 48, 48], [6, 6, 6, 6], [19, 19, 19, 19],
                      [73, 71, 70, 42]]


def _quality(ch) -> tuple[str, int] | None:
    """(Harte quality, root pitch class) of a music21 chord, or None."""
    try:
        root = ch.root().pitchClass
    except Exception:  # noqa: BLE001 - music21 raises several kinds for empty chords
        return None
    pcs = sorted({(p.pitchClass - root) % 12 for p in ch.pitches})
    table = {(0, 4, 7): "maj", (0, 3, 7): "min", (0, 3, 6): "dim", (0, 4, 8): "aug", (0, 4, 7, 10): "7",
             (0, 4, 7, 11): "maj7", (0, 3, 7, 10): "min7", (0, 3, 6, 10): "hdim7", (0, 3, 6, 9): "dim7",
             (0, 4, 10): "7", (0, 3, 10): "min7", (0, 4): "maj", (0, 3): "min", (0, 7): "maj"}
    q = table.get(tuple(pcs))
    return (q, root) if q else None


def _key_truth(ks, final_pc: int) -> str | None:
    if ks is None:
        return None
    major = ks.asKey("major").tonic.pitchClass
    minor = ks.asKey("minor").tonic.pitchClass
    if final_pc == major:
        return f"{PITCH_CLASSES[major]} major"
    if final_pc == minor:
        return f"{PITCH_CLASSES[minor]} minor"
    return None


def bar_grid(measures, site, bar_ql: float, beat_ql: float, max_ql: float):
    """(beats, downbeats, end) in quarter lengths, from the measures as notated.

    A short first measure is a pickup: its beats count back from its end.  Later, two short
    measures that fill one bar between them (a strain that ends early and the next strain's
    pickup, split at a repeat sign) are one bar: one downbeat, at the first.  Anything else
    that breaks the bar grid (a measure that overruns the bar, a gap or an overlap between
    measures, a time signature change, the odd measure an ABC transcription produces) ends
    the excerpt there (``end``): the audio after it would not follow a steady meter, and the
    truth would have bars the music does not."""
    eps = 1e-6
    beats, downbeats = [], []
    end, expected, filled = max_ql, None, 0.0
    for i, m in enumerate(measures):
        start = float(m.getOffsetBySite(site))
        length = float(m.duration.quarterLength)
        if start >= end:
            break
        if expected is not None and abs(start - expected) > eps:
            end = min(end, start)
            break
        expected = start + length
        if i == 0 and length < bar_ql - eps:  # a pickup: its beats count back from its end
            b = start + length - beat_ql
            pick = []
            while b >= start - eps:
                pick.insert(0, b)
                b -= beat_ql
            beats += pick
            continue
        if filled + length > bar_ql + eps or length <= eps:
            end = min(end, start)
            break
        if filled < eps:
            downbeats.append(start)
            beats += [start + k * beat_ql for k in range(int(round(bar_ql / beat_ql)))]
        filled += length
        if abs(filled - bar_ql) < eps:
            filled = 0.0
    if filled > eps:  # an unfinished bar at the end: its missing beats were never played
        end = min(end, expected)
    return [b for b in beats if b < end - eps], [d for d in downbeats if d < end - eps], end


def final_pitch_classes(parts) -> list[int | None]:
    """Per part, the pitch class of its last note in the whole score (the lowest of a chord):
    the key's evidence is where the piece ends, not where an excerpt is cut."""
    out = []
    for part in parts:
        notes = list(part.flatten().notes)
        if not notes:
            out.append(None)
            continue
        last = max(notes, key=lambda n: float(n.offset))
        out.append(min(p.midi for p in last.pitches) % 12)
    return out


def piece_events(score, max_ql: float):
    """Notes per part, the bar grid (:func:`bar_grid`, quarter lengths), time signature, key
    signature and the final pitch class of every part."""
    from music21 import key, meter, stream

    score = score.stripTies(inPlace=False)
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    ks = score.recurse().getElementsByClass(key.KeySignature).first()
    if ts is None:
        return None
    measures = list(parts[0].getElementsByClass(stream.Measure))
    if not measures:
        return None
    bar_ql = ts.barDuration.quarterLength
    beat_ql = ts.beatDuration.quarterLength
    beats, downbeats, end = bar_grid(measures, parts[0], bar_ql, beat_ql, max_ql)
    notes = []
    for i, part in enumerate(parts):
        for n in part.flatten().notes:
            if n.duration.isGrace or n.offset >= end - 1e-6:
                continue
            for p in n.pitches:
                notes.append((float(n.offset), float(max(n.quarterLength, 0.1)), int(p.midi), i))
    return {"notes": notes, "beats": beats, "downbeats": downbeats, "ts": ts, "ks": ks, "beat_ql": beat_ql,
            "parts": len(parts), "measures": measures, "score": score, "finals": final_pitch_classes(parts)}


def write_and_render(name: str, ev: dict, bpm: float, programs: list[int], drums: bool, out: Path, rng,
                     chords_truth: list | None, key_truth: str | None, seconds: float,
                     soundfont: Path | None = None) -> dict | None:
    import mido
    import pretty_midi
    import soundfile as sf

    beat_ql = ev["beat_ql"]
    quarter_bpm = bpm * beat_ql
    sec_per_ql = 60.0 / quarter_bpm
    max_ql = seconds / sec_per_ql
    ts = ev["ts"]
    tracks: dict[str, list] = {"other": [], "bass": [], "drums": []}
    n_parts = ev["parts"]
    for off, dur, pitch, part in ev["notes"]:
        if off >= max_ql:
            continue
        stem = "bass" if (n_parts > 1 and part == n_parts - 1) else "other"
        tracks[stem].append((off, min(dur, max_ql - off), pitch, int(rng.integers(70, 100)), part))
    if drums:
        bar_ql = ts.barDuration.quarterLength
        for d in ev["downbeats"]:
            if d >= max_ql:
                break
            n_beats = int(round(bar_ql / beat_ql))
            for k in range(n_beats):
                pos = d + k * beat_ql
                tracks["drums"].append((pos, 0.2, ec.KICK if k == 0 else (ec.SNARE if k % 2 else ec.SIDE),
                                        110 if k == 0 else 85, 9))
                sub = 3 if ts.beatDivisionCount == 3 else 2
                for j in range(sub):
                    tracks["drums"].append((pos + j * beat_ql / sub, 0.1, ec.HH, 75 if j == 0 else 55, 9))
    folder = out / "midi" / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stem, events in list(tracks.items()) + [("song", [e for es in tracks.values() for e in es])]:
        if not events:
            continue
        mid = mido.MidiFile(ticks_per_beat=ec.PPQ)
        cond = mido.MidiTrack()
        cond.append(mido.MetaMessage("time_signature", numerator=ts.numerator, denominator=ts.denominator, time=0))
        cond.append(mido.MetaMessage("set_tempo", tempo=int(round(60e6 / quarter_bpm)), time=0))
        mid.tracks.append(cond)
        tr = mido.MidiTrack()
        msgs = []
        for part in sorted({e[4] for e in events}):
            ch = 9 if part == 9 else part % 9
            prog = programs[part % len(programs)] if part != 9 else 0
            if ch != 9:
                msgs.append((0, 0, mido.Message("program_change", channel=ch, program=prog)))
            msgs.append((0, 0, mido.Message("control_change", channel=ch, control=91, value=int(rng.integers(20, 60)))))
        for off, dur, pitch, vel, part in events:
            ch = 9 if part == 9 else part % 9
            on = int(round(off * ec.PPQ))
            msgs.append((on, 2, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)))
            msgs.append((max(on + 1, int(round((off + dur) * ec.PPQ))), 1,
                         mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
        msgs.sort(key=lambda m: (m[0], m[1]))
        last = 0
        for t, _, m in msgs:
            tr.append(m.copy(time=t - last))
            last = t
        mid.tracks.append(tr)
        paths[stem] = folder / f"{stem}.mid"
        mid.save(paths[stem])
    lib = out / "library" / name
    lib.mkdir(parents=True, exist_ok=True)
    stems = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stem, path in paths.items():
            if stem != "song":
                stems[stem] = ec.render(path, Path(tmp) / f"{stem}.wav", soundfont)
    n = max(x.shape[1] for x in stems.values())
    stems = {k: np.pad(v, ((0, 0), (0, n - v.shape[1]))) for k, v in stems.items()}
    mix = np.sum(list(stems.values()), axis=0)
    gain = 0.89 / max(float(np.abs(mix).max()), 1e-9)
    for stem, x in {"full_mix": mix, **stems}.items():
        sf.write(lib / f"{stem}.flac", (x * gain).T, ec.SR, subtype="PCM_24")
    pm = pretty_midi.PrettyMIDI(str(paths["song"]))
    onsets = np.sort([nt.start for inst in pm.instruments for nt in inst.notes])
    first, last = float(onsets[0]), float(onsets[-1])
    beats = [b * sec_per_ql for b in ev["beats"] if b < max_ql]
    down = [d * sec_per_ql for d in ev["downbeats"] if d < max_ql]
    beats = [b for b in beats if first - 0.05 <= b <= last + 1e-3]
    down = [d for d in down if first - 0.05 <= d <= last + 1e-3]
    if len(down) < MIN_BARS or beats[-1] - beats[0] < MIN_SECONDS:  # cut short by an irregular bar
        shutil.rmtree(folder)  # no audio or MIDI without its truth
        shutil.rmtree(lib)
        return None
    truth = {
        "id": name, "style": name.split("-")[1], "meter": ts.ratioString, "beats_per_bar": ts.numerator,
        "pulses_per_bar": len(ts.beatSequence), "bpm": round(60.0 / float(np.median(np.diff(beats))), 4),
        "quarter_bpm": round(quarter_bpm, 4), "key": key_truth, "has_drums": drums,
        "beats": [round(b, 6) for b in beats], "downbeats": [round(d, 6) for d in down],
        "chords": [[round(a * sec_per_ql, 6), round(min(b, max_ql) * sec_per_ql, 6), lab] for a, b, lab in
                   chords_truth if a < max_ql] if chords_truth else None,
        "source": ev["score"].metadata.title if ev["score"].metadata else name,
    }
    (out / "truth").mkdir(exist_ok=True)
    (out / "truth" / f"{name}.json").write_text(json.dumps(truth, indent=1))
    return truth


def chorale_chords(score, beats: list[float]) -> list:
    """Per beat: the chordified sonority at the beat, named (Harte), or X."""
    ch = score.chordify().flatten().getElementsByClass("Chord")
    out = []
    for a, b in zip(beats, beats[1:] + [beats[-1] + (beats[-1] - beats[-2])]):
        sounding = [c for c in ch if c.offset <= a + 1e-6 < c.offset + c.quarterLength]
        q = _quality(sounding[0]) if sounding else None
        if q is None:
            out.append([a, b, "X"])
            continue
        quality, root = q
        bass = sounding[0].bass().pitchClass
        inv = {3: "b3", 4: "3", 7: "5", 10: "b7", 11: "7", 6: "b5", 8: "#5", 9: "bb7"}.get((bass - root) % 12)
        lab = f"{PITCH_CLASSES[root]}:{quality}" + (f"/{inv}" if bass != root and inv else "")
        if out and out[-1][2] == lab:
            out[-1][1] = b
        else:
            out.append([a, b, lab])
    return out


def composer_of(path: str) -> str | None:
    """The one of :data:`CLASSICAL_COMPOSERS` whose folder of music21's corpus holds ``path``, or None."""
    folders = Path(path).parts
    return next((c for c in CLASSICAL_COMPOSERS if c in folders), None)


def metered_piece(path: str, tempi: dict[str, tuple[float, float]], rng, seconds: float):
    """(events, time signature, bpm) of the score at ``path`` with a tempo drawn log-uniformly in
    the range ``tempi`` gives its time signature (music21 beats per minute), or None when the
    score does not parse, its meter has no range, or it holds fewer than ``MIN_BARS`` regular bars."""
    from music21 import corpus, meter

    try:
        score = corpus.parse(path)
    except Exception:  # noqa: BLE001 - a few ABC files and scores do not parse
        return None
    ts = score.recurse().getElementsByClass(meter.TimeSignature).first()
    if ts is None or ts.ratioString not in tempi:
        return None
    lo, hi = tempi[ts.ratioString]
    bpm = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    ev = piece_events(score, max_ql=seconds * bpm * ts.beatDuration.quarterLength / 60.0 + 8)
    if ev is None or len(ev["downbeats"]) < MIN_BARS:
        return None
    return ev, ts, bpm


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("out", type=Path)
    ap.add_argument("--split", choices=("test", "dev"), default="test")
    ap.add_argument("--chorales", type=int, default=30)
    ap.add_argument("--tunes", type=int, default=50)
    ap.add_argument("--classical", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--soundfont", type=Path, help=f"a General MIDI .sf2/.sf3 (default {ec.SOUNDFONT})")
    args = ap.parse_args()
    ec.require(args.soundfont)
    from music21 import corpus

    def in_split(path: str, parts: int = 1) -> bool:
        # by the file's name (the chorales' and tunes'); a classical movement's names repeat
        # (movement1.mxl), so its folder counts too
        h = int(hashlib.sha1("/".join(Path(path).parts[-parts:]).encode()).hexdigest(), 16) % 2
        return (h == 0) == (args.split == "test")

    rng = np.random.default_rng(args.seed)
    made = 0
    chorales = sorted(str(p) for p in corpus.getComposer("bach") if "bwv" in str(p) and in_split(str(p)))
    for path in rng.choice(chorales, size=min(args.chorales * 2, len(chorales)), replace=False):
        if made >= args.chorales:
            break
        score = corpus.parse(path)
        bpm = float(rng.uniform(60, 96))
        ev = piece_events(score, max_ql=args.seconds * bpm / 60.0 + 8)
        if ev is None or ev["parts"] != 4 or len(ev["downbeats"]) < MIN_BARS:
            continue
        final_bass = ev["finals"][3]
        key_truth = _key_truth(ev["ks"], final_bass) if final_bass is not None else None
        chords = chorale_chords(ev["score"], ev["beats"])
        name = f"h{made:03d}-chorale-{Path(path).stem}"
        if write_and_render(name, ev, bpm, list(CHORALE_PROGRAMS[int(rng.integers(len(CHORALE_PROGRAMS)))]),
                            False, args.out, rng, chords, key_truth, args.seconds, args.soundfont):
            made += 1
    tunes = sorted(str(p) for p in corpus.getPaths() if "ryansMammoth" in str(p) and in_split(str(p)))
    n_tunes = 0
    for path in rng.choice(tunes, size=min(args.tunes * 3, len(tunes)), replace=False):
        if n_tunes >= args.tunes:
            break
        drawn = metered_piece(path, TUNE_TEMPO, rng, args.seconds)
        if drawn is None:
            continue
        ev, ts, bpm = drawn
        final = ev["finals"][0]
        key_truth = _key_truth(ev["ks"], final) if final is not None else None
        name = f"h{made:03d}-tune{ts.numerator}{ts.denominator}-{Path(path).stem}"
        drums = bool(rng.random() < 0.5)
        if write_and_render(name, ev, bpm, [int(rng.choice(TUNE_PROGRAMS))], drums, args.out, rng, None,
                            key_truth, args.seconds, args.soundfont):
            made += 1
            n_tunes += 1
    classical = sorted(str(p) for p in corpus.getPaths() if composer_of(str(p)) and in_split(str(p), 2))
    # the same movement as Humdrum and MusicXML: keep one
    classical = [p for p in classical if not (p.endswith(".krn") and Path(p).with_suffix(".mxl").exists())]
    n_classical = 0
    for path in rng.permutation(classical) if args.classical else []:
        if n_classical >= args.classical:
            break
        drawn = metered_piece(path, CLASSICAL_TEMPO, rng, args.seconds)
        if drawn is None:
            continue
        ev, _, bpm = drawn
        final_bass = ev["finals"][-1]
        key_truth = _key_truth(ev["ks"], final_bass) if final_bass is not None else None
        name = f"h{made:03d}-classical-{composer_of(path)}-{Path(path).parent.name}-{Path(path).stem}".replace("_", "")
        programs = list(CLASSICAL_PROGRAMS[int(rng.integers(len(CLASSICAL_PROGRAMS)))])
        if write_and_render(name, ev, bpm, programs, False, args.out, rng, chorale_chords(ev["score"], ev["beats"]),
                            key_truth, args.seconds, args.soundfont):
            made += 1
            n_classical += 1
    print(f"{made} pieces in {args.out}")


if __name__ == "__main__":
    main()
