"""Write the dataset report: ``<output>/report/index.html`` with its figures in ``assets/`` and
``features.parquet`` beside it.  One static page: it opens from the disk with no server, and
plays the crops from the output folder itself (relative links), so it is only as large as its
figures.

The page checks its own media when it loads (every figure drawn, every crop's audio readable)
and says at the top which did not load, so a moved or deleted crop does not go unnoticed.
"""

from __future__ import annotations

import html
import logging
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sat_mir.fsutil import atomic_path, atomic_write_text
from sat_mir.report import plots
from sat_mir.report.data import ReportData

__all__ = ["ReportSettings", "write_report"]

log = logging.getLogger("sat_mir.report")

TAG_KEYS = {"essentia_genre": "genre", "essentia_mood": "mood", "essentia_instrument": "instruments"}
CORRELATED = 24  # features in the correlation heatmap at most


@dataclass(frozen=True)
class ReportSettings:
    """Hydra ``conf/report.yaml``."""

    prompts: int = 3  # prompts drawn per crop (as training draws them), when the build has run
    max_crops: int = 500  # crops listed with a player (the Parquet table holds all)
    seed: int = 0


def _numeric(rows: Sequence[dict]) -> dict[str, list[float]]:
    keys = sorted({k for r in rows for k, v in r.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return {k: [r.get(k) if isinstance(r.get(k), (int, float)) else None for r in rows] for k in keys}


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _img(name: str | None, alt: str) -> str:
    return f'<img src="assets/{html.escape(name)}" alt="{html.escape(alt)}">' if name else ""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v)) if v is not None else "–"


def _counts(rows: Sequence[dict], key: str) -> list[tuple[str, int]]:
    """(value, tracks) of a categorical key, most common first (HTML-escaped)."""
    return [(html.escape(k), n) for k, n in Counter(str(r[key]) for r in rows if r.get(key) is not None).most_common()]


def _tags(rows: Sequence[dict], key: str) -> dict[str, float]:
    total: Counter = Counter()
    for r in rows:
        if isinstance(r.get(key), dict):
            total.update({k: float(v) for k, v in r[key].items() if isinstance(v, (int, float))})
    return dict(total)


def _prompts(data: ReportData, crop_id: str, n: int, seed: int) -> list[str]:
    item = data.items.get(crop_id)
    if not item or n <= 0:
        return []
    from sat_mir.build.manifest import prompts_module

    rng = random.Random(f"{seed}:{crop_id}:report")
    sampler = prompts_module()
    return [sampler.sample_prompt(item["material"], rng, data.manifest.get("recipe")) for _ in range(n)]


