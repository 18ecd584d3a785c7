"""Score tempo, beats, downbeats, meter, key, chords and div4 crops against the truth of an
evaluation corpus (``tools/make_eval_corpus.py``), for sat-mir and its peers on the same audio.

    .venv/bin/python tools/score_facts.py CORPUS [--engines sat-mir,sat-mir-mix,librosa,essentia]
        [--jobs 2] [--songs N] [--markdown OUT.md] [--per-song OUT.csv]

Engines:
  sat-mir      the rhythm, tonal and chords extractors on the mix and its stems
  sat-mir-mix  the same on the mix alone (as for a library with no stems and no Demucs weights)
  librosa      ``librosa.beat.beat_track`` (tempo, beats)
  essentia     ``RhythmExtractor2013(method="multifeature")`` (tempo, beats),
               ``KeyExtractor(profileType="edma")`` (key), HPCP + ``ChordsDetectionBeats`` (chords, maj/min)

Metrics (MIREX conventions, computed with mir_eval where it has them):
  tempo Acc1   estimate within 4 % of the truth; Acc2 also accepts ×2, ×½, ×3, ×⅓
  beat F       mir_eval.beat.f_measure (±70 ms; beats in the first 5 s ignored), mean over songs
  beat error   how far the beats that beat F counts as hits land from their true beats: each
               song's median distance (ms), median over songs (the window hides it; cuts do not)
  downbeat F   the same on downbeats; also the share of songs with F ≥ 0.8
  meter        beats per bar equal to the time signature's numerator (6 for 6/8, 12 for 12/8);
               "up to notation" also accepts 2 for 4, 4 for 2, 6 for 12 and 12 for 6
  key          exact tonic and mode; MIREX weighted score (fifth 0.5, relative 0.3, parallel 0.2)
  chords       weighted chord-symbol recall over the whole corpus (mir_eval.chord root, majmin,
               sevenths, mirex): the duration of correct chords over the total duration
  crops        share of ``crops=div4`` crops (11.9 s, as the demo cuts them, bars of 2 beats in
               pairs) whose two ends lie within 70 ms of true bar lines a multiple of 4 true
               bars apart (the downbeats, and the end of the last bar where the truth holds
               all its beats).  As the cutter does, a song whose tempo, meter or downbeat
               confidence is below ``crops.min_*_confidence`` is cut in sequence, not in div4
               crops; the share of such songs, and the div4 figure with every grid cut on, are
               printed too;
               and where the right crops start: the share more than 10 ms after their true
               downbeat (the cut takes the start of the notes' attack) and the songs' median
A value an engine leaves out (below its confidence) counts as wrong in the headline figures;
``coverage`` says how often each fact was stated.  Never asserts; prints a table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from sat_mir.run.allocator import keep_freed_memory  # noqa: E402

ENGINES = ("sat-mir", "sat-mir-mix", "librosa", "essentia")
PEERS = ("librosa", "essentia")  # results cached: they do not change with our code
CROP_LENGTH, CROP_MIN = 524288, 262144  # the demo's crops: 11.9 s, at least half of it
# a crop cut this long after its downbeat's notes start has taken the first part of their attack
# (a sampled drum is at a fifth of its peak 4 ms after its note starts, at its peak about 10 ms after:
# the median over the `cal` corpus's drums stems)
LATE_CUT_MS = 10.0
STEMS = ("drums", "bass", "other", "vocals")
# Beats per bar that sound alike and differ in how the music is written: 2/4 against 4/4 (two
# bars of one are one bar of the other), 6/8 against 12/8.
NOTATION_PAIRS = {(2, 4), (4, 2), (6, 12), (12, 6)}


# ------------------------------------------------------------------------------------------
# engines: song folder -> {bpm, beats, downbeats, beats_per_bar, key, chords, ...}


def run_sat_mir(folder: Path, *, stems: bool) -> dict:
    from sat_mir.audio import TrackContext
    from sat_mir.features import REGISTRY

    sources = {"mix": folder / "full_mix.flac"}
    if stems:
        sources.update({s: folder / f"{s}.flac" for s in STEMS if (folder / f"{s}.flac").exists()})
    ctx = TrackContext(sources)
    out: dict = {"errors": {}}
    values: dict = {}
    for name in ("rhythm", "tonal", "chords"):
        if name not in REGISTRY:
            continue
        try:
            res = REGISTRY[name]().compute(ctx)
        except Exception as exc:  # noqa: BLE001 - a failure is scored as a miss
            out["errors"][name] = str(exc)
            continue
        values.update(res.values)
        for fname, text in res.artifacts.items():
            if fname in ("beats.txt", "downbeats.txt") and isinstance(text, str):
                out[fname.split(".")[0]] = [float(t) for t in text.split()]
            if fname == "chords.lab" and isinstance(text, str):
                out["chords"] = [[float(a), float(b), lab] for a, b, lab in
                                 (line.split("\t") for line in text.splitlines() if line.strip())]
    out["bpm"] = values.get("bpm")
    out["beats_per_bar"] = values.get("beats_per_bar")
    out["key"] = values.get("key")
    out["values"] = {k: v for k, v in values.items() if not k.startswith(("chroma_", "hpcp_", "tiv_"))}
    out["mix"] = str(sources["mix"])
    return out


def run_librosa(folder: Path) -> dict:
    import librosa

    y, sr = librosa.load(folder / "full_mix.flac", sr=22050, mono=True)
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return {"bpm": float(np.atleast_1d(tempo)[0]), "beats": [float(t) for t in beats]}


def run_essentia(folder: Path) -> dict:
    import essentia

    essentia.log.infoActive = False
    import essentia.standard as es

    audio = es.MonoLoader(filename=str(folder / "full_mix.flac"), sampleRate=44100)()
    bpm, ticks, _, _, _ = es.RhythmExtractor2013(method="multifeature")(audio)
    key, scale, strength = es.KeyExtractor(profileType="edma")(audio)
    # chords as Essentia's MusicExtractor computes them: HPCP frames, then ChordsDetectionBeats
    frame, hop = 4096, 2048
    window = es.Windowing(type="blackmanharris62")
    spectrum = es.Spectrum()
    peaks = es.SpectralPeaks(orderBy="magnitude", magnitudeThreshold=0.00001, minFrequency=20, maxFrequency=3500,
                             maxPeaks=60)
    hpcp = es.HPCP(size=36, referenceFrequency=440, bandPreset=False, minFrequency=20, maxFrequency=3500,
                   weightType="cosine", nonLinear=False, windowSize=1.0)
    frames = []
    for f in es.FrameGenerator(audio, frameSize=frame, hopSize=hop, startFromZero=True):
        fr, mg = peaks(spectrum(window(f)))
        frames.append(hpcp(fr, mg))
    chords_out = []
    if len(ticks) > 2:
        labels, _ = es.ChordsDetectionBeats(hopSize=hop, sampleRate=44100)(np.array(frames, dtype=np.float32), ticks)
        for a, b, lab in zip(ticks[:-1], ticks[1:], labels):
            chords_out.append([float(a), float(b), _essentia_chord(lab)])
    return {"bpm": float(bpm), "beats": [float(t) for t in ticks], "key": f"{key} {scale}",
            "chords": chords_out}


def _essentia_chord(label: str) -> str:
    """Essentia's "Am" / "F#" → Harte "A:min" / "F#:maj"."""
    if label.endswith("m"):
        return f"{label[:-1]}:min"
    return f"{label}:maj"


