"""Fit the key model (``sat_mir/features/key_model.py``) on corpora rendered by
``tools/make_eval_corpus.py`` or ``tools/make_human_corpus.py``, and write ``key_weights.json``.

    .venv/bin/python tools/fit_key.py CORPUS [CORPUS ...] --rows CACHE [--collect-only]
    .venv/bin/python tools/fit_key.py --rows CACHE [--rows CACHE ...] [--repeat CORPUS=N] [--l2 0.3]
        [--check CACHE] [--calibrate CACHE ...] [--out sat_mir/features/key_weights.json]

Every song is read twice, with its stems and on the mix alone, by the ``tonal`` extractor
(``Tonal.key_cues``): each of the model's cues scores all 24 keys.  With corpora named, their
rows (one per song and variant: the corpus, the song, the variant, the true key, the cues and
the hand-weighted key's answer) are written to ``--rows`` (``--collect-only`` stops there);
without, the ``--rows`` caches are read and fitted on together.  Songs whose truth names no key
are left out.

The model is a conditional logit: a key's score is the weighted sum of its cues, each
standardised over all songs' keys, and its probability a softmax over the 24 scores; the
weights minimise the negative log-likelihood of the true keys plus ``--l2`` × their squared
norm.  One set of weights is fitted for each variant (``stems``: the harmonic content is the
bass and other stems; ``mix``: the mix alone).  ``--repeat CORPUS=N`` counts a corpus's songs N
times; ``--check CACHE`` prints the accuracy on held-out rows beside the hand-weighted key's.
``--calibrate CACHE`` (repeatable) chooses each variant's temperature, which divides the scores
before the softmax, on held-out rows: the one (0.5 to 4, by 0.05) that minimises the mean of the
caches' negative log-likelihoods, each cache counted once.  It changes no answer, only how sure
each one is (``key_confidence``).

The shipped weights are fitted on ``sel`` (200 songs, seed 5), ``human-dev`` (the development
split's 160 human pieces) and 160 breakbeats, shuffles and swing songs (seed 7), each played
with FluidR3's and MuseScore's soundfonts: 824 songs and pieces with a key.  ``--l2`` 0.3 and no
``--repeat`` were chosen on four held-out sets (``dev12`` in three soundfonts and
``human-val``) among L2 penalties 0.1 to 3 and the human pieces counted 1 to 3 times; all
measured within a point of each other there, and all above the hand-weighted key
(``docs/eval.md``).  The temperatures (1.30 with stems, 1.20 on the mix alone) were chosen on
six held-out sets: ``dev12`` in three soundfonts, ``human-val``, and both played by a fourth
(``cs-dev12``, ``cs-human-val``)::

    .venv/bin/python tools/fit_key.py CORPORA/sel --rows rows/sel.json --collect-only   # one per corpus
    .venv/bin/python tools/fit_key.py --rows rows/sel.json --rows rows/ms-sel.json --rows rows/human-dev.json \
        --rows rows/ms-human-dev.json --rows rows/fl-bb.json --rows rows/ms-bb.json --rows rows/fl-sh.json \
        --rows rows/ms-sh.json --check rows/dev12.json --calibrate rows/dev12.json \
        --calibrate rows/ms-dev12.json --calibrate rows/tg-dev12.json --calibrate rows/cs-dev12.json \
        --calibrate rows/human-val.json --calibrate rows/cs-human-val.json
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

from sat_mir.run.allocator import keep_freed_memory  # noqa: E402

STEMS = ("drums", "bass", "other", "vocals")
VARIANTS = ("stems", "mix")
FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}


def key_index(key: str) -> int:
    """'A minor' -> 12 + 9: mode × 12 + tonic, the order of the cues' flattened ``[2, 12]``."""
    from sat_mir.features.tonal import PITCH_CLASSES

    tonic, mode = key.split()
    return (0 if mode == "major" else 12) + PITCH_CLASSES.index(FLATS.get(tonic, tonic))


