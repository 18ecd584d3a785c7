"""Fit the weights of the metrical analysis (``sat_mir/features/metrical.py``) on training
corpora rendered by ``tools/make_eval_corpus.py``, and write ``metrical_weights.json``.

    .venv/bin/python tools/fit_metrical.py CORPUS [CORPUS ...] [--out sat_mir/features/metrical_weights.json]
        [--jobs 2] [--l2 0.1] [--check EVAL_CORPUS]

Use corpora rendered with seeds other than the evaluation corpus's (the project's weights come
from seeds 1 and 2; ``tools/score_facts.py`` reports on seed 0).  Every song is analysed twice,
with its stems and on the mix alone, so the weights serve both.

Labels: a beat candidate is right when its tempo is within 4 % of the truth and its beat
F-measure (mir_eval, ±70 ms) is at least 0.8.  The bar hypotheses are scored on the beats of
the best right candidate (songs without one are left out of the bar model): (pulses per bar,
phase) is right when the pulses per bar are the truth's and the downbeats it gives reach a
downbeat F-measure of at least 0.9.  Both models are conditional logits (a softmax over one
song's hypotheses) with an L2 penalty on standardised features.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

STEMS = ("drums", "bass", "other", "vocals")


def song_rows(args: tuple[str, str, bool]) -> dict:
    """Level and meter hypotheses of one song (one mode), with features and labels."""
    import mir_eval

    from sat_mir.audio import TrackContext
    from sat_mir.features import metrical as mt
    from sat_mir.features.rhythm import rhythm_inputs

    folder, truth_path, stems = Path(args[0]), Path(args[1]), args[2]
    truth = json.loads(truth_path.read_text())
    sources = {"mix": folder / "full_mix.flac"}
    if stems:
        sources.update({s: folder / f"{s}.flac" for s in STEMS if (folder / f"{s}.flac").exists()})
    ctx = TrackContext(sources)
    inp = rhythm_inputs(ctx, use_stems=stems)
    cands = mt.beat_candidates(inp)
    if not cands:
        return {"id": truth["id"], "level": None, "meter": None}
    acf = mt.periodicity(inp.env, int(8 * inp.fps))
    ref_beats = mir_eval.beat.trim_beats(np.asarray(truth["beats"]))
    X, y, fs = [], [], []
    for c in cands:
        beats = np.maximum(c.frames - inp.latency, 0.0) / inp.fps
        f = float(mir_eval.beat.f_measure(ref_beats, mir_eval.beat.trim_beats(beats)))
        X.append(mt.level_features(inp, c, acf))
        y.append(abs(c.bpm / truth["bpm"] - 1.0) <= 0.04 and f >= 0.8)
        fs.append(f)
    out = {"id": truth["id"], "level": (np.stack(X).tolist(), y), "meter": None}
    right = [i for i in range(len(cands)) if y[i]]
    if right:
        best = cands[max(right, key=lambda i: fs[i])]
        beats = np.maximum(best.frames - inp.latency, 0.0) / inp.fps
        hyps = mt.meter_hypotheses(beats.size)
        if hyps:
            bs = mt.beat_sync(inp, beats)
            first = mt.first_sounding(inp.env, best.frames)
            ref_db = mir_eval.beat.trim_beats(np.asarray(truth["downbeats"]))
            Xm, ym = [], []
            for m, phase in hyps:
                Xm.append(mt.meter_features(bs, m, phase, first))
                est = mir_eval.beat.trim_beats(beats[phase::m])
                ok = m == truth["pulses_per_bar"] and est.size > 0 and ref_db.size > 0 and float(
                    mir_eval.beat.f_measure(ref_db, est)) >= 0.9
                ym.append(ok)
            out["meter"] = (np.stack(Xm).tolist(), ym)
    return out


def collect(corpora: list[Path], jobs: int) -> list[dict]:
    args = []
    for corpus in corpora:
        for t in sorted((corpus / "truth").glob("*.json")):
            for stems in (True, False):
                args.append((str(corpus / "library" / t.stem), str(t), stems))
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(song_rows, args, chunksize=2))


def fit(groups: list[tuple[np.ndarray, np.ndarray]], l2: float) -> dict:
    from scipy.optimize import minimize

    groups = [(X, y) for X, y in groups if y.any()]
    allx = np.concatenate([X for X, _ in groups])
    mean, scale = allx.mean(axis=0), allx.std(axis=0)
    scale[scale < 1e-9] = 1.0
    zs = [((X - mean) / scale, y) for X, y in groups]

    def loss(w):
        total, grad = 0.0, np.zeros_like(w)
        for Z, y in zs:
            z = Z @ w
            z -= z.max()
            p = np.exp(z)
            p /= p.sum()
            py = p[y].sum()
            total -= np.log(py + 1e-12)
            grad -= (p[y] @ Z[y]) / (py + 1e-12) - p @ Z
        return total + l2 * float(w @ w), grad + 2 * l2 * w

    w = minimize(loss, np.zeros(allx.shape[1]), jac=True, method="L-BFGS-B").x
    return {"mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(), "weights": w.round(6).tolist()}


def accuracy(groups: list[tuple[np.ndarray, np.ndarray]], model: dict) -> float:
    from sat_mir.features.metrical import choose

    return float(np.mean([y[int(np.argmax(choose(X, model)))] for X, y in groups])) if groups else float("nan")


def groups_of(rows: list[dict], key: str) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.asarray(r[key][0]), np.asarray(r[key][1], bool)) for r in rows if r[key]]


def main() -> None:
    from sat_mir.features.metrical import LEVEL_FEATURES, METER_FEATURES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpora", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=Path("sat_mir/features/metrical_weights.json"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--l2", type=float, default=0.1)
    ap.add_argument("--check", type=Path, help="an evaluation corpus to report held-out accuracy on")
    args = ap.parse_args()
    rows = collect(args.corpora, args.jobs)
    level, meter = groups_of(rows, "level"), groups_of(rows, "meter")
    model = {"level": {"features": list(LEVEL_FEATURES), **fit(level, args.l2)},
             "meter": {"features": list(METER_FEATURES), **fit(meter, args.l2)}}
    model["fitted_on"] = {
        "corpora": [c.name for c in args.corpora], "songs": len(rows) // 2, "l2": args.l2,
        "level_train_accuracy": round(accuracy(level, model["level"]), 4),
        "meter_train_accuracy": round(accuracy(meter, model["meter"]), 4),
        "reachable": {"level": round(float(np.mean([y.any() for _, y in level])), 4),
                      "meter": round(float(np.mean([y.any() for _, y in meter])), 4)},
    }
    args.out.write_text(json.dumps(model, indent=1) + "\n")
    print(json.dumps(model["fitted_on"], indent=1))
    if args.check:
        held = collect([args.check], args.jobs)
        print("held-out", args.check.name, "level", round(accuracy(groups_of(held, "level"), model["level"]), 4),
              "meter", round(accuracy(groups_of(held, "meter"), model["meter"]), 4))


if __name__ == "__main__":
    main()
