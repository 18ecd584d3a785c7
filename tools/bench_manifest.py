"""The training-time manifest at scale: memory and lookup time of the custom_metadata module
SAT imports in every rank and loader worker, on a synthetic manifest of realistic items.

    .venv/bin/python tools/bench_manifest.py [--items 1000000] [--lookups 10000] [--json-items 200000]

Builds ``--items`` items (three classifier tag lists, word bins, controls, two descriptions:
about 1.2 KB of JSON each, as a real build writes) with the build's own writer, then, in a fresh
``python -I -S`` process per measurement, reports the process's RSS after importing the module
and after ``--lookups`` random ``get_custom_metadata`` calls, and the median lookup time.  The
same figures for the former whole-file ``manifest.json`` (every item parsed at import) are
printed for ``--json-items`` items as the baseline.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GENRES = ["Electronic---House", "Electronic---Techno", "Rock---Indie Rock", "Hip Hop---Boom Bap", "Jazz---Bop",
          "Pop---Synth-pop", "Electronic---Ambient", "Funk / Soul---Disco", "Rock---Punk", "Classical---Baroque"]
MOODS = ["energetic", "melancholic", "happy", "dark", "dreamy", "epic", "relaxing", "uplifting", "sad", "calm"]
INSTRUMENTS = ["synthesizer", "drums", "bass", "guitar", "piano", "voice", "strings", "drummachine", "brass"]
WORDS = "warm bright punchy airy lush gritty driving mellow spacious tight wide deep".split()

# The module under test, run as SAT runs it: by path, standard library only, isolated.
PROBE = r"""
import importlib.util, json, os, random, resource, statistics, sys, time
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("m", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
import_s = time.perf_counter() - t0
after_import = rss_mb()
ids = json.loads(open(sys.argv[2]).read()); times = []
for iid in ids:
    t = time.perf_counter(); out = m.get_custom_metadata({"sat_mir_id": iid}, None); times.append(time.perf_counter() - t)
    assert "prompt" in out, iid
print(json.dumps({"import_s": import_s, "rss_import_mb": after_import, "rss_after_mb": rss_mb(),
                  "median_ms": 1e3 * statistics.median(times), "p99_ms": 1e3 * sorted(times)[int(0.99 * len(times))]}))
"""


def material(rng: random.Random) -> dict:
    def tags(labels):
        return {lab: round(rng.random(), 3) for lab in rng.sample(labels, 5)}

    return {
        "controls": {"bpm": round(rng.uniform(60, 180), 1), "key": "A minor", "meter": "4/4",
                     "chords": ["Am", "F", "C", "G"]},
        "bins": {name: rng.choice(WORDS) for name in ("loudness", "brightness", "density", "dynamics")},
        "tags": {"genre": tags(GENRES), "mood": tags(MOODS), "instruments": tags(INSTRUMENTS)},
        "descriptions": [" ".join(rng.choice(WORDS) for _ in range(40)) + ".",
                         " ".join(rng.choice(WORDS) for _ in range(25)) + "."],
        "fields": {"genre": "genre", "mood": "mood"},
        "metadata": {},
    }


def entries(n: int, seed: int = 0):
    rng = random.Random(seed)
    for i in range(n):
        track = f"track-{i // 5:07d}-0a1b2c3d"
        yield f"{track}_{i % 5:03d}", track, {
            "track_id": track, "seconds_start": 10 * (i % 5), "seconds_total": 180,
            "numbers": {"bpm": round(rng.uniform(60, 180), 2), "lufs": round(rng.uniform(-30, -6), 2)},
            "gain_db": 0.0, "material": material(rng),
        }


def probe(module: Path, ids: list[str]) -> dict:
    id_file = module.parent / "lookup_ids.json"
    id_file.write_text(json.dumps(ids))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, str(module), str(id_file)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def folder_with_module(base: Path) -> Path:
    folder = base / "custom_metadata"
    folder.mkdir(parents=True)
    for name in ("sat_mir_metadata.py", "prompts.py"):
        shutil.copyfile(REPO / "custom_metadata" / name, folder / name)
    return folder


def bench_store(n: int, lookups: int, base: Path) -> dict:
    from sat_mir.build.manifest import ITEMS_DB, write_items_store

    folder = folder_with_module(base / "store")
    t0 = time.perf_counter()
    count = write_items_store(folder / ITEMS_DB, entries(n))
    build_s = time.perf_counter() - t0
    (folder / "manifest.json").write_text(json.dumps({"format": 2, "seed": 0, "recipe": {}, "store": ITEMS_DB,
                                                      "items": count}))
    ids = [f"track-{i // 5:07d}-0a1b2c3d_{i % 5:03d}" for i in random.Random(1).sample(range(n), lookups)]
    return {"items": n, "build_s": build_s, "mb_on_disk": (folder / ITEMS_DB).stat().st_size / 2**20,
            **probe(folder / "sat_mir_metadata.py", ids)}


def bench_json(n: int, lookups: int, base: Path) -> dict:
    """The former layout: every item in manifest.json, parsed whole at import (format 1)."""
    folder = folder_with_module(base / "json")
    items = {iid: entry for iid, _, entry in entries(n)}
    t0 = time.perf_counter()
    (folder / "manifest.json").write_text(json.dumps({"format": 1, "seed": 0, "recipe": {}, "items": items}))
    build_s = time.perf_counter() - t0
    # the former module's lookup, for the baseline: a dict of every item
    source = (folder / "sat_mir_metadata.py").read_text()
    source = source.replace('item = lookup(iid) if iid else None', 'item = MANIFEST["items"].get(iid) if iid else None')
    (folder / "sat_mir_metadata.py").write_text(source)
    ids = random.Random(1).sample(sorted(items), lookups)
    del items
    return {"items": n, "build_s": build_s, "mb_on_disk": (folder / "manifest.json").stat().st_size / 2**20,
            **probe(folder / "sat_mir_metadata.py", ids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=10_000)
    ap.add_argument("--json-items", type=int, default=200_000, help="items of the whole-file baseline (0: skip)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        if args.json_items:
            rows.append(("manifest.json (former)", bench_json(args.json_items, min(args.lookups, args.json_items),
                                                              Path(tmp))))
        rows.append(("items.sqlite", bench_store(args.items, args.lookups, Path(tmp))))
    print(f"{'layout':24} {'items':>9} {'build s':>8} {'MB disk':>8} {'import s':>8} {'RSS import':>10} "
          f"{'RSS after':>9} {'median ms':>9} {'p99 ms':>7}")
    for name, r in rows:
        print(f"{name:24} {r['items']:>9} {r['build_s']:>8.1f} {r['mb_on_disk']:>8.0f} {r['import_s']:>8.2f} "
              f"{r['rss_import_mb']:>8.0f}MB {r['rss_after_mb']:>7.0f}MB {r['median_ms']:>9.3f} {r['p99_ms']:>7.3f}")
    if len(rows) == 2:
        j, s = rows[0][1], rows[1][1]
        print(f"RSS after lookups per process: {s['rss_after_mb']:.0f} MB at {s['items']} items vs "
              f"{j['rss_after_mb']:.0f} MB at {j['items']} items with the whole-file manifest")


if __name__ == "__main__":
    main()