def song_rows(args: tuple[str, str, bool]) -> dict | None:
    """One song's row in one variant: its cues, its true key and the hand-weighted key's answer."""
    from sat_mir.audio import TrackContext
    from sat_mir.errors import ExtractorError
    from sat_mir.features.tonal import Tonal

    folder, truth_path, stems = Path(args[0]), Path(args[1]), args[2]
    truth = json.loads(truth_path.read_text())
    if not truth.get("key"):
        return None
    sources = {"mix": folder / "full_mix.flac"}
    if stems:
        sources.update({s: folder / f"{s}.flac" for s in STEMS if (folder / f"{s}.flac").exists()})
    ctx = TrackContext(sources)
    try:
        variant, cues = Tonal().key_cues(ctx)
        hand = Tonal(Tonal.Config(key_model="profile")).compute(ctx).values["key"]
    except ExtractorError as exc:
        print(f"{folder.name}: {exc}")
        return None
    return {"corpus": folder.parent.parent.name, "id": truth["id"], "key": truth["key"], "variant": variant,
            "profile_key": hand, "cues": {name: np.asarray(v).ravel().round(6).tolist() for name, v in cues.items()}}


def collect(corpora: list[Path], jobs: int) -> list[dict]:
    args = [(str(corpus / "library" / t.stem), str(t), stems)
            for corpus in corpora for t in sorted((corpus / "truth").glob("*.json")) for stems in (True, False)]
    with ProcessPoolExecutor(jobs, initializer=keep_freed_memory) as pool:  # as a worker does
        return [r for r in pool.map(song_rows, args, chunksize=2) if r is not None]


