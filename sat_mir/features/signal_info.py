"""Basic facts about the mix: duration, sample rate, channels, peak and RMS level.

The builder needs the duration to plan chunks and the peak to reject silence
before stable-audio-tools would silently swap a silent file for another.
"""

from __future__ import annotations


import numpy as np

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ExtractorError
from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec, register

__all__ = ["SignalInfo"]


def _dbfs(x: float) -> float:
    return float(20.0 * np.log10(x))


@register
class SignalInfo(Extractor):
    name = "info"
    version = "1"
    signals = ("mix",)
    outputs = (
        OutputSpec("duration_s", "s", "duration of the mix", (0.0, 24 * 3600.0)),
        OutputSpec("sample_rate", "Hz", "native sample rate of the mix file", (8000, 384000), kind="int"),
        OutputSpec("channels", "channels", "channel count of the mix file", (1, 64), kind="int"),
        OutputSpec("peak_dbfs", "dBFS", "sample peak of the mix (any channel)", (-120.0, 6.0)),
        OutputSpec("rms_dbfs", "dBFS", "RMS level of the mix (all channels)", (-120.0, 6.0)),
    )

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        x = ctx.mix.samples
        peak = float(np.max(np.abs(x)))
        if peak == 0.0:
            raise ExtractorError("mix is digital silence (every sample is 0)")
        flat = x.reshape(-1)
        rms = float(np.sqrt(np.dot(flat, flat) / flat.size))  # float32 dot accumulates pairwise: accurate
        return ExtractorResult(values={
            "duration_s": round(ctx.mix.duration_s, 6),
            "sample_rate": ctx.mix.sr,
            "channels": int(x.shape[0]),
            "peak_dbfs": round(_dbfs(peak), 4),
            "rms_dbfs": round(_dbfs(rms), 4),
        })
