"""Numeric conditionings: per-item floats, and the SAT model-config block that consumes them.

Each configured feature becomes a SAT ``number`` conditioner whose
``min_val``/``max_val`` come from the dataset's robust range (percentiles, then
a margin), routed through cross-attention: each conditioner adds one token to
the cross-attention sequence, so the model's widths do not change and a
pretrained checkpoint still loads (the new conditioner weights start random).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sat_mir.errors import ConfigError

__all__ = ["NumberSpec", "fit_numbers", "merge_model_config", "numbers_for"]

# Keys SAT itself fills in; they are never ours to add.
SAT_TIMING_KEYS = ("seconds_start", "seconds_total")


@dataclass(frozen=True)
class NumberSpec:
    key: str
    min_val: float
    max_val: float
    fill: float  # the corpus median: the value used when an item lacks the feature and policy is "fill"

    def to_dict(self) -> dict:
        return {"key": self.key, "min_val": self.min_val, "max_val": self.max_val, "fill": self.fill}


def fit_numbers(
    keys: Sequence[str], values: Mapping[str, Sequence[float]], *, lower_q: float = 0.01, upper_q: float = 0.99,
    margin: float = 0.05,
) -> list[NumberSpec]:
    """Range and fill value of each key from the corpus values.

    Raises
    ------
    ConfigError
        A configured key has no finite value anywhere in the corpus.
    """
    out = []
    for key in keys:
        vals = np.asarray([v for v in values.get(key, []) if _finite(v)], dtype=np.float64)
        if vals.size == 0:
            raise ConfigError(
                f"conditioning.numbers lists {key!r}, but no item has a value for it; "
                "run the extractor that produces it or remove it from the list"
            )
        lo, hi = (float(x) for x in np.quantile(vals, [lower_q, upper_q]))
        span = hi - lo if hi > lo else max(abs(hi), 1.0)
        out.append(NumberSpec(key, _nice(lo - margin * span, "down"), _nice(hi + margin * span, "up"),
                              float(np.median(vals))))
    return out


def numbers_for(features: Mapping[str, Any], specs: Sequence[NumberSpec], *, policy: str) -> dict[str, float] | None:
    """The item's floats for every spec; None when a value is missing and ``policy`` is
    ``"reject"`` (the item is left out), the corpus median when it is ``"fill"``."""
    if policy not in ("fill", "reject"):
        raise ConfigError(f"conditioning.missing must be 'fill' or 'reject', got {policy!r}")
    out = {}
    for spec in specs:
        v = features.get(spec.key)
        if _finite(v):
            out[spec.key] = float(v)
        elif policy == "fill":
            out[spec.key] = spec.fill
        else:
            return None
    return out


def merge_model_config(base: Mapping[str, Any], specs: Sequence[NumberSpec]) -> dict[str, Any]:
    """``base`` (a SAT ``diffusion_cond`` model config) with our number conditioners added.

    Conditioners with the same id are replaced; ids are appended to
    ``model.diffusion.cross_attention_cond_ids``; every ``training.demo.demo_cond``
    entry gets each new key (the corpus median) so SAT's demo callback does not fail.

    Raises
    ------
    ConfigError
        ``base`` is not a conditioned diffusion model config.
    """
    cfg = copy.deepcopy(dict(base))
    model = cfg.get("model")
    if cfg.get("model_type") not in ("diffusion_cond", "diffusion_cond_inpaint") or not isinstance(model, dict):
        raise ConfigError(
            f"the SAT model config must be a diffusion_cond config, got model_type={cfg.get('model_type')!r}"
        )
    conditioning = model.setdefault("conditioning", {"configs": [], "cond_dim": 768})
    ids = {s.key for s in specs}
    clash = ids & set(SAT_TIMING_KEYS)
    if clash:
        raise ConfigError(f"{sorted(clash)} are SAT's own timing conditioners; do not list them in conditioning.numbers")
    configs = [c for c in conditioning.get("configs", []) if c.get("id") not in ids]
    for s in specs:
        configs.append({"id": s.key, "type": "number", "config": {"min_val": s.min_val, "max_val": s.max_val}})
    conditioning["configs"] = configs
    diffusion = model.setdefault("diffusion", {})
    cross = list(diffusion.get("cross_attention_cond_ids", []))
    diffusion["cross_attention_cond_ids"] = cross + [s.key for s in specs if s.key not in cross]
    demo = cfg.get("training", {}).get("demo", {})
    for entry in demo.get("demo_cond", []) or []:
        for s in specs:
            entry.setdefault(s.key, s.fill)
    return cfg


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _nice(x: float, direction: str) -> float:
    """Round a range bound outward to 3 significant digits so configs read well."""
    if x == 0:
        return 0.0
    digits = 2 - int(math.floor(math.log10(abs(x))))
    scale = 10.0**digits
    return (math.floor if direction == "down" else math.ceil)(x * scale) / scale