def design(rows: list[dict], cues: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``X [songs, 24, cues]`` and the true keys' indices."""
    x = np.array([[r["cues"][name] for name in cues] for r in rows], dtype=np.float64).transpose(0, 2, 1)
    return x, np.array([key_index(r["key"]) for r in rows])


def _loss(w: np.ndarray, x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float):
    s = x @ w
    s = s - s.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    i = np.arange(y.size)
    grad = -(weight[:, None] * (x[i, y] - (np.exp(logp)[..., None] * x).sum(axis=1))).sum(axis=0)
    return -(weight * logp[i, y]).sum() + l2 * (w @ w), grad + 2.0 * l2 * w


def fit_variant(rows: list[dict], cues: list[str], l2: float, repeat: dict[str, int]) -> dict:
    """One variant's weights, standardisation included (``key_model.key_probabilities`` reads it)."""
    x, y = design(rows, cues)
    flat = x.reshape(-1, x.shape[2])
    mean, scale = flat.mean(axis=0), flat.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    weight = np.array([float(repeat.get(r["corpus"], 1)) for r in rows])
    res = minimize(_loss, np.zeros(len(cues)), args=(z, y, weight, l2), jac=True, method="L-BFGS-B")
    return {"cues": cues, "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
            "weights": res.x.round(6).tolist()}


def accuracy(rows: list[dict], variant: dict) -> tuple[float, float]:
    """(the model's, the hand-weighted key's) exact-key accuracy on ``rows``."""
    from sat_mir.features.key_model import key_probabilities

    ok = [int(np.argmax(key_probabilities({k: np.asarray(v).reshape(2, 12) for k, v in r["cues"].items()}, variant)))
          == key_index(r["key"]) for r in rows]
    return float(np.mean(ok)), float(np.mean([r["profile_key"] == r["key"] for r in rows]))


TEMPERATURES = np.round(np.arange(0.5, 4.0001, 0.05), 2)


def log_probabilities(rows: list[dict], variant: dict) -> np.ndarray:
    """``[songs, 24]``: each key's log-probability at temperature 1 (the variant's own ignored)."""
    from sat_mir.features.key_model import key_probabilities

    plain = {k: v for k, v in variant.items() if k != "temperature"}
    return np.log(np.maximum(np.stack([key_probabilities(
        {k: np.asarray(v).reshape(2, 12) for k, v in r["cues"].items()}, plain).ravel() for r in rows]), 1e-300))


def nll(logp: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true keys with the scores divided by ``temperature``
    (the log-probabilities at temperature 1 are the scores up to a constant per song)."""
    s = logp / temperature
    s = s - s.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(truth.size), truth]))


def calibrate(sets: dict[str, list[dict]], variant: dict) -> tuple[float, dict[str, tuple[float, float]]]:
    """The temperature (of :data:`TEMPERATURES`) that minimises the mean of the held-out sets'
    negative log-likelihoods, each set counted once whatever its size (a small set of human pieces
    weighs as much as a large rendered one); and each set's NLL at 1 and at that temperature."""
    data = {name: (log_probabilities(rows, variant), np.array([key_index(r["key"]) for r in rows]))
            for name, rows in sets.items() if rows}
    if not data:
        raise ValueError("no held-out rows to calibrate on")
    mean = [np.mean([nll(lp, y, t) for lp, y in data.values()]) for t in TEMPERATURES]
    best = float(TEMPERATURES[int(np.argmin(mean))])
    return best, {name: (nll(lp, y, 1.0), nll(lp, y, best)) for name, (lp, y) in data.items()}


def main() -> None:
    from sat_mir.features.key_model import CUES

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fit_metrical import parse_repeat  # the same --repeat as the metrical fit

    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("corpora", type=Path, nargs="*", help="corpora to collect the rows of (none: --rows caches)")
    ap.add_argument("--rows", type=Path, action="append", default=[],
                    help="with corpora, the cache their rows are written to; without, caches to fit on")
    ap.add_argument("--collect-only", action="store_true", help="write the corpora's rows to --rows and stop")
    ap.add_argument("--out", type=Path, default=Path("sat_mir/features/key_weights.json"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--l2", type=float, default=0.3, help="L2 penalty on the standardised cues' weights")
    ap.add_argument("--repeat", action="append", default=[], metavar="CORPUS=N",
                    help="count the songs of CORPUS (its folder name) N times")
    ap.add_argument("--check", type=Path, action="append", default=[], help="rows cache of held-out songs")
    ap.add_argument("--calibrate", type=Path, action="append", default=[], metavar="CACHE",
                    help="rows cache of held-out songs to choose each variant's temperature on (each cache "
                         "counts once); none: temperature 1")
    args = ap.parse_args()
    repeat = parse_repeat(ap, args.repeat)
    if not args.rows:
        ap.error("give --rows: the cache to write the corpora's rows to, or the caches to fit on")
    missing = [str(p) for p in ([] if args.corpora else args.rows) + args.check + args.calibrate if not p.exists()]
    if missing:
        ap.error(f"no such rows cache: {', '.join(missing)}")
    if args.corpora:
        if len(args.rows) > 1:
            ap.error("with corpora named, give one --rows cache to write")
        rows = collect(args.corpora, args.jobs)
        tmp = args.rows[0].with_name(args.rows[0].name + ".tmp")  # whole or not at all
        tmp.write_text(json.dumps(rows))
        tmp.replace(args.rows[0])
        print(f"{len(rows)} rows written to {args.rows[0]}")
        if args.collect_only:
            return
    else:
        if args.collect_only:
            ap.error("--collect-only needs the corpora to collect")
        rows = [r for path in args.rows for r in json.loads(path.read_text())]
    names = list(dict.fromkeys(r["corpus"] for r in rows))
    unknown = set(repeat) - set(names)
    if unknown:
        ap.error(f"--repeat: no rows from corpus {sorted(unknown)}")
    check = [r for path in args.check for r in json.loads(path.read_text())]
    calibration = {}
    for path in args.calibrate:  # each held-out set by the corpus its rows name
        held_rows = json.loads(path.read_text())
        calibration[held_rows[0]["corpus"] if held_rows else path.stem] = held_rows
    model: dict = {"fitted_on": names, "l2": args.l2, "repeat": repeat}
    if calibration:
        model["calibrated_on"] = list(calibration)
    for variant in VARIANTS:
        these = [r for r in rows if r["variant"] == variant]
        if not these:
            ap.error(f"no rows of the {variant!r} variant")
        model[variant] = fit_variant(these, list(CUES), args.l2, repeat)
        fitted, hand = accuracy(these, model[variant])
        line = f"{variant}: {len(these)} songs, exact key {100 * fitted:.1f} % fitted ({100 * hand:.1f} % hand-weighted)"
        held = [r for r in check if r["variant"] == variant]
        if held:
            fitted, hand = accuracy(held, model[variant])
            line += f"; held out {len(held)}: {100 * fitted:.1f} % ({100 * hand:.1f} %)"
        print(line)
        if calibration:
            sets = {name: [r for r in rows_ if r["variant"] == variant] for name, rows_ in calibration.items()}
            if not any(sets.values()):
                ap.error(f"--calibrate: no rows of the {variant!r} variant")
            t, per = calibrate(sets, model[variant])
            model[variant]["temperature"] = t
            print(f"  temperature {t:.2f}; held-out NLL at 1 -> at {t:.2f}: "
                  + ", ".join(f"{name} {a:.3f} -> {b:.3f}" for name, (a, b) in per.items()))
    args.out.write_text(json.dumps(model, indent=1) + "\n")
    print(f"wrote {args.out} (fitted on {', '.join(names)})")


if __name__ == "__main__":
    main()
