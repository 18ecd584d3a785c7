"""Benchmark: throughput of the model-backed annotators (essentia, aesthetics, flamingo, drums_midi).

    .venv/bin/python tools/bench_annotators.py [--models-dir DIR] [--device auto|cpu|cuda] [--items 8] [--seconds 30]
    .venv/bin/python tools/bench_annotators.py --stand-in tiny --device cpu --items 2 --seconds 10
    .venv/bin/python tools/bench_annotators.py --stand-in full --only aesthetics,drums_midi   # real-size, random

Each annotator runs through its extractor's own ``compute_batch``, as the runner's model
phase calls it: ``--items`` synthetic tracks (stereo 44.1 kHz WAV files of ``--seconds``:
kick, snare and hi-hat on a drums stem, plus bass and chords on the mix) are written to a
temporary folder and decoded once; every timed batch then gets fresh ``TrackContext``\\ s whose
loader hands out those arrays, so the timings hold everything ``compute_batch`` does
(resampling to the model's rate, Essentia's embeddings, drums_midi's beat tracking of the
mix, MIDI writing, ...) but not file decoding, and no memoised result of an earlier batch
is reused.  The model is loaded once first, with the very call (and cache key) the extractor
uses, and that load is timed on its own; one single-item batch then warms up (first-call
allocations, kernels); then ``--items`` are timed in batches of ``--batch`` (the runner's
default is 8).  The loads are counted across the load, the warm-up and every batch, from the
"loaded ..." INFO records of ``sat_mir.models.*`` (and Music Flamingo's ``load_count()``),
so a cache miss between batches shows up as more than one load.

Weights:

- ``--models-dir DIR`` (default: ``SAT_MIR_MODELS`` or ``~/.cache/sat-mir/models``): the real
  models; an annotator whose files are missing is reported as skipped;
- ``--stand-in tiny``: the tools' stand-ins (``make_tiny_essentia``, ``make_tiny_audiobox``,
  ``make_tiny_flamingo``, ``make_tiny_adtof``) written to a temporary folder: checks the path,
  says little about real cost (except drums_midi, whose stand-in is full size);
- ``--stand-in full``: real architectures with random weights where a tool can build one:
  Audiobox Aesthetics' WavLM base (``make_tiny_audiobox --size base``, about 95 M parameters)
  and ADTOF's Frame_RNN (always full size).  Essentia's stand-ins are tiny TensorFlow graphs
  only, and a random 8 B Music Flamingo is not cheap to build (32 GB of float32 weights), so
  both are skipped there.

Music Flamingo's cost grows with the answer length (``--max-new-tokens``, default the
extractor's 500); a random-weight stand-in stops at arbitrary lengths, so its numbers say
nothing about the real model's.  Essentia's bundled libtensorflow picks its device itself
(``--device cpu`` hides CUDA from it with ``CUDA_VISIBLE_DEVICES=``); its device column says
where it ran.  Prints a table (load s, warm-up s, items/s, × real time = audio seconds per
wall second, loads) and never asserts on time.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ANNOTATORS = ("essentia", "aesthetics", "flamingo", "drums_midi")
SR = 44100
# the logger each model module reports its loads on (a "loaded ..." INFO record per load)
LOGGERS = {
    "essentia": "sat_mir.models.essentia",
    "aesthetics": "sat_mir.models.audiobox",
    "flamingo": "sat_mir.models.flamingo",
    "drums_midi": "sat_mir.models.adtof",
}


# --------------------------------------------------------------------------- audio


def synthetic_item(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mix, drums), stereo float32 ``[2, frames]`` at 44.1 kHz; tempo and pitches vary with ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    beat = 60.0 / (96 + 4 * (seed % 10))
    pos = np.mod(t, beat)  # time since the last beat
    beat_no = np.floor(t / beat).astype(np.int64)
    kick = 0.6 * np.sin(2 * np.pi * 55 * pos * (1 + 2 * np.exp(-30 * pos))) * np.exp(-12 * pos)
    snare = 0.3 * rng.standard_normal(n) * np.exp(-25 * pos) * (beat_no % 2 == 1)
    hat_pos = np.mod(t, beat / 2)
    hat = 0.1 * np.diff(rng.standard_normal(n + 1)) * np.exp(-80 * hat_pos)
    drums = np.stack([kick + snare + hat, kick + 0.8 * snare + 1.2 * hat])
    root = 55 * 2 ** ((seed % 5) / 12)
    bass = 0.25 * np.sin(2 * np.pi * root * (1 + (np.floor(t / (4 * beat)) % 2) * 0.5) * t)
    chord = sum(0.06 * np.sin(2 * np.pi * root * 4 * r * t + p) for r, p in ((1, 0), (1.26, 1), (1.5, 2)))
    mix = drums + np.stack([bass + chord, bass + 0.7 * chord])
    return (0.8 * mix).astype(np.float32), drums.astype(np.float32)


def write_items(folder: Path, n: int, seconds: float) -> list[dict[str, Path]]:
    """``n`` tracks as ``{"mix": wav, "drums": wav}`` under ``folder``."""
    tracks = []
    for i in range(n):
        mix, drums = synthetic_item(seconds, seed=i)
        d = folder / f"track{i:03d}"
        d.mkdir(parents=True)
        sf.write(d / "full_mix.wav", mix.T, SR, subtype="FLOAT")
        sf.write(d / "drums.wav", drums.T, SR, subtype="FLOAT")
        tracks.append({"mix": d / "full_mix.wav", "drums": d / "drums.wav"})
    return tracks


# --------------------------------------------------------------------------- weights


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_stand_in(name: str, size: str, models_dir: Path) -> str | None:
    """Write ``name``'s stand-in of ``size`` into ``models_dir``; a label, or None when there is none."""
    if name == "essentia":
        if size == "full":
            return None
        _tool("make_tiny_essentia").make_tiny_essentia(models_dir)
        return "tiny stand-in"
    if name == "aesthetics":
        _tool("make_tiny_audiobox").make_tiny_audiobox(models_dir, size="base" if size == "full" else "tiny")
        return "random weights" if size == "full" else "tiny stand-in"
    if name == "flamingo":
        if size == "full":
            return None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # save_pretrained's "Writing model shards" bar
        _tool("make_tiny_flamingo").make_tiny_flamingo(models_dir)
        return "tiny stand-in"
    if name == "drums_midi":
        _tool("make_tiny_adtof").make_tiny_adtof(models_dir)
        return "random weights, full size"
    raise ValueError(name)


