"""Full scale for training audio: what to do with sources that go over it.

A float source (a WAV peaking at 4.0, a resampled master's inter-sample peaks) does not fit
the 24-bit FLAC that crops and training items are written as; writing it would clip it
without a word, and a model trained on it learns the distortion.  ``peak_policy`` says what
happens instead:

    normalize  scale the whole signal (a track with its stems, or a crop) by one gain so its
               peak sits at -0.1 dBFS; the gain is logged and recorded with the item (default)
    reject     leave the item out, with the reason
    clip       write it clipped, as before; the clipped samples are counted and logged
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sat_mir.errors import AudioRangeError, ConfigError

__all__ = ["CEILING", "PEAK_POLICIES", "Headroom", "check_peak_policy", "fit_full_scale", "sample_peak"]

PEAK_POLICIES = ("normalize", "reject", "clip")
CEILING = 10 ** (-0.1 / 20)  # -0.1 dBFS: below PCM's full scale with room for dither-free rounding


@dataclass(frozen=True)
class Headroom:
    """What :func:`fit_full_scale` did: the source's peak, the gain applied (dB, 0 when none)
    and how many samples were clipped (``clip`` only)."""

    peak: float
    gain_db: float = 0.0
    clipped: int = 0

    @property
    def changed(self) -> bool:
        return self.gain_db != 0.0 or self.clipped > 0

    def describe(self) -> str:
        if self.clipped:
            return f"peak {self.peak:.3f} (+{20 * np.log10(self.peak):.1f} dBFS): {self.clipped} samples clipped"
        return f"peak {self.peak:.3f} (+{20 * np.log10(self.peak):.1f} dBFS): scaled by {self.gain_db:.2f} dB"


def sample_peak(x: np.ndarray) -> float:
    """The largest absolute sample of ``x`` (0.0 when empty; NaN when it holds one): its max and
    -min, in 40 % of the time of ``np.abs(x).max()``, which copies the whole signal first."""
    return max(float(x.max()), -float(x.min())) if x.size else 0.0


def check_peak_policy(policy: str, where: str = "peak_policy") -> str:
    if policy not in PEAK_POLICIES:
        raise ConfigError(f"{where} must be one of {list(PEAK_POLICIES)}, got {policy!r}")
    return policy


def fit_full_scale(signals: Mapping[str, np.ndarray], policy: str) -> tuple[dict[str, np.ndarray], Headroom]:
    """Bring ``signals`` (float arrays, e.g. a mix and its stems) within full scale together.

    One gain for all of them keeps a mix and its stems in proportion.  Signals within
    [-1, 1] come back unchanged (the same arrays).  ``reject`` raises :class:`AudioRangeError`.
    """
    check_peak_policy(policy)
    peak = max((sample_peak(x) for x in signals.values()), default=0.0)
    if not np.isfinite(peak):
        raise AudioRangeError("the audio holds non-finite samples")
    if peak <= 1.0:
        return dict(signals), Headroom(peak)
    if policy == "reject":
        raise AudioRangeError(f"peak {peak:.3f} (+{20 * np.log10(peak):.1f} dBFS) is over full scale "
                              "(peak_policy=reject)")
    if policy == "clip":
        clipped = sum(int(np.count_nonzero(np.abs(x) > 1.0)) for x in signals.values())
        return {k: np.clip(x, -1.0, 1.0) for k, x in signals.items()}, Headroom(peak, clipped=clipped)
    gain = CEILING / peak
    out = {k: (x * np.float32(gain)).astype(np.float32, copy=False) for k, x in signals.items()}
    return out, Headroom(peak, gain_db=round(float(20 * np.log10(gain)), 4))
