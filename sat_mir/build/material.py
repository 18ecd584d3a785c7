"""Prompt material per item, from its features, tags, descriptions and user metadata.

The material is data; sampling a prompt from it happens at training time
(``custom_metadata/prompts.py``), so every epoch sees a different prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sat_mir.build.bins import WordBins, words_for

__all__ = ["item_material", "top_labels"]


def top_labels(value: Any, *, top_k: int, threshold: float) -> list[str]:
    """Labels from a classifier output: ``{label: prob}`` (the ``essentia`` extractor's
    ``essentia_genre`` / ``essentia_mood`` / ``essentia_instrument``) → the ``top_k`` most
    probable at or above ``threshold``, Discogs ``"Genre---Style"`` labels as their style
    (``"Electronic---Techno"`` → ``"Techno"``; a style under two genres counts once), followed
    by the parent genres of the styles kept (``"Electronic"``), which prompts of Stable Audio's
    own training data name beside the style; a list or a string is taken as is."""
    if isinstance(value, Mapping):
        ranked = sorted(((float(p), str(k)) for k, p in value.items()
                         if isinstance(p, (int, float)) and not isinstance(p, bool)), reverse=True)
        styles: dict[str, list[str]] = {}  # style -> its parent genres, most probable first
        for p, k in ranked:
            genre, _, style = k.rpartition("---")
            style, genre = style.strip(), genre.strip()
            if p >= threshold and style and (style in styles or len(styles) < top_k):
                styles.setdefault(style, []).extend([genre] if genre else [])
        parents = dict.fromkeys(g for gs in styles.values() for g in gs if g not in styles)
        return [*styles, *parents]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v).strip()][:top_k]
    if isinstance(value, str) and value.strip():
        return [value.strip()]
    return []


def item_material(
    features: Mapping[str, Any],
    *,
    bins: Sequence[WordBins],
    controls: Mapping[str, str],
    tags: Mapping[str, str],
    descriptions: Sequence[str],
    metadata: Mapping[str, Any] | None = None,
    top_k: int = 5,
    threshold: float = 0.1,
) -> dict[str, Any]:
    """Build the material dict for one item.

    ``controls``: control name (bpm, key, meter, chords) → feature key.
    ``tags``: prompt field name (genre, mood, instrument) → feature key of a classifier output
    (see :func:`top_labels`).
    ``descriptions``: feature keys holding free-text descriptions (Music Flamingo's
    ``flamingo_<prompt>``); the recipe decides whether one leads a prompt or is the whole prompt.
    ``metadata``: user metadata fields (artist, title, album, year, ...), already chosen.
    """
    fields: dict[str, Any] = {}
    for field_name, key in tags.items():
        labels = top_labels(features.get(key), top_k=top_k, threshold=threshold)
        if labels:
            fields[field_name] = labels
    for k, v in (metadata or {}).items():
        if v not in (None, "", []):
            fields[k] = v if isinstance(v, (list, str)) else str(v)
    ctrl = {}
    for name, key in controls.items():
        v = features.get(key)
        if v not in (None, "", []):
            ctrl[name] = v
    texts = [str(features[k]).strip() for k in descriptions if isinstance(features.get(k), str) and features[k].strip()]
    return {"fields": fields, "controls": ctrl, "words": words_for(features, bins), "descriptions": texts}
