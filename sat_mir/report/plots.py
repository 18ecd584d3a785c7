"""The report's figures, drawn with matplotlib (Agg, no display) into PNG files: arrays in,
files out.  Each function writes one figure and returns its file name, or None when there is
nothing to draw."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["bar_chart", "correlation_heatmap", "histogram", "scatter"]

_DPI = 80


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display: a report is written on servers too
    import matplotlib.pyplot as plt

    return plt


def _save(fig, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / name, dpi=_DPI, bbox_inches="tight")
    _plt().close(fig)
    return name


def histogram(values: Sequence[float], *, title: str, folder: Path, name: str,
              edges: Sequence[float] = (), words: Sequence[str] = ()) -> str | None:
    """A histogram of ``values``; the prompt's word bins (``edges``, ``words``) drawn over it."""
    x = np.asarray([v for v in values if isinstance(v, (int, float)) and np.isfinite(v)], dtype=float)
    if x.size == 0:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 2.2))
    ax.hist(x, bins=min(30, max(5, x.size // 2)), color="#4c72b0")
    for e in edges:
        ax.axvline(e, color="#c44e52", lw=1, ls="--")
    if words:
        ax.set_xlabel(" | ".join(w or "–" for w in words), fontsize=7)
    ax.set_title(f"{title} (n={x.size})", fontsize=9)
    ax.tick_params(labelsize=7)
    return _save(fig, folder, name)


def bar_chart(counts: dict[str, float], *, title: str, folder: Path, name: str, top: int = 15) -> str | None:
    if not counts:
        return None
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:top][::-1]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 0.25 * len(items) + 0.8))
    ax.barh([k for k, _ in items], [v for _, v in items], color="#55a868")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    return _save(fig, folder, name)


def scatter(x: Sequence[float], y: Sequence[float], *, xlabel: str, ylabel: str, folder: Path,
            name: str) -> str | None:
    pairs = [(a, b) for a, b in zip(x, y) if isinstance(a, (int, float)) and isinstance(b, (int, float))]
    if not pairs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    ax.scatter([a for a, _ in pairs], [b for _, b in pairs], s=14, alpha=0.7, color="#8172b2")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(f"{ylabel} against {xlabel} (n={len(pairs)})", fontsize=9)
    ax.tick_params(labelsize=7)
    return _save(fig, folder, name)


def correlation_heatmap(columns: dict[str, Sequence[float]], *, folder: Path, name: str) -> str | None:
    """Pearson correlations between features (pairs with at least 3 common values)."""
    import pandas as pd

    frame = pd.DataFrame(columns, dtype=float)
    corr = frame.corr(min_periods=3)
    if corr.shape[0] < 2 or corr.isna().all().all():
        return None
    plt = _plt()
    n = corr.shape[0]
    fig, ax = plt.subplots(figsize=(0.32 * n + 2.5, 0.32 * n + 1.5))
    im = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), corr.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(n), corr.index, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.7)
    ax.set_title("correlations between features (tracks)", fontsize=9)
    return _save(fig, folder, name)
