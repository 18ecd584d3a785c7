"""Facts below their confidence: left out of prompts and numeric conditionings.

A measured value whose spec names a confidence key (``bpm`` → ``tempo_confidence``, ``key`` →
``key_confidence``, ``time_signature`` → ``meter_confidence``; see docs/features.md) is not
stated when that confidence is below the configured minimum (``min_confidence`` in
conf/build.yaml): a likely wrong BPM in a prompt teaches the model a wrong control, so such a
value is treated like a failed measurement.  Values without a recorded confidence (sidecars of
older versions) are kept.  The features themselves (sidecars, features.parquet) keep every
value with its confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sat_mir.errors import ConfigError

__all__ = ["trusted_facts"]


def trusted_facts(features: Mapping[str, Any], min_confidence: Mapping[str, float],
                  confidence_of: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(``features`` without the values below their confidence, {left-out key: why}).

    Parameters
    ----------
    min_confidence : confidence key → minimum (e.g. ``{"tempo_confidence": 0.5}``); a
        confidence key not listed never leaves a value out.
    confidence_of : value key → its confidence key (:func:`sat_mir.features.registry.confidence_keys`).

    Raises
    ------
    ConfigError
        A minimum that is not a number in [0, 1].
    """
    for key, lo in min_confidence.items():
        if not isinstance(lo, (int, float)) or isinstance(lo, bool) or not 0.0 <= lo <= 1.0:
            raise ConfigError(f"min_confidence.{key} must be a number in [0, 1], got {lo!r}")
    out = dict(features)
    dropped: dict[str, str] = {}
    for key, conf_key in confidence_of.items():
        if key not in out or conf_key not in min_confidence:
            continue
        conf = features.get(conf_key)
        if isinstance(conf, (int, float)) and not isinstance(conf, bool) and conf < min_confidence[conf_key]:
            dropped[key] = f"{conf_key} {conf:.2f} < {min_confidence[conf_key]:.2f}"
            del out[key]
    return out, dropped