def write_report(data: ReportData, settings: ReportSettings = ReportSettings()) -> Path:
    """Write the report of ``data`` into ``<output>/report/``; returns the page's path."""
    folder = data.output / "report"
    assets = folder / "assets"
    numeric = _numeric(data.tracks)
    bins = {b["key"]: b for b in data.manifest.get("bins", [])}
    figures: list[str] = []
    for i, (key, values) in enumerate(numeric.items()):
        b = bins.get(key, {})
        name = plots.histogram(values, title=key, folder=assets, name=f"hist_{i:03d}.png",
                               edges=b.get("edges", ()), words=b.get("words", ()))
        if name:
            figures.append(f'<figure>{_img(name, f"histogram of {key}")}</figure>')
    # scalar features that vary; vector components (chroma_0..11, tiv_0..) would crowd them out
    varied = [k for k, v in numeric.items()
              if len({x for x in v if x is not None}) > 1 and not re.search(r"_\d+$", k)][:CORRELATED]
    heatmap = plots.correlation_heatmap({k: numeric[k] for k in varied}, folder=assets, name="correlations.png")
    every = data.tracks + data.crops
    tempo_loudness = plots.scatter([r.get("bpm") for r in every], [r.get("lufs") for r in every],
                                   xlabel="bpm", ylabel="lufs", folder=assets, name="bpm_lufs.png")
    tag_charts = [plots.bar_chart(_tags(data.tracks, key), title=f"{label} (summed probability)", folder=assets,
                                  name=f"tags_{label}.png") for key, label in TAG_KEYS.items()]
    _write_table(folder / "features.parquet", data)

    failed = [p for p in data.problems if p.kind == "failed"]
    flagged = [p for p in data.problems if p.kind == "flagged"]
    summary = _table(["tracks", "crops", "built items", "failed measurements", "flagged values", "notes"], [[
        len(data.tracks), len(data.crops), len(data.items) if data.items else "not built", len(failed),
        len(flagged), sum(p.kind == "note" for p in data.problems)]])
    problems = (_table(["item", "kind", "extractor or key", "reason"],
                       [[html.escape(p.item), p.kind, html.escape(p.what), html.escape(p.reason)]
                        for p in data.problems], "problems")
                if data.problems else "<p>Nothing failed and nothing was flagged.</p>")
    keys = _table(["key", "tracks"], _counts(data.tracks, "key")) if _counts(data.tracks, "key") else ""
    meters = (_table(["time signature", "tracks"], _counts(data.tracks, "time_signature"))
              if _counts(data.tracks, "time_signature") else "")
    crop_rows = []
    for c in data.crops[:settings.max_crops]:
        src = Path(os.path.relpath(c["audio"], folder)).as_posix()
        prompts = "".join(f"<li>{html.escape(p)}</li>" for p in _prompts(data, c["id"], settings.prompts,
                                                                          settings.seed))
        crop_rows.append([html.escape(c["id"]), html.escape(c["track"]), _fmt(c.get("bars")), _fmt(c.get("bpm")),
                          _fmt(c.get("lufs")),
                          f'<audio controls preload="metadata" src="{html.escape(src)}"></audio>',
                          f"<ul>{prompts}</ul>" if prompts else "–"])
    crops = (_table(["crop", "track", "bars", "bpm", "lufs", "listen", "prompts training may draw"], crop_rows,
                    "crops") if crop_rows else "<p>No crops (extract with crops=div4 to cut some).</p>")
    page = _PAGE.format(
        title=html.escape(f"sat-mir report: {data.output.name}"), output=html.escape(data.output.name),
        summary=summary, problems=problems, keys=keys, meters=meters,
        tags="".join(_img(n, n) for n in tag_charts if n) or "<p>No classifier tags measured.</p>",
        scatter=_img(tempo_loudness, "bpm against lufs"), heatmap=_img(heatmap, "feature correlations"),
        figures="".join(figures), crops=crops, shown=min(len(data.crops), settings.max_crops), total=len(data.crops),
    )
    atomic_write_text(folder / "index.html", page)
    return folder / "index.html"


def _write_table(path: Path, data: ReportData) -> None:
    import pandas as pd

    def scalars(row: dict) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in row.items()
                if isinstance(v, (int, float, str, bool, Path))}

    rows = [{"kind": "track", **scalars(r)} for r in data.tracks] + [{"kind": "crop", **scalars(r)}
                                                                      for r in data.crops]
    with atomic_path(path, suffix=".parquet") as tmp:
        pd.DataFrame(rows).to_parquet(tmp, index=False)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
figure {{ display: inline-block; margin: 4px; }}
#selfcheck {{ padding: 6px 10px; background: #eef7ee; }}
#selfcheck.bad {{ background: #fbe9e9; }}
td ul {{ margin: 0; padding-left: 1.2em; font-size: 12px; }}
</style></head><body>
<h1>{title}</h1>
<p>Dataset <code>{output}</code> (the folder above this page's). Every value per track and crop:
<a href="features.parquet">features.parquet</a>.</p>
<p id="selfcheck">Checking that every figure and crop loads…</p>
<h2>Summary</h2>{summary}
<h2>Failed, flagged and adapted</h2>{problems}
<h2>Key and meter</h2><div style="display:flex; gap:2em">{keys}{meters}</div>
<h2>Tags</h2>{tags}
<h2>Tempo and loudness</h2>{scatter}
<h2>Correlations</h2>{heatmap}
<h2>Distributions</h2><p>Red dashed lines: the edges of the word bins the prompts use.</p>{figures}
<h2>Crops ({shown} of {total})</h2>{crops}
<script>
// Say at the top which figure or crop did not load (a moved or deleted file).
window.addEventListener("load", async () => {{
  const bad = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute("src"));
  const audio = [...document.querySelectorAll("audio")].map(a => new Promise(done => {{
    if (a.readyState >= 1) return done(null);
    a.addEventListener("loadedmetadata", () => done(null), {{once: true}});
    a.addEventListener("error", () => done(a.getAttribute("src")), {{once: true}});
    setTimeout(() => done(a.readyState >= 1 ? null : a.getAttribute("src")), 8000);
  }}));
  for (const src of await Promise.all(audio)) if (src) bad.push(src);
  const note = document.getElementById("selfcheck");
  note.dataset.failed = String(bad.length);
  note.className = bad.length ? "bad" : "ok";
  note.textContent = bad.length ? "Did not load: " + bad.join(", ")
    : "All " + document.images.length + " figures and " + document.querySelectorAll("audio").length + " crops load.";
}});
</script>
</body></html>
"""
