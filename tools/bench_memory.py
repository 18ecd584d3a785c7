"""Peak memory of one extraction worker on a long track with four stems: the whole
``python -m sat_mir.extract`` process, ``jobs=1``, the DSP extractors.

    .venv/bin/python tools/bench_memory.py [--minutes 10] [--signals-mb 900,1200,none]

Renders one General-MIDI song of ``--minutes`` with fluidsynth (``tools/make_eval_corpus.py``:
drums, bass and other stems) and adds a fourth, ``vocals`` (the other stem three seconds late
at a third of its level, added to the mix too), so the track has the four stems Demucs writes.
Then extracts it once per ``--signals-mb`` value (the bound on what a track's decoded signals
and their shared analysis hold, ``conf/extract.yaml``), each time into a fresh output folder,
and prints the peak RSS (``wait4``, through ``tools/peak_rss.py``: the process's own), CPU
seconds and wall seconds of each process, after an untimed run (a user's first run also probes
the JIT cache once, in a process of its own).  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the sibling tools: make_eval_corpus, peak_rss
from peak_rss import figures as run  # noqa: E402  (a process's own peak, not this one's render)

EXTRACTORS = "[info,loudness,rhythm,stem_rhythm,spectral,peaks,tonal,chords,timbral,series]"
THREADS = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def render(folder: Path, minutes: float) -> Path:
    import numpy as np
    import soundfile as sf

    import make_eval_corpus as corpus  # a sibling tool (see sys.path above)
    corpus.make_corpus(folder, songs=1, seconds=minutes * 60, seed=5, jobs=1, styles=["rock"])
    song = next((folder / "library").iterdir())
    other, sr = sf.read(str(song / "other.flac"), dtype="float32", always_2d=True)
    vocals = np.roll(other, 3 * sr, axis=0) / 3
    mix, _ = sf.read(str(song / "full_mix.flac"), dtype="float32", always_2d=True)
    sf.write(str(song / "vocals.flac"), vocals, sr, subtype="PCM_24")
    sf.write(str(song / "full_mix.flac"), mix + vocals, sr, subtype="PCM_24")
    return folder / "library"


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--signals-mb", default="default,1200,none",
                    help="comma-separated bounds to compare; 'default' = conf/extract.yaml's, 'none' = unbounded")
    args = ap.parse_args()
    env = {**os.environ, **THREADS, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="sat-mir-bench-mem-") as tmp:
        tmp = Path(tmp)
        library = render(tmp / "corpus", args.minutes)
        env["SAT_MIR_CACHE"] = str(tmp / "cache")
        extract = [sys.executable, "-m", "sat_mir.extract", "+dataset=mine", "separation=none", "jobs=1",
                   "progress=false", f"extractors={EXTRACTORS}"]
        # an untimed run on the same track first: the file in the page cache, the JIT probe done
        run([*extract, f"dataset.root={library}", f"dataset.output={tmp / 'warm-out'}"], env)
        print(f"one track of {args.minutes:g} min, mix + drums, bass, other, vocals (44.1 kHz stereo), "
              f"the DSP extractors, jobs=1")
        for i, bound in enumerate(args.signals_mb.split(",")):
            override = [] if bound == "default" else [f"signals_mb={'null' if bound == 'none' else bound}"]
            wall, cpu, rss = run([*extract, f"dataset.root={library}", f"dataset.output={tmp / f'out{i}'}",
                                  *override], env)
            print(f"  signals_mb={bound:8s} peak RSS {rss:6.0f} MB  {cpu:6.1f} s CPU  {wall:6.1f} s wall")


if __name__ == "__main__":
    main()