NO_FULL = {
    "essentia": "no full-size stand-in: make_tiny_essentia writes tiny TensorFlow graphs only",
    "flamingo": "no full-size stand-in: a random 8 B Music Flamingo is not cheap to build (~32 GB float32)",
}


# --------------------------------------------------------------------------- annotators


@dataclass
class Bench:
    name: str
    extractor: object
    load: Callable[[], tuple[str, str]]  # loads (or fetches) the model: (description, device)
    loads: Callable[[], int] | None = None  # the model module's own load counter, where it has one


def _params(module) -> str:
    n = sum(p.numel() for p in module.parameters())
    return f"{n / 1e6:.2f} M params" if n >= 1e5 else f"{n / 1e3:.0f} k params"


def build(name: str, models_dir: Path | None, device: str, args) -> Bench:
    md = str(models_dir) if models_dir is not None else None
    if name == "essentia":
        from sat_mir.features.essentia_tags import EssentiaTags
        from sat_mir.models import essentia_tf
        from sat_mir.models.spec import locate

        ex = EssentiaTags.from_mapping({"models_dir": md})  # device: only "auto" exists

        def load():
            # the extractor's own call: same folder, same heads, so the same cache entry
            models = essentia_tf.load_models(locate(essentia_tf.ESSENTIA, md), tuple(essentia_tf.HEADS))
            size = sum(p.stat().st_size for p in models.folder.glob("*.pb"))
            size_text = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
            return (f"Discogs-EffNet + {len(models.heads)} heads ({size_text} of .pb)",
                    f"{essentia_tf._device()} (libtensorflow)")
        return Bench(name, ex, load)

    if name == "aesthetics":
        from sat_mir.features.aesthetics import Aesthetics
        from sat_mir.models.audiobox import load_aesthetics

        ex = Aesthetics.from_mapping({"models_dir": md, "device": device})

        def load():
            m = load_aesthetics(md, device=ex.config.device, bf16=ex.config.bf16)
            return f"Audiobox Aesthetics ({_params(m.net)})", str(m.device) + (" bf16" if m.autocast else " fp32")
        return Bench(name, ex, load)

    if name == "flamingo":
        from sat_mir.features.flamingo import Flamingo
        from sat_mir.models import flamingo as mf

        ex = Flamingo.from_mapping({"models_dir": md, "device": device, "max_new_tokens": args.max_new_tokens})

        def load():
            c = ex.config
            m = mf.load_flamingo(c.model, models_dir=c.models_dir, device=c.device, dtype=c.dtype,
                                 attn_implementation=c.attn_implementation)
            return f"{m.name} ({_params(m.model)})", f"{m.device} {str(m.dtype).removeprefix('torch.')}"
        return Bench(name, ex, load, loads=mf.load_count)

    if name == "drums_midi":
        from sat_mir.features.drums_midi import DrumsMidi
        from sat_mir.models import adtof

        ex = DrumsMidi.from_mapping({"models_dir": md, "device": device})

        def load():
            t = adtof.load_transcriber(md, ex.config.device)
            return f"ADTOF Frame_RNN ({_params(t.net)})", str(t.device)
        return Bench(name, ex, load)
    raise ValueError(name)


