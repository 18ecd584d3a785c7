"""Audiobox Aesthetics: four learned quality ratings of the mix (Meta, CC-BY 4.0).

Content Enjoyment, Content Usefulness, Production Complexity and Production Quality,
each on the model's roughly 1–10 scale, from the mono mix at 16 kHz in 10 s windows
(see :mod:`sat_mir.models.audiobox`).  Values outside 1–10 are kept and flagged by the
registry, never clamped; a track the model cannot rate gets an error, never a stand-in
number (the seed wrote 5.5 for every axis when the model was missing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ConfigError, ExtractorError
from sat_mir.extras import require
from sat_mir.features.registry import ExtractorResult, ModelExtractor, OutputSpec, register
from sat_mir.models.audiobox import (
    AUDIOBOX,
    AXES,
    SAMPLE_RATE,
    load_aesthetics,
    resolve_device,
)
from sat_mir.models.spec import locate

__all__ = ["Aesthetics"]

_RATING = (1.0, 10.0)
_KEYS = {"CE": "aes_ce", "CU": "aes_cu", "PC": "aes_pc", "PQ": "aes_pq"}


@register
class Aesthetics(ModelExtractor):
    """The four Audiobox Aesthetics ratings of the mix; every item of a batch shares the
    model's forward passes."""

    name = "aesthetics"
    version = "1"
    signals = ("mix",)
    outputs = (
        OutputSpec("aes_ce", "rating", "Audiobox Aesthetics content enjoyment (about 1-10)", _RATING),
        OutputSpec("aes_cu", "rating", "Audiobox Aesthetics content usefulness as material for "
                   "creators (about 1-10)", _RATING),
        OutputSpec("aes_pc", "rating", "Audiobox Aesthetics production complexity: how many sound "
                   "sources and layers (about 1-10)", _RATING),
        OutputSpec("aes_pq", "rating", "Audiobox Aesthetics production quality: clarity, dynamics, "
                   "frequency balance, spatialisation (about 1-10)", _RATING),
    )

    @dataclass(frozen=True)
    class Config:
        models_dir: str | None = None  # None: sat_mir.models.default_models_dir()
        device: str = "auto"  # "auto": CUDA when present, else CPU
        bf16: bool = True  # bfloat16 autocast on CUDA (the CPU always runs float32)
        batch_windows: int = 16  # 10 s windows per forward pass, across the items of a batch

    def preflight(self) -> None:
        """Raises :class:`~sat_mir.errors.WeightsError` naming the missing checkpoint and the
        download command, or :class:`~sat_mir.errors.ConfigError` for an invalid setting."""
        b = self.config.batch_windows
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ConfigError(f"extractors.aesthetics.batch_windows must be an int >= 1, got {b!r}")
        locate(AUDIOBOX, self.config.models_dir)  # first: without weights, torch is never imported
        require("models", "extractor aesthetics", ("torch", "audiobox_aesthetics"))
        resolve_device(self.config.device)

    def compute_batch(self, ctxs: list[TrackContext]) -> list[ExtractorResult | Exception]:
        """Rate every item in shared forward passes; an item whose audio fails gets its own
        exception.  Raises :class:`~sat_mir.errors.WeightsError` /
        :class:`~sat_mir.errors.ConfigError` when the model cannot be loaded at all."""
        self.preflight()
        model = load_aesthetics(self.config.models_dir, device=self.config.device, bf16=self.config.bf16)
        out: list[ExtractorResult | Exception | None] = [None] * len(ctxs)
        todo: list[int] = []
        wavs: list[np.ndarray] = []
        for i, ctx in enumerate(ctxs):
            try:
                wavs.append(_model_input(ctx))
                todo.append(i)
            except Exception as exc:  # noqa: BLE001 - this item's failure, recorded by the runner
                out[i] = exc
        if todo:
            rows = model.predict(wavs, batch_windows=self.config.batch_windows)
            for i, row in zip(todo, rows):
                out[i] = ExtractorResult(values={_KEYS[a]: round(row[a], 4) for a in AXES})
        return out



def _model_input(ctx: TrackContext) -> np.ndarray:
    """The mono mix at 16 kHz (the channel mean, as the package takes it)."""
    sig = ctx.mix
    wav = sig.mono_at(SAMPLE_RATE)
    if wav.size == 0:
        raise ExtractorError("mix is empty")
    if not np.all(np.isfinite(wav)):
        raise ExtractorError("mix contains NaN or infinity")
    if not np.any(wav):
        raise ExtractorError("mix is digitally silent in mono (all samples zero): nothing to rate")
    return wav
