"""Peaks: true peak (ITU-R BS.1770-4 Annex 2) and saturated spans, per channel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ExtractorError
from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec, register

__all__ = ["Peaks", "saturated_spans", "true_peak"]


def true_peak(samples: np.ndarray, sr: int) -> float:
    """Largest absolute value of the signal oversampled to at least 176.4 kHz (linear).

    Only neighbourhoods of samples within 6 dB of the sample peak are oversampled:
    an inter-sample peak lies next to large samples, and this keeps the cost small.
    """
    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    factor = max(1, int(np.ceil(176400 / sr)))
    sample_peak = float(np.max(np.abs(x)))
    if factor == 1 or sample_peak == 0.0:
        return sample_peak
    half = 24  # samples of context each side: longer than the interpolation filter's reach
    n = x.shape[1]
    hot = np.flatnonzero(np.max(np.abs(x), axis=0) >= sample_peak * 10 ** (-6 / 20))
    # an abrupt start or end of the file rings in the interpolator; that is not a peak of the signal
    hot = hot[(hot >= half) & (hot < n - half)]
    peak = sample_peak
    # merge neighbourhoods into runs so each is resampled once; keep only the output between the
    # run's first and last hot sample, away from the zero-padded ends of the excerpt
    starts = np.concatenate([[0], np.flatnonzero(np.diff(hot) > 2 * half) + 1]) if hot.size else []
    ends = np.concatenate([starts[1:], [hot.size]]) if hot.size else []
    for a, b in zip(starts, ends):
        first, last = hot[a], hot[b - 1]
        lo, hi = first - half, last + half + 1
        up = resample_poly(x[:, lo:hi], factor, 1, axis=1)
        core = up[:, (first - lo) * factor : (last - lo + 1) * factor]
        peak = max(peak, float(np.max(np.abs(core))))
    return peak


def saturated_spans(samples: np.ndarray, sr: int, *, threshold: float, frame: int = 256,
                    merge_s: float = 0.02, min_s: float = 0.01) -> tuple[float, int]:
    """(fraction of time saturated, number of saturated spans) from per-channel frame peaks.

    A frame is saturated when any channel's peak reaches ``threshold``; spans closer
    than ``merge_s`` merge, spans shorter than ``min_s`` are dropped.
    """
    x = np.atleast_2d(samples)
    n = x.shape[1] // frame
    if n == 0:
        return 0.0, 0
    peaks = np.abs(x[:, : n * frame]).reshape(x.shape[0], n, frame).max(axis=(0, 2))
    flagged = np.flatnonzero(peaks >= threshold)
    if flagged.size == 0:
        return 0.0, 0
    gap = max(1, round(merge_s * sr / frame))
    shortest = max(1, round(min_s * sr / frame))
    breaks = np.flatnonzero(np.diff(flagged) > gap)
    starts = np.concatenate([[flagged[0]], flagged[breaks + 1]])
    ends = np.concatenate([flagged[breaks], [flagged[-1]]]) + 1
    keep = (ends - starts) >= shortest
    saturated_frames = int(np.sum((ends - starts)[keep]))
    return saturated_frames / n, int(keep.sum())


@register
class Peaks(Extractor):
    name = "peaks"
    version = "1"
    signals = ("mix",)
    outputs = (
        OutputSpec("true_peak_dbtp", "dBTP", "true peak of the mix (BS.1770-4, ≥4× oversampled)", (-120.0, 12.0)),
        OutputSpec("saturation_ratio", "ratio", "fraction of the mix's time in saturated spans", (0.0, 1.0)),
        OutputSpec("saturation_count", "spans", "number of saturated spans (per-channel peaks)", (0, 1_000_000),
                   kind="int"),
    )

    @dataclass(frozen=True)
    class Config:
        threshold: float = 0.95  # linear sample peak that counts as saturated (the seed's value)

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        x, sr = ctx.mix.samples, ctx.mix.sr
        tp = true_peak(x, sr)
        if tp == 0.0:
            raise ExtractorError("the mix is digital silence: no peak level")
        ratio, count = saturated_spans(x, sr, threshold=self.config.threshold)
        return ExtractorResult(values={"true_peak_dbtp": round(20 * np.log10(tp), 4),
                                       "saturation_ratio": round(ratio, 6), "saturation_count": count})
