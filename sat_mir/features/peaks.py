"""Peaks: true peak (ITU-R BS.1770-4 Annex 2) and saturated spans, per channel."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import resample_poly

from sat_mir.audio.context import TrackContext
from sat_mir.audio.headroom import sample_peak
from sat_mir.errors import ExtractorError
from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec, register

__all__ = ["Peaks", "saturated_spans", "true_peak"]

_BLOCK = 1 << 18  # samples per channel looked at together


def true_peak(samples: np.ndarray, sr: int) -> float:
    """Largest absolute value of the signal oversampled to at least 176.4 kHz (linear).

    An inter-sample peak sits next to a local maximum of ``|x|``, so only windows
    around local maxima within 6 dB of the sample peak are oversampled, all in one
    matrix product; the file's first and last samples are left out (an
    abrupt start rings in any interpolator and is not a peak of the signal).
    """
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    factor = max(1, int(np.ceil(176400 / sr)))
    n = x.shape[1]
    peak = sample_peak(x)
    if factor == 1 or peak == 0.0:
        return peak
    half = 24  # context each side: longer than the interpolation filter's reach
    floor = peak * 10 ** (-6 / 20)
    found = []
    for s in range(1, n - 1, _BLOCK):  # local maxima at s .. e-1 within 6 dB of the peak
        e = min(s + _BLOCK, n - 1)
        a = np.abs(x[:, s - 1:e + 1])
        inner = a[:, 1:-1]
        is_max = (inner >= a[:, :-2]) & (inner >= a[:, 2:]) & (inner >= floor)
        c, i = np.nonzero(is_max)
        found.append((c, i + s))
    if not found:
        return peak
    ch, idx = (np.concatenate(v) for v in zip(*found))
    order = np.lexsort((idx, ch))  # channel by channel, as one pass over the whole signal finds them
    ch, idx = ch[order], idx[order]
    keep = (idx >= half) & (idx < n - half)
    ch, idx = ch[keep], idx[keep]
    if idx.size == 0:
        return peak
    taps = _interpolator(factor, half)
    reach = np.flatnonzero(np.any(taps != 0.0, axis=1))  # the input samples the filter reaches
    lo, hi = int(reach[0]), int(reach[-1]) + 1
    windows = x[ch[:, None], idx[:, None] + np.arange(lo - half, hi - half)[None, :]]
    core = windows @ taps[lo:hi]
    return max(peak, sample_peak(core))


@lru_cache(maxsize=8)
def _interpolator(factor: int, half: int) -> np.ndarray:
    """The linear map ``[2·half + 1, 2·factor + 1]`` from a window of samples centred on a
    local maximum to the ``factor``-times oversampled values between its two neighbours:
    ``resample_poly``'s own filter, read off its response to each unit impulse.  Applying it
    as one matrix product computes only the oversampled values that are kept (the full
    polyphase filtering of every window cost 5x more)."""
    eye = np.eye(2 * half + 1, dtype=np.float32)
    return resample_poly(eye, factor, 1, axis=1)[:, (half - 1) * factor : (half + 1) * factor + 1]


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
    per = max(1, _BLOCK // frame)  # frames per block: no |x| of the whole signal at once
    peaks = np.concatenate([np.abs(x[:, s * frame:min(s + per, n) * frame]).reshape(x.shape[0], -1, frame)
                            .max(axis=(0, 2)) for s in range(0, n, per)])
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
