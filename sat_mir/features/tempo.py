"""Tempo and beat grid of the mix.

Beats come from dynamic-programming beat tracking on the shared onset envelope;
the tempo is then measured from the grid itself (mean inter-beat interval over
the regular part), which is far finer than the tempogram's BPM bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ExtractorError
from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec, register

__all__ = ["Tempo", "BEATS_FILE", "tempo_from_beats"]

BEATS_FILE = "beats.txt"


@register
class Tempo(Extractor):
    name = "tempo"
    version = "1"
    signals = ("mix",)
    outputs = (
        OutputSpec("bpm", "BPM", "tempo of the mix, from the beat grid", (30.0, 300.0)),
        OutputSpec("beat_count", "beats", f"number of beats in the grid (written to {BEATS_FILE})",
                   (0, 100000), kind="int"),
    )

    @dataclass(frozen=True)
    class Config:
        sr: int = 22050
        hop: int = 512
        start_bpm: float = 120.0
        tightness: float = 100.0
        min_beats: int = 4

    @classmethod
    def warmup(cls) -> None:
        from pathlib import Path

        from sat_mir.audio.decode import Audio

        sr = 22050
        clicks = np.zeros((1, sr * 4), dtype=np.float32)
        clicks[0, :: sr // 2] = 1.0  # 120 BPM
        ctx = TrackContext({"mix": Path("<warmup>")}, loader=lambda _: Audio(clicks, sr))
        cls().compute(ctx)

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        import librosa

        c = self.config
        env = ctx.mix.onset_envelope(sr=c.sr, hop=c.hop)
        if not np.any(env > 0):
            raise ExtractorError("no onsets: the mix has no rhythmic content to track")
        _, beats = librosa.beat.beat_track(
            onset_envelope=env, sr=c.sr, hop_length=c.hop, start_bpm=c.start_bpm,
            tightness=c.tightness, units="time", trim=True,
        )
        beats = np.asarray(beats, dtype=np.float64)
        if beats.size < c.min_beats:
            raise ExtractorError(f"only {beats.size} beats found (need at least {c.min_beats})")
        bpm = tempo_from_beats(beats)
        grid = "".join(f"{t:.6f}\n" for t in beats)
        return ExtractorResult(
            values={"bpm": round(bpm, 3), "beat_count": int(beats.size)},
            artifacts={BEATS_FILE: grid},
        )


def tempo_from_beats(beats: np.ndarray) -> float:
    """BPM from beat times (s): 60 / mean of the inter-beat intervals within 10 % of the median.

    Dropping irregular intervals keeps a missed or doubled beat from biasing the mean.
    """
    ibi = np.diff(np.asarray(beats, dtype=np.float64))
    if ibi.size == 0:
        raise ExtractorError("need at least two beats to measure a tempo")
    med = float(np.median(ibi))
    regular = ibi[np.abs(ibi - med) <= 0.1 * med]
    return 60.0 / float(regular.mean())
