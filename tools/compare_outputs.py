"""Compare two sat-mir output folders by what they mean, not by their bytes.

A refactor must leave the outputs of a run unchanged; run the same command into two
output folders (before and after) and compare them:

    python tools/compare_outputs.py OLD/demo NEW/demo

What is compared: every JSON file's values (sidecars, catalog, crops.json, manifest,
dataset and model configs), with the things that differ between two runs by nature left
out (timings, finish times, file mtimes, the output folder's own path); every .npy array
exactly; every audio file's decoded samples exactly; every tar shard's member names and
member contents; the Parquet table's cells; every other file byte for byte.  Run logs and
lock files are not compared.  Exit status 0 when nothing differs, 1 otherwise, with one
line per difference.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

# Keys whose values differ between two identical runs by nature.
VOLATILE_KEYS = {"seconds", "finished_at", "mtime_ns", "started_at", "elapsed_s", "created_at", "run_id"}
SKIP_PARTS = {"logs"}
SKIP_SUFFIXES = {".lock", ".log"}
AUDIO_SUFFIXES = {".flac", ".wav", ".ogg", ".mp3"}


def _clean(value, roots: tuple[str, str]):
    if isinstance(value, dict):
        return {k: _clean(v, roots) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_clean(v, roots) for v in value]
    if isinstance(value, str):
        for root in roots:
            value = value.replace(root, "<out>")
        return value
    return value


def _diff_json(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'new' if key not in a else 'old'}")
            else:
                _diff_json(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff_json(x, y, f"{where}[{i}]", out)
    elif a != b:
        out.append(f"{where}: {str(a)[:80]} != {str(b)[:80]}")


def _tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _same_bytes_or_json(rel: str, a: bytes, b: bytes, roots, out: list[str]) -> None:
    if a == b:
        return
    try:
        ja, jb = json.loads(a), json.loads(b)
    except ValueError:
        out.append(f"{rel}: bytes differ")
        return
    _diff_json(_clean(ja, roots), _clean(jb, roots), rel, out)


def compare_file(rel: str, old: Path, new: Path, roots: tuple[str, str], out: list[str]) -> None:
    suffix = old.suffix.lower()
    if suffix == ".json":
        _same_bytes_or_json(rel, old.read_bytes(), new.read_bytes(), roots, out)
    elif suffix == ".npy":
        a, b = np.load(old), np.load(new)
        if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b):
            out.append(f"{rel}: arrays differ")
    elif suffix in AUDIO_SUFFIXES:
        import soundfile as sf

        a, ra = sf.read(old, dtype="int32", always_2d=True)
        b, rb = sf.read(new, dtype="int32", always_2d=True)
        if ra != rb or a.shape != b.shape or not np.array_equal(a, b):
            out.append(f"{rel}: audio differs")
    elif suffix == ".tar":
        ma, mb = _tar_members(old), _tar_members(new)
        if sorted(ma) != sorted(mb):
            out.append(f"{rel}: members differ")
            return
        for name in sorted(ma):
            if name.endswith(".npy"):
                a = np.load(io.BytesIO(ma[name]))
                b = np.load(io.BytesIO(mb[name]))
                if not np.array_equal(a, b):
                    out.append(f"{rel}:{name}: arrays differ")
            else:
                _same_bytes_or_json(f"{rel}:{name}", ma[name], mb[name], roots, out)
    elif suffix == ".parquet":
        import pandas as pd

        a, b = pd.read_parquet(old), pd.read_parquet(new)
        if not a.equals(b):
            out.append(f"{rel}: table differs")
    else:
        text_a, text_b = old.read_bytes(), new.read_bytes()
        for root in roots:
            text_a = text_a.replace(root.encode(), b"<out>")
            text_b = text_b.replace(root.encode(), b"<out>")
        if text_a != text_b:
            out.append(f"{rel}: bytes differ")


def compare(old: Path, new: Path) -> list[str]:
    roots = (str(old.resolve()), str(new.resolve()))

    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file()
            and not SKIP_PARTS & set(p.relative_to(root).parts)
            and p.suffix not in SKIP_SUFFIXES
        }

    fa, fb = files(old), files(new)
    out = [f"{rel}: only in old" for rel in sorted(fa - fb)]
    out += [f"{rel}: only in new" for rel in sorted(fb - fa)]
    for rel in sorted(fa & fb):
        compare_file(rel, old / rel, new / rel, roots, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    diffs = compare(args.old, args.new)
    for line in diffs:
        print(line)
    n = len({p for p in (args.old.rglob("*")) if p.is_file()})
    print(f"{len(diffs)} differences ({n} files in old)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
