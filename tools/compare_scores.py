"""Compare two per-song score files of ``tools/score_facts.py`` (``--per-song OUT.csv``): the
summary figures side by side and every song whose scores changed, for one engine.

    .venv/bin/python tools/compare_scores.py BEFORE.csv AFTER.csv [--engine sat-mir]

How a change to the musical facts is judged (``docs/eval.md``): score the held-out corpora with
the code before and after, then read which songs moved and why, not only the means.  Songs are
matched by id; a song in one file only is named and left out of the summaries.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
from pathlib import Path

_spec = importlib.util.spec_from_file_location("score_facts", Path(__file__).with_name("score_facts.py"))
score_facts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(score_facts)

# the per-song columns whose changes are listed
SONG_KEYS = ("acc1", "acc2", "beat_f", "downbeat_f", "meter_ok", "key_ok", "crops_good", "crops")


def _value(text: str) -> bool | float | str:
    """A CSV cell as score_facts wrote it: True/False, a number or text."""
    if text in ("True", "False"):
        return text == "True"
    try:
        return float(text)
    except ValueError:
        return text


def read_rows(path: Path, engine: str) -> dict[str, dict]:
    """The rows of ``engine`` in a per-song CSV, by song id, with typed values; an empty cell is
    a key the song's row did not have (as :func:`score_facts.summarise` expects)."""
    with open(path, newline="") as fh:
        rows = [{k: _value(v) for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]
    return {str(r["id"]): r for r in rows if r.get("engine") == engine}


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))
    return a == b


def changed_songs(before: dict[str, dict], after: dict[str, dict]) -> list[tuple[str, str, list[str]]]:
    """``(id, style, ["key_ok False -> True", ...])`` for every song in both whose scores moved."""
    out = []
    for sid in sorted(before.keys() & after.keys()):
        a, b = before[sid], after[sid]
        moved = [f"{k} {_show(a.get(k))} -> {_show(b.get(k))}" for k in SONG_KEYS if not _same(a.get(k), b.get(k))]
        if moved:
            out.append((sid, str(a.get("style", "")), moved))
    return out


def _show(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--engine", default="sat-mir")
    args = ap.parse_args()
    before, after = read_rows(args.before, args.engine), read_rows(args.after, args.engine)
    for name, only in (("before", before.keys() - after.keys()), ("after", after.keys() - before.keys())):
        if only:
            print(f"only {name}: {', '.join(sorted(only))}")
    both = sorted(before.keys() & after.keys())
    if not both:
        raise SystemExit(f"no song of engine {args.engine!r} in both files")
    summaries = {"before": score_facts.summarise([before[s] for s in both]),
                 "after": score_facts.summarise([after[s] for s in both])}
    print(score_facts.table(summaries))
    moved = changed_songs(before, after)
    print(f"\n{len(moved)} of {len(both)} songs changed")
    for sid, style, what in moved:
        print(f"  {sid} ({style}): {'; '.join(what)}")


if __name__ == "__main__":
    main()
