"""The feature keys a dataset's items can hold, and the check that a setting names one of them.

A misspelt key (``conditioning.numbers=[bmp]``) or one no extractor writes would otherwise
give items with no such value, silently: a prompt field that never appears, a number
conditioner filled with the corpus median of nothing, a Music Flamingo hint that is never
filled.  The build checks its prompt and conditioning settings before it starts, the
extraction the keys its extractors read (``reads_features``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sat_mir.audio.context import STEM_NAMES
from sat_mir.errors import ConfigError
from sat_mir.store.dataset import CROP_SECTION_FEATURES, INHERITED_RENAMED

__all__ = ["check_feature_keys", "check_read_keys", "known_keys"]


def known_keys() -> set[str]:
    """Every key a registered extractor declares (per-stem keys for each stem name), and the
    values the crops add."""
    import sat_mir.features  # noqa: F401  - registers the built-in extractors
    from sat_mir.features.registry import REGISTRY

    keys = {k for cls in REGISTRY.values() for spec in cls.outputs for k in spec.expand(STEM_NAMES)}
    return keys | set(CROP_SECTION_FEATURES) | set(INHERITED_RENAMED.values())


def check_feature_keys(prompts: Mapping[str, Any], conditioning: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the first setting whose feature key no extractor declares."""
    known = known_keys()
    for where, key in _named_keys(prompts, conditioning):
        _check(where, key, known)


def check_read_keys(extractors: Sequence[Any]) -> list[str]:
    """Raise :class:`ConfigError` when an extractor reads a key no extractor declares; return
    ``extractors.<name> reads <key>`` for keys declared only by extractors not enabled in this
    run (their values may be in the sidecars from an earlier run, so that is a warning)."""
    known = known_keys()
    enabled = {k for ex in extractors for spec in ex.outputs for k in spec.expand(STEM_NAMES)}
    off = []
    for ex in extractors:
        for key in ex.reads_features:
            _check(f"extractors.{ex.name}", key, known)
            if key not in enabled:
                off.append(f"extractors.{ex.name} reads {key}")
    return off


def _check(where: str, key: str, known: set[str]) -> None:
    if key not in known:
        near = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.5)
        hint = f"; nearest known keys: {', '.join(near)}" if near else ""
        raise ConfigError(f"{where} names the feature key {key!r}, which no extractor declares{hint} "
                          "(every key is listed in docs/features.md)")


def _named_keys(prompts: Mapping[str, Any], conditioning: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key in (prompts.get("bins") or {}):
        yield f"prompts.bins.{key}", key
    for name, key in (prompts.get("controls") or {}).items():
        yield f"prompts.controls.{name}", key
    for name, key in (prompts.get("tags") or {}).items():
        yield f"prompts.tags.{name}", key
    for i, key in enumerate(prompts.get("descriptions") or []):
        yield f"prompts.descriptions[{i}]", key
    for i, key in enumerate(conditioning.get("numbers") or []):
        yield f"conditioning.numbers[{i}]", key
