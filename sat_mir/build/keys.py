"""Every feature key the build's configuration names must be one an extractor declares.

A misspelt key (``conditioning.numbers=[bmp]``) or one no extractor writes would otherwise
give items with no such value, silently: a prompt field that never appears, a number
conditioner filled with the corpus median of nothing.  The build checks before it starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from sat_mir.audio.context import STEM_NAMES
from sat_mir.build.corpus import CROP_SECTION_FEATURES
from sat_mir.errors import ConfigError

__all__ = ["check_feature_keys", "known_keys"]

# values a crop item carries besides its extractors' (cut.py's renamed track values)
_CROP_KEYS = ("track_bpm", "track_duration_s")


def known_keys() -> set[str]:
    """Every key a registered extractor declares (per-stem keys for each stem name), and the
    values the crops add."""
    import sat_mir.features  # noqa: F401  - registers the built-in extractors
    from sat_mir.features.registry import REGISTRY

    keys = {k for cls in REGISTRY.values() for spec in cls.outputs for k in spec.expand(STEM_NAMES)}
    return keys | set(CROP_SECTION_FEATURES) | set(_CROP_KEYS)


def check_feature_keys(prompts: Mapping[str, Any], conditioning: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the first setting whose feature key no extractor declares."""
    known = known_keys()
    for where, key in _named_keys(prompts, conditioning):
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
