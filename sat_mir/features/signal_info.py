"""Basic facts about the mix (duration, rate, channels, peak and RMS level) and whether it holds music.

Whether it holds music: seconds of sound, tonality and pulse clarity (:mod:`sat_mir.audio.content`).

The builder needs the duration to plan chunks, the peak to reject silence before
stable-audio-tools would silently swap a silent file for another, and the content measures
to leave noise, DC offsets and near-silence out of training.
"""

from __future__ import annotations


import numpy as np

from sat_mir.audio.content import PITCHED, RHYTHMIC, content_of
from sat_mir.audio.context import TrackContext
from sat_mir.audio.headroom import sample_peak
from sat_mir.errors import ExtractorError
from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec, register

__all__ = ["SignalInfo"]


def _dbfs(x: float) -> float:
    return float(20.0 * np.log10(x))


@register
class SignalInfo(Extractor):
    name = "info"
    version = "2"  # 2: sound_s, tonality, pulse_clarity
    signals = ("mix",)
    outputs = (
        OutputSpec("duration_s", "s", "duration of the mix", (0.0, 24 * 3600.0)),
        OutputSpec("sample_rate", "Hz", "native sample rate of the mix file", (8000, 384000), kind="int"),
        OutputSpec("channels", "channels", "channel count of the mix file", (1, 64), kind="int"),
        OutputSpec("peak_dbfs", "dBFS", "sample peak of the mix (any channel)", (-120.0, 6.0)),
        OutputSpec("rms_dbfs", "dBFS", "RMS level of the mix (all channels)", (-120.0, 6.0)),
        OutputSpec("sound_s", "s", "seconds of the mix louder than -60 dBFS RMS, DC and below 20 Hz left out",
                   (0.0, 24 * 3600.0)),
        OutputSpec("tonality", "ratio", "share of the mix's 60 Hz-5 kHz energy in lasting spectral peaks "
                   f"(noise 0; pitched content >= {PITCHED:g})", (0.0, 1.0)),
        OutputSpec("pulse_clarity", "ratio", "highest normalised autocorrelation of the onset envelope at "
                   f"30-200 BPM, 0 for a steady sound (noise, a hum); a pulse >= {RHYTHMIC:g}", (0.0, 1.0)),
    )

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        x = ctx.mix.samples
        peak = sample_peak(x)
        if peak == 0.0:
            raise ExtractorError("mix is digital silence (every sample is 0)")
        flat = x.reshape(-1)
        rms = float(np.sqrt(np.dot(flat, flat) / flat.size))  # float32 dot accumulates pairwise: accurate
        content = content_of(ctx.mix)
        return ExtractorResult(values={
            "sound_s": round(content.sound_s, 3),
            "tonality": content.tonality,
            "pulse_clarity": content.pulse_clarity,
            "duration_s": round(ctx.mix.duration_s, 6),
            "sample_rate": ctx.mix.sr,
            "channels": int(x.shape[0]),
            "peak_dbfs": round(_dbfs(peak), 4),
            "rms_dbfs": round(_dbfs(rms), 4),
        })
