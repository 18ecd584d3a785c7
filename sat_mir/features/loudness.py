"""Loudness: integrated LUFS and loudness range of the mix and of each stem.

Stems are measured exactly as they are, i.e. at their level in the mix: sat-mir
never normalises a stem (the seed peak-normalised stems, so its stem LUFS said
nothing about the balance of a mix).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sat_mir.audio.context import SignalContext, TrackContext
from sat_mir.errors import ExtractorError
from sat_mir.features.bs1770 import chunk_energy, chunk_parts, loudness_stats_of_chunks, whole_chunks
from sat_mir.features.registry import Extractor, ExtractorResult, Needs, OutputSpec, register

__all__ = ["Loudness", "chunk_energy_of"]


@register
class Loudness(Extractor):
    name = "loudness"
    needs = Needs(min_seconds=0.4, min_sound_s=0.4)  # one BS.1770 gating block
    version = "2"  # 2: the 100 ms chunks summed from 10 ms parts (shared with the momentary-loudness series)
    signals = ("mix", "stems")
    outputs = (
        OutputSpec("lufs", "LUFS", "integrated loudness of the mix (ITU-R BS.1770-4, gated)", (-70.0, 5.0)),
        OutputSpec("lra", "LU", "loudness range of the mix (EBU Tech 3342)", (0.0, 40.0)),
        OutputSpec("lufs_{stem}", "LUFS", "integrated loudness of a stem at its level in the mix", (-70.0, 5.0)),
        OutputSpec("lra_{stem}", "LU", "loudness range of a stem (EBU Tech 3342)", (0.0, 40.0)),
    )

    @dataclass(frozen=True)
    class Config:
        stems: bool = True

    def prepare(self, ctx: TrackContext, stem: str) -> None:
        if self.config.stems:
            _measure(ctx.stem(stem))

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        result = ExtractorResult()
        lufs, lra = _measure(ctx.mix)
        if lufs is None:
            raise ExtractorError(lra)
        result.values["lufs"] = lufs
        if isinstance(lra, float):
            result.values["lra"] = lra
        else:
            result.absent["lra"] = lra
        if self.config.stems:
            for stem in ctx.stem_names:
                s_lufs, s_lra = _measure(ctx.stem(stem))
                if s_lufs is None:
                    result.absent[f"lufs_{stem}"] = s_lra
                    result.absent[f"lra_{stem}"] = s_lra
                    continue
                result.values[f"lufs_{stem}"] = s_lufs
                if isinstance(s_lra, float):
                    result.values[f"lra_{stem}"] = s_lra
                else:
                    result.absent[f"lra_{stem}"] = s_lra
        return result


def _measure(sig: SignalContext) -> tuple[float | None, float | str]:
    """(lufs, lra) of a signal; ``lufs`` None means no loudness exists, and the
    second item then says why.  An LRA that does not exist is a reason string."""
    lufs, lra = sig.memo(("bs1770",), lambda: loudness_stats_of_chunks(whole_chunks(*chunk_energy_of(sig)), sig.sr))
    if math.isnan(lufs):
        return None, f"{sig.name} is shorter than one 400 ms loudness block ({sig.duration_s:.3f} s)"
    if math.isinf(lufs):
        return None, f"{sig.name} is silent (no 400 ms block above the -70 LUFS absolute gate)"
    if math.isnan(lra):
        return round(lufs, 4), f"{sig.name} has no 3 s window above the loudness-range gates"
    return round(lufs, 4), round(lra, 4)


def chunk_energy_of(sig: SignalContext) -> tuple[np.ndarray, int]:
    """The K-weighted energy of ``sig`` in parts of 100 ms chunks, 10 ms where the rate allows
    (:func:`~sat_mir.features.bs1770.chunk_energy`), and the parts per chunk; memoised: the
    loudness and the momentary-loudness series share one filter pass."""
    parts = chunk_parts(sig.sr)
    return sig.memo(("bs1770.parts",), lambda: chunk_energy(sig.samples, sig.sr, parts)), parts
