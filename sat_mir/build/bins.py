"""Words for continuous features from corpus-level bins (dataspeech-style).

Bin edges are quantiles of the feature over the whole corpus, so "very loud"
means "among the loudest fifth of this library" for every item, and the words
are spread evenly over the data.  A probability has a meaning of its own, so its
edges can be fixed instead (``voice_probability`` below 0.2 is "instrumental"
whatever the library), and a bin whose word is empty says nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["WordBins", "fit_bins", "fixed_bins"]


@dataclass(frozen=True)
class WordBins:
    key: str  # the feature key (e.g. "lufs")
    name: str  # how the field reads in a prompt (e.g. "loudness")
    words: tuple[str, ...]  # from the lowest bin to the highest; "" = no word
    edges: tuple[float, ...]  # len(words) - 1 inner edges, ascending

    def word(self, value: float) -> str:
        return self.words[int(np.searchsorted(self.edges, value, side="right"))]

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "words": list(self.words), "edges": list(self.edges)}


def fit_bins(key: str, name: str, words: Sequence[str], values: Sequence[float]) -> WordBins | None:
    """Quantile bins of ``values`` labelled with ``words``; None when there are no values."""
    vals = np.asarray([v for v in values if isinstance(v, (int, float)) and np.isfinite(v)], dtype=np.float64)
    if vals.size == 0 or len(words) < 2:
        return None
    qs = np.linspace(0.0, 1.0, len(words) + 1)[1:-1]
    edges = tuple(float(e) for e in np.quantile(vals, qs))
    return WordBins(key=key, name=name, words=tuple(words), edges=edges)


def fixed_bins(key: str, name: str, words: Sequence[str | None], edges: Sequence[float]) -> WordBins:
    """Bins with the given inner ``edges`` (ascending, one fewer than ``words``); a ``None``
    or empty word makes its bin silent.  Raises ValueError on a malformed spec."""
    edges = [float(e) for e in edges]
    if len(edges) != len(words) - 1 or not edges:
        raise ValueError(f"prompts.bins.{key}: {len(words)} words need {len(words) - 1} edges, got {len(edges)}")
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"prompts.bins.{key}: edges must be strictly ascending, got {edges}")
    return WordBins(key=key, name=name, words=tuple(w or "" for w in words), edges=tuple(edges))


def words_for(features: Mapping[str, object], bins: Sequence[WordBins]) -> dict[str, str]:
    """``{bin name: word}`` for the features an item has."""
    out = {}
    for b in bins:
        v = features.get(b.key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and b.word(float(v)):
            out[b.name] = b.word(float(v))
    return out
