"""Score note transcription of the bass and other stems on a rendered corpus (MIREX note tracking).

    .venv/bin/python tools/score_notes.py CORPUS [--songs N] [--markdown OUT.md]

CORPUS is made by ``tools/make_eval_corpus.py``: ``library/<id>/{bass,other}.flac`` are the
rendered parts and ``midi/<id>/{bass,other}.mid`` the notes they were rendered from (the truth).
Every engine runs on the part's own audio (as after a perfect separation) and is scored with
``mir_eval.transcription`` the MIREX way: a note is right when its pitch is within 50 cents and
its onset within ±50 ms of a reference note's (offsets ignored); precision, recall and F-measure
per song, averaged over the songs that have the part.

Engines: **sat-mir** is the ``notes_midi`` extractor's chain (Basic Pitch, onsets snapped to the
stem's attacks, one note at a time on the bass); **basic-pitch** is the network's notes with its
package's defaults and nothing after; **essentia** (bass only: it has no polyphonic transcriber)
is ``PitchMelodia`` + ``PitchContourSegmentation``, Essentia's monophonic note transcription.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

PARTS = ("bass", "other")
ENGINES = ("sat-mir", "basic-pitch", "essentia")
ONSET_TOLERANCE_S = 0.05


def reference_notes(midi_path: Path, until_s: float) -> list[tuple[float, float, int]]:
    """The pitched notes of a MIDI file that start before ``until_s`` (the rendered audio's end)."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(midi_path))
    return sorted((n.start, n.end, n.pitch) for inst in pm.instruments if not inst.is_drum for n in inst.notes
                  if n.start < until_s)


def note_scores(ref: list[tuple[float, float, int]], est: list[tuple[float, float, int]]) -> tuple[float, float, float]:
    """(precision, recall, F) of onset + pitch matching (±50 ms, 50 cents)."""
    import mir_eval

    if not ref or not est:
        return 0.0, 0.0, 0.0
    ri = np.array([[a, max(b, a + 1e-3)] for a, b, _ in ref])
    ei = np.array([[a, max(b, a + 1e-3)] for a, b, _ in est])
    rp = mir_eval.util.midi_to_hz(np.array([p for *_, p in ref], dtype=float))
    ep = mir_eval.util.midi_to_hz(np.array([p for *_, p in est], dtype=float))
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=ONSET_TOLERANCE_S,
                                                                    offset_ratio=None)
    return float(p), float(r), float(f)


def _essentia_line(x44: np.ndarray) -> list[tuple[float, float, int]]:
    import essentia.standard as es

    x = np.ascontiguousarray(x44, dtype=np.float32)
    x = es.EqualLoudness()(x)
    pitch, _ = es.PitchMelodia(minFrequency=30.0, maxFrequency=1000.0)(x)
    onsets, durations, notes = es.PitchContourSegmentation()(pitch, x)
    return [(float(o), float(o + d), int(n)) for o, d, n in zip(onsets, durations, notes)]


class Engines:
    def __init__(self):
        from sat_mir.models import basic_pitch

        self.bp = basic_pitch
        self.model = basic_pitch.load_transcriber()
        self.cpu_s: dict[str, float] = {}  # engine -> CPU seconds
        self.audio_s: dict[str, float] = {}  # engine -> seconds of audio transcribed

    def timed(self, engine: str, part: str, x44: np.ndarray, sr: int) -> list[tuple[float, float, int]] | None:
        import time

        t0 = time.process_time()
        out = self.run(engine, part, x44, sr)
        if out is not None:
            self.cpu_s[engine] = self.cpu_s.get(engine, 0.0) + time.process_time() - t0
            self.audio_s[engine] = self.audio_s.get(engine, 0.0) + len(x44) / sr
        return out

    def run(self, engine: str, part: str, x44: np.ndarray, sr: int) -> list[tuple[float, float, int]] | None:
        import soxr

        from sat_mir.features.notes_midi import transcribe

        mono = soxr.resample(x44, sr, self.bp.SAMPLE_RATE, "HQ").astype(np.float32)
        if engine == "sat-mir":
            return [(n.start_s, n.end_s, n.pitch) for n in transcribe(mono, self.model, line=part == "bass")]
        if engine == "basic-pitch":
            return [(n.start_s, n.end_s, n.pitch) for n in self.model.notes(mono)]
        if engine == "essentia":
            return _essentia_line(x44) if part == "bass" else None
        raise ValueError(engine)


def score_corpus(corpus: Path, *, songs: int | None = None) -> dict[tuple[str, str], list[tuple[float, float, float]]]:
    import soundfile as sf

    engines = Engines()
    rows: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    folders = sorted((corpus / "midi").iterdir())[:songs]
    for k, folder in enumerate(folders):
        for part in PARTS:
            midi, audio = folder / f"{part}.mid", corpus / "library" / folder.name / f"{part}.flac"
            if not midi.is_file() or not audio.is_file():
                continue
            x, sr = sf.read(audio, dtype="float32", always_2d=True)
            x = x.mean(axis=1)
            ref = reference_notes(midi, len(x) / sr - 0.1)
            if not ref:
                continue
            for engine in ENGINES:
                est = engines.timed(engine, part, x, sr)
                if est is not None:
                    rows.setdefault((engine, part), []).append(note_scores(ref, est))
        print(f"\r{k + 1}/{len(folders)} songs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    for engine, cpu in engines.cpu_s.items():  # all threads' CPU time: with OMP_NUM_THREADS=1, one core's
        print(f"{engine}: {cpu:.1f} s CPU for {engines.audio_s[engine]:.0f} s of stems = "
              f"{engines.audio_s[engine] / cpu:.1f}x real time", file=sys.stderr)
    return rows


def table(rows: dict[tuple[str, str], list[tuple[float, float, float]]]) -> str:
    lines = ["| part | metric | " + " | ".join(ENGINES) + " |", "|---|---|" + "---|" * len(ENGINES)]
    for part in PARTS:
        n = max((len(v) for (e, p), v in rows.items() if p == part), default=0)
        for i, metric in enumerate(("precision", "recall", "F-measure")):
            cells = []
            for engine in ENGINES:
                v = rows.get((engine, part))
                cells.append(f"{np.mean([r[i] for r in v]):.3f}" if v else "—")
            lines.append(f"| {part} ({n} songs) | {metric} | " + " | ".join(cells) + " |")
        f = rows.get(("sat-mir", part))
        if f:
            lines.append(f"| {part} | songs with F ≥ 0.8 | {np.mean([r[2] >= 0.8 for r in f]) * 100:.1f} % | "
                         + " | ".join("" for _ in ENGINES[1:]) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--songs", type=int, default=None, help="only the first N songs")
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.WARNING)
    md = table(score_corpus(args.corpus, songs=args.songs))
    print(md)
    if args.markdown:
        args.markdown.write_text(md + "\n")


if __name__ == "__main__":
    main()