def run_engine(engine: str, folder: Path) -> dict:
    if engine == "sat-mir":
        return run_sat_mir(folder, stems=True)
    if engine == "sat-mir-mix":
        return run_sat_mir(folder, stems=False)
    if engine == "librosa":
        return run_librosa(folder)
    if engine == "essentia":
        return run_essentia(folder)
    raise SystemExit(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")


# ------------------------------------------------------------------------------------------
# scoring


def tempo_ok(est, ref: float) -> tuple[bool, bool]:
    if not est or not np.isfinite(est) or est <= 0:
        return False, False
    acc1 = abs(est / ref - 1.0) <= 0.04
    acc2 = any(abs(est * f / ref - 1.0) <= 0.04 for f in (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0))
    return acc1, acc2


def _trimmed(ref: list[float], est: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """True and estimated beats without the first 5 s (mir_eval's beat conventions)."""
    import mir_eval

    return mir_eval.beat.trim_beats(np.asarray(ref)), mir_eval.beat.trim_beats(np.asarray(sorted(est)))


def beat_f(ref: list[float], est: list[float] | None) -> float:
    import mir_eval

    if not est:
        return 0.0
    r, e = _trimmed(ref, est)
    if r.size == 0:
        return float("nan")
    return float(mir_eval.beat.f_measure(r, e)) if e.size else 0.0


def beat_cemgil(ref: list[float], est: list[float] | None) -> float:
    """Cemgil's beat accuracy (mir_eval, a Gaussian of 40 ms around each true beat): unlike beat
    F's 70-ms window it pays for how close each beat lands."""
    import mir_eval

    if not est:
        return 0.0
    r, e = _trimmed(ref, est)
    if r.size == 0:
        return float("nan")
    return float(mir_eval.beat.cemgil(r, e)[0]) if e.size else 0.0


def beat_error_ms(ref: list[float], est: list[float] | None, window: float = 0.07) -> float | None:
    """Median distance (ms) of the beats that beat F counts as hits (within ``window`` of a true
    beat, both trimmed as beat F trims them) from their true beat: how precisely the hits land,
    which the F-measure's window hides.  ``None`` without a hit."""
    if not est:
        return None
    r, e = _trimmed(ref, est)
    if r.size == 0 or e.size == 0:
        return None
    d = np.min(np.abs(e[:, None] - r[None, :]), axis=1)
    hits = d[d <= window]
    return float(1000.0 * np.median(hits)) if hits.size else None


def key_scores(est: str | None, ref: str) -> tuple[float, float]:
    import mir_eval

    if not est:
        return 0.0, 0.0
    est = est.replace("Db", "C#").replace("Eb", "D#").replace("Gb", "F#").replace("Ab", "G#").replace("Bb", "A#")
    return float(est == ref), float(mir_eval.key.weighted_score(ref, est))


CHORD_METRICS = ("root", "majmin", "sevenths", "mirex")


def chord_scores(est: list | None, ref: list) -> dict[str, tuple[float, float]]:
    """metric -> (correct seconds, scored seconds) for one song."""
    import mir_eval

    ref_iv = np.array([[a, b] for a, b, _ in ref], dtype=float)
    ref_lab = [lab for _, _, lab in ref]
    end = float(ref_iv[-1, 1])
    if not est:
        est_iv, est_lab = np.array([[0.0, end]]), ["N"]
    else:
        est_iv = np.array([[a, b] for a, b, _ in est], dtype=float)
        est_lab = [lab for _, _, lab in est]
    est_iv, est_lab = mir_eval.util.adjust_intervals(est_iv, est_lab, ref_iv.min(), ref_iv.max(),
                                                     mir_eval.chord.NO_CHORD, mir_eval.chord.NO_CHORD)
    iv, r, e = mir_eval.util.merge_labeled_intervals(ref_iv, ref_lab, est_iv, est_lab)
    dur = mir_eval.util.intervals_to_durations(iv)
    out = {}
    for m in CHORD_METRICS:
        comp = getattr(mir_eval.chord, m)(r, e)
        valid = comp >= 0
        out[m] = (float(np.sum(dur[valid] * comp[valid])), float(np.sum(dur[valid])))
    return out


def bar_lines(truth: dict) -> np.ndarray:
    """The true downbeats, and the end of the last bar where the truth holds all its beats (a
    crop may end with the song's last bar: that is a bar line too, though no downbeat follows)."""
    downbeats = np.asarray(truth["downbeats"], dtype=np.float64)
    beats = np.asarray(truth["beats"], dtype=np.float64)
    pulses = truth.get("pulses_per_bar")
    if downbeats.size < 2 or not pulses or beats.size < 2:
        return downbeats
    last = beats[beats >= downbeats[-1] - 1e-3]
    if last.size != pulses:
        return downbeats
    period = float(np.median(np.diff(beats[-(pulses + 1):])))
    return np.append(downbeats, last[-1] + period)


def crop_score(est_downbeats: list[float] | None, truth: dict, mix_path: Path, pulses: int | None = None,
               pair_phase: int | None = None) -> tuple[int, int, list[float]]:
    """(crops holding a multiple of 4 true bars, crops, where those crops start in ms from their
    true downbeat) of div4 crops cut on ``est_downbeats`` the way the cutter cuts them (bars of
    ``pulses`` = 2 beats counted in pairs, from the downbeat ``pair_phase`` says, each cut moved
    to the nearest zero crossing)."""
    import soundfile as sf

    from sat_mir.crops.plan import bar_multiple_for, plan_crops

    if not est_downbeats or len(est_downbeats) < 2:
        return 0, 0, []
    x, sr = sf.read(mix_path, dtype="float32", always_2d=True)
    spans = plan_crops("div4", x.mean(axis=1), sr=sr, length=CROP_LENGTH, min_length=CROP_MIN,
                       downbeats_s=np.asarray(est_downbeats), bar_multiple=bar_multiple_for(4, pulses),
                       pair_phase=pair_phase if pulses == 2 else None)
    true = bar_lines(truth)
    good, starts = 0, []
    for s in spans:
        a, b = s.grid_start, s.grid_end
        ia, ib = int(np.argmin(np.abs(true - a))), int(np.argmin(np.abs(true - b)))
        if abs(true[ia] - a) <= 0.07 and abs(true[ib] - b) <= 0.07 and ib > ia and (ib - ia) % 4 == 0:
            good += 1
            starts.append(1000.0 * (s.start / sr - true[ia]))
    return good, len(spans), starts


def score_song(truth: dict, est: dict, mix_path: Path) -> dict:
    acc1, acc2 = tempo_ok(est.get("bpm"), truth["bpm"])
    row = {"id": truth["id"], "style": truth["style"], "meter": truth["meter"], "true_bpm": truth["bpm"],
           "bpm": est.get("bpm"), "acc1": acc1, "acc2": acc2, "beat_f": beat_f(truth["beats"], est.get("beats")),
           "beat_err_ms": beat_error_ms(truth["beats"], est.get("beats")),
           "beat_cemgil": beat_cemgil(truth["beats"], est.get("beats"))}
    if "downbeats" in est:
        row["downbeat_f"] = beat_f(truth["downbeats"], est.get("downbeats"))
    if "beats_per_bar" in est:
        row["beats_per_bar"] = est.get("beats_per_bar")
        row["meter_ok"] = est.get("beats_per_bar") == truth["beats_per_bar"]
        row["meter_notation_ok"] = row["meter_ok"] or (est.get("beats_per_bar"), truth["beats_per_bar"]) in NOTATION_PAIRS
    if "key" in est and truth.get("key"):  # a piece whose key the score leaves open is not scored on it
        row["true_key"], row["key"] = truth["key"], est.get("key")
        row["key_ok"], row["key_weighted"] = key_scores(est.get("key"), truth["key"])
    if "chords" in est and truth.get("chords"):
        for m, (c, t) in chord_scores(est.get("chords"), truth["chords"]).items():
            row[f"chord_{m}_s"], row["chord_total_s"] = c, t
    if "downbeats" in est:
        from sat_mir.crops.cut import CropSettings
        from sat_mir.crops.plan import grid_doubt, pulses_per_bar

        values = est.get("values") or {}
        pulses = pulses_per_bar(est.get("beats_per_bar"), values.get("time_signature"))
        row["crops_all_good"], row["crops_all"], starts = crop_score(est.get("downbeats"), truth, mix_path, pulses,
                                                                     values.get("bar_pair_phase"))
        # as the cutter does: a grid below its confidence is cut in sequence, with no bar claimed
        row["grid_doubted"] = grid_doubt(values, CropSettings().min_confidence) is not None
        row["crops_good"], row["crops"] = (0, 0) if row["grid_doubted"] else \
            (row["crops_all_good"], row["crops_all"])
        if row["crops_good"]:  # the good crops' starts: after the note's start by more than
            # LATE_CUT_MS, the cut has taken the first part of the downbeat's attack
            row["crops_start_ms"] = float(np.median(starts))
            row["crops_late"] = int(np.sum(np.asarray(starts) > LATE_CUT_MS))
    for k in ("bpm", "beats_per_bar", "key"):
        if k in est and (k != "key" or truth.get("key")):
            row[f"{k}_stated"] = est.get(k) is not None
    for k in ("tempo_confidence", "meter_confidence", "key_strength", "key_confidence", "chord_confidence",
              "time_signature", "beat_tracker"):
        if k in (est.get("values") or {}):
            row[k] = est["values"][k]
    return row


def _job(args: tuple[str, str, str, bool]) -> dict:
    engine, folder, truth_path, use_cache = args
    folder, truth_path = Path(folder), Path(truth_path)
    truth = json.loads(truth_path.read_text())
    cache = truth_path.parent.parent / "scores" / engine / f"{truth['id']}.json"
    if use_cache and cache.exists():
        est = json.loads(cache.read_text())
    else:
        est = run_engine(engine, folder)
        if engine in PEERS:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(est))
    row = score_song(truth, est, folder / "full_mix.flac")
    row["engine"] = engine
    return row


def summarise(rows: list[dict]) -> dict[str, float | str]:
    def mean(key, cond=lambda r: True):
        vals = [float(r[key]) for r in rows if key in r and cond(r) and r[key] is not None and
                not (isinstance(r[key], float) and np.isnan(r[key]))]
        return float(np.mean(vals)) if vals else None

    out: dict = {"songs": len(rows), "tempo Acc1": mean("acc1"), "tempo Acc2": mean("acc2"),
                 "beat F": mean("beat_f"), "beat Cemgil accuracy": mean("beat_cemgil")}
    errs = [r["beat_err_ms"] for r in rows if r.get("beat_err_ms") is not None]
    if errs:
        out["beat error of the hits, median of songs (ms)"] = f"{np.median(errs):.1f}"
    if any("downbeat_f" in r for r in rows):
        out["downbeat F"] = mean("downbeat_f")
        f = [r["downbeat_f"] for r in rows if "downbeat_f" in r]
        out["songs with downbeat F >= 0.8"] = float(np.mean(np.array(f) >= 0.8))
    if any("meter_ok" in r for r in rows):
        out["meter"] = mean("meter_ok")
        out["meter up to notation"] = mean("meter_notation_ok")
    if any("key_ok" in r for r in rows):
        out["key exact"] = mean("key_ok")
        out["key MIREX weighted"] = mean("key_weighted")
    if any("chord_total_s" in r for r in rows):
        total = sum(r["chord_total_s"] for r in rows if "chord_total_s" in r)
        for m in CHORD_METRICS:
            out[f"chords {m} (WCSR)"] = sum(r.get(f"chord_{m}_s", 0.0) for r in rows) / max(total, 1e-9)
    if any("crops" in r for r in rows):
        n = sum(r["crops"] for r in rows if "crops" in r)
        out["div4 crops with 4k true bars"] = sum(r["crops_good"] for r in rows if "crops" in r) / n if n else None
        out["div4 crops cut"] = n
        out["songs cut in sequence (grid below its confidence)"] = mean("grid_doubted")
        n_all = sum(r["crops_all"] for r in rows if "crops_all" in r)
        out["div4 crops with 4k true bars, every grid cut on"] = \
            sum(r["crops_all_good"] for r in rows if "crops_all" in r) / n_all if n_all else None
        n_good = sum(r["crops_good"] for r in rows if "crops" in r)
        if n_good:
            out[f"div4 crops starting > {LATE_CUT_MS:.0f} ms after their downbeat's notes"] = \
                sum(r.get("crops_late", 0) for r in rows) / n_good
            out["div4 crop start from its downbeat, median of songs (ms)"] = \
                f"{np.median([r['crops_start_ms'] for r in rows if 'crops_start_ms' in r]):+.1f}"
    for k, label in (("bpm_stated", "coverage bpm"), ("beats_per_bar_stated", "coverage meter"),
                     ("key_stated", "coverage key")):
        if any(k in r for r in rows):
            out[label] = mean(k)
    return out


def table(summaries: dict[str, dict]) -> str:
    engines = list(summaries)
    metrics: list[str] = []
    for s in summaries.values():
        metrics += [m for m in s if m not in metrics]
    lines = ["| metric | " + " | ".join(engines) + " |", "|---|" + "---|" * len(engines)]
    for m in metrics:
        cells = []
        for e in engines:
            v = summaries[e].get(m)
            if v is None:
                cells.append("—")
            elif isinstance(v, str):
                cells.append(v)
            elif m in ("songs", "div4 crops cut"):
                cells.append(str(int(v)))
            elif m.startswith(("tempo", "meter", "key exact", "songs with", "songs cut", "div4", "coverage", "chords")):
                cells.append(f"{100 * v:.1f} %")
            else:
                cells.append(f"{v:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--engines", default="sat-mir,sat-mir-mix,librosa,essentia")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--songs", type=int, default=0, help="score only the first N songs (0 = all)")
    ap.add_argument("--only", default="", help="comma-separated song ids")
    ap.add_argument("--no-cache", action="store_true", help="recompute the peers too")
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--per-song", type=Path)
    args = ap.parse_args()
    truths = sorted((args.corpus / "truth").glob("*.json"))
    if args.only:
        wanted = set(args.only.split(","))
        truths = [t for t in truths if t.stem in wanted]
    if args.songs:
        truths = truths[: args.songs]
    engines = [e for e in args.engines.split(",") if e]
    jobs = [(e, str(args.corpus / "library" / t.stem), str(t), not args.no_cache) for e in engines for t in truths]
    with ProcessPoolExecutor(args.jobs, initializer=keep_freed_memory) as pool:  # as a worker does
        rows = list(pool.map(_job, jobs, chunksize=1))
    by_engine = {e: [r for r in rows if r["engine"] == e] for e in engines}
    summaries = {e: summarise(rs) for e, rs in by_engine.items()}
    text = table(summaries)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if args.per_song:
        keys = sorted({k for r in rows for k in r})
        with open(args.per_song, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