class LoadCounter(logging.Handler):
    """Counts the "loaded ..." records per logger name."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("loaded "):
            self.counts[record.name] = self.counts.get(record.name, 0) + 1


@dataclass
class Row:
    name: str
    model: str = ""
    device: str = ""
    load_s: float = float("nan")
    warmup_s: float = float("nan")
    items_per_s: float = float("nan")
    realtime: float = float("nan")
    loads: str = ""
    note: str = ""


def run_one(bench: Bench, contexts: Callable[[list[int]], list], n_items: int, seconds: float, batch: int,
            counter: LoadCounter, label: str) -> Row:
    from sat_mir.errors import SatMirError

    row = Row(bench.name)
    logger = LOGGERS[bench.name]
    before_log = counter.counts.get(logger, 0)
    before_own = bench.loads() if bench.loads else 0
    t0 = time.perf_counter()
    try:
        desc, row.device = bench.load()
    except SatMirError as exc:  # missing weights, no CUDA, ...: one line, not a traceback
        row.note = f"skipped: {' '.join(str(exc).split())}"
        return row
    row.load_s = time.perf_counter() - t0
    row.model = f"{desc}; {label}"

    def run(indices: list[int]) -> None:
        results = bench.extractor.compute_batch(contexts(indices))
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"{len(failed)}/{len(results)} items failed, first: "
                               f"{type(failed[0]).__name__}: {failed[0]}")

    try:
        t0 = time.perf_counter()
        run([0])
        row.warmup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for start in range(0, n_items, batch):
            run(list(range(start, min(n_items, start + batch))))
        wall = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - reported in the table, the other annotators still run
        row.note = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    else:
        row.items_per_s = n_items / wall
        row.realtime = n_items * seconds / wall
    logged = counter.counts.get(logger, 0) - before_log
    own = (bench.loads() - before_own) if bench.loads else None
    once = logged == 1 and own in (None, 1)
    row.loads = f"{logged}" + (f"/{own}" if own is not None else "") + (" ok" if once else " NOT ONCE")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--models-dir", type=Path, default=None,
                    help="the real weights (default: SAT_MIR_MODELS or ~/.cache/sat-mir/models)")
    ap.add_argument("--stand-in", choices=("tiny", "full"), default=None,
                    help="random-weight stand-ins in a temporary folder instead of --models-dir")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--only", default=",".join(ANNOTATORS), help=f"comma-separated subset of {','.join(ANNOTATORS)}")
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each synthetic track")
    ap.add_argument("--batch", type=int, default=8, help="items per compute_batch call (the runner's default: 8)")
    ap.add_argument("--max-new-tokens", type=int, default=500, help="flamingo: the most tokens per answer")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = ap.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ANNOTATORS))
    if unknown or not names:
        ap.error(f"--only: unknown annotator(s) {unknown}; choose from {list(ANNOTATORS)}")
    if args.stand_in and args.models_dir:
        ap.error("--models-dir and --stand-in exclude each other")
    if args.items < 1 or args.batch < 1 or not args.seconds > 0:
        ap.error("--items and --batch must be >= 1 and --seconds > 0")
    if args.device == "cpu":
        # before anything initialises CUDA: keeps Essentia's libtensorflow (which picks its own
        # device) on the CPU; the torch models are sent to the CPU anyway
        os.environ["CUDA_VISIBLE_DEVICES"] = ""

    import torch

    from sat_mir.audio.context import TrackContext
    from sat_mir.audio.decode import load_audio

    if args.threads:
        torch.set_num_threads(args.threads)
    # WavLM's and SAT's weight_norm: deprecated in torch, harmless here
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*weight_norm.*")
    counter = LoadCounter()
    models_logger = logging.getLogger("sat_mir.models")
    models_logger.setLevel(logging.INFO)
    models_logger.addHandler(counter)

    with tempfile.TemporaryDirectory(prefix="sat-mir-bench-annotators-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        tracks = write_items(tmp / "audio", args.items, args.seconds)
        decoded = {p: load_audio(p) for tr in tracks for p in tr.values()}
        prep_s = time.perf_counter() - t0

        def contexts(indices: list[int]) -> list[TrackContext]:
            # fresh contexts: no memoised resample/embedding/beat grid carries over between batches
            return [TrackContext(tracks[i], loader=decoded.__getitem__, track_id=f"track{i:03d}") for i in indices]

        labels: dict[str, str | None] = {}
        if args.stand_in:
            models_dir: Path | None = tmp / "models"
            t0 = time.perf_counter()
            for name in names:
                labels[name] = make_stand_in(name, args.stand_in, models_dir)
            made_s = time.perf_counter() - t0
        else:
            models_dir = args.models_dir
            labels = dict.fromkeys(names, "real weights")

        print(f"{args.items} items x {args.seconds:g} s stereo {SR} Hz (mix + drums stem), batches of {args.batch}; "
              f"device {args.device}; torch {torch.__version__} with {torch.get_num_threads()} CPU threads, "
              f"CUDA {'available' if torch.cuda.is_available() else 'not available'}")
        print(f"audio written and decoded in {prep_s:.1f} s (not timed below)"
              + (f"; {args.stand_in} stand-ins written in {made_s:.1f} s" if args.stand_in else
                 f"; weights from {models_dir or 'the default models folder'}"))

        rows = []
        for name in names:
            if labels.get(name) is None:
                rows.append(Row(name, note=f"skipped: {NO_FULL[name]}"))
                continue
            bench = build(name, models_dir, args.device, args)
            rows.append(run_one(bench, contexts, args.items, args.seconds, args.batch, counter, labels[name]))
            print(f"  {name} done", flush=True)

    print()
    head = f"{'annotator':11s} {'model':62s} {'device':20s} {'load s':>7s} {'warm-up s':>9s} " \
           f"{'items/s':>8s} {'x realtime':>10s}  loads"
    print(head)
    print("-" * len(head))
    for r in rows:
        if r.note and not r.model:
            print(f"{r.name:11s} {r.note}")
            continue
        print(f"{r.name:11s} {r.model[:62]:62s} {r.device[:20]:20s} {r.load_s:7.2f} {r.warmup_s:9.2f} "
              f"{r.items_per_s:8.3f} {r.realtime:10.2f}  {r.loads}")
        if r.note:
            print(f"{'':11s} {r.note}")
    print()
    print("loads: 'loaded ...' log records across the load, the warm-up and every batch (flamingo: /its "
          "load_count()); 'ok' = the model was loaded exactly once")
    once = [r.name for r in rows if r.loads.endswith(" ok")]
    not_once = [r.name for r in rows if r.loads.endswith("NOT ONCE")]
    print(f"loaded exactly once: {', '.join(once) or 'none'}"
          + (f"; NOT once: {', '.join(not_once)}" if not_once else ""))


if __name__ == "__main__":
    main()
