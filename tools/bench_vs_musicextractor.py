"""Benchmark: sat-mir's extraction against Essentia's MusicExtractor, whole process, one core.

    .venv/bin/python tools/bench_vs_musicextractor.py [--tracks 3] [--minutes 3] [--library DIR]

What a user would run instead of sat-mir for per-track features is Essentia's MusicExtractor
(C++, installed with essentia-tensorflow).  Both run as their own process on the same mixes
(no stems: ``separation=none``), pinned to one CPU core (``taskset``, one thread per library),
timed from start to exit, with the peak resident memory of that process (``wait4`` through ``tools/peak_rss.py``):

- **sat-mir**: ``python -m sat_mir.extract`` with the default extractors as they resolve here
  (model extractors without weights are off), ``jobs=1``, into a fresh output folder, after an
  untimed run on a 10-s clip that does a user's first-run work (the JIT cache probe, in a process
  of its own) (``--cold`` times a first run instead);
- **MusicExtractor**: ``essentia.standard.MusicExtractor()`` with its defaults on each file.

The mixes are realistic renders (``tools/make_eval_corpus.py``: General MIDI songs through
fluidsynth and the FluidR3 GM soundfont) unless ``--library`` names a folder of recordings.
Prints seconds, × real time and peak RSS for each and the throughput ratio; never asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the sibling tools: make_eval_corpus, peak_rss
from peak_rss import figures  # noqa: E402

AUDIO = (".flac", ".wav", ".mp3", ".m4a", ".ogg")
THREADS = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                            "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}

ESSENTIA = """
import sys
import essentia
essentia.log.infoActive = False
import essentia.standard as es
for path in sys.argv[1:]:
    es.MusicExtractor()(path)
"""


def render(folder: Path, tracks: int, minutes: float) -> list[Path]:
    import make_eval_corpus as corpus  # a sibling tool (see sys.path above)
    corpus.make_corpus(folder / "corpus", songs=tracks, seconds=minutes * 60, seed=5, jobs=2,
                       styles=["pop", "rock", "bossa", "swing", "waltz"])
    library = folder / "library"
    library.mkdir()
    out = []
    for song in sorted((folder / "corpus" / "library").iterdir()):
        target = library / f"{song.name}.flac"  # the mix alone: a library without stems
        shutil.copyfile(song / "full_mix.flac", target)
        out.append(target)
    return out


def run(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one process, pinned to CPU 0 where taskset exists."""
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    return figures(cmd, env)  # the process's own peak, not this one's renders


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--tracks", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--library", type=Path, default=None, help="a folder of recordings instead of renders")
    ap.add_argument("--cold", action="store_true", help="time sat-mir's first run, JIT compilation included")
    args = ap.parse_args()
    import soundfile as sf

    env = {**os.environ, **THREADS, "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="sat-mir-bench-me-") as tmp:
        tmp = Path(tmp)
        if args.library:
            files = sorted(p for p in args.library.rglob("*") if p.suffix.lower() in AUDIO)[: args.tracks]
            library = args.library
        else:
            files = render(tmp, args.tracks, args.minutes)
            library = tmp / "library"
        seconds = sum(sf.info(str(f)).duration for f in files)
        print(f"{len(files)} tracks, {seconds:.0f} s of audio (mix only), one core")
        extract = [sys.executable, "-m", "sat_mir.extract", "+dataset=mine", "separation=none", "jobs=1",
                   "progress=false"]
        ours_env = {**env, "SAT_MIR_CACHE": str(tmp / "cache")}
        if not args.cold:
            # a user's runs after the first find the JIT probe done: do it on 10 s of one file
            warm = tmp / "warm"
            warm.mkdir()
            x, sr = sf.read(str(files[0]), frames=int(10 * sf.info(str(files[0])).samplerate), always_2d=True)
            sf.write(str(warm / "clip.flac"), x, sr)
            run([*extract, f"dataset.root={warm}", f"dataset.output={tmp / 'warm-out'}"], ours_env)
        ours = run([*extract, f"dataset.root={library}", f"dataset.output={tmp / 'out'}"], ours_env)
        theirs = run([sys.executable, "-c", ESSENTIA, *map(str, files)], env)
    for name, (wall, cpu, rss) in (("sat-mir", ours), ("MusicExtractor", theirs)):
        print(f"  {name:15s} {wall:7.1f} s wall  {cpu:7.1f} s CPU  {seconds / wall:6.1f}x real time  "
              f"peak RSS {rss:6.0f} MB")
    print(f"  sat-mir's throughput / MusicExtractor's: {theirs[0] / ours[0]:.2f}x; "
          f"memory: {ours[2] / theirs[2]:.2f}x")


if __name__ == "__main__":
    main()
