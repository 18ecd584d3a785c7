"""Genre, mood/theme, instruments, danceability, tonality and voice from Essentia's Discogs-EffNet classifiers.

One embedding pass per signal (``[patches, 1280]`` Discogs-EffNet embeddings of the 16 kHz
mono mix, memoised on the signal so every head shares it), then each head; a head's
probabilities are averaged over the patches (about one per second of audio).

Labels come from each model's JSON ``classes``.  ``essentia_genre`` keeps Discogs' own
``"Genre---Style"`` labels (e.g. ``"Electronic---Goa Trance"``): the style alone is often
ambiguous, and the prompt builder splits on ``---`` where it wants only the style.
``essentia_genre_top`` is the best of them written for people, ``"Goa Trance (Electronic)"``.

The models are MTG's, licensed CC BY-NC-SA 4.0: non-commercial use only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sat_mir.audio.context import SignalContext, TrackContext
from sat_mir.errors import ConfigError, WeightsError
from sat_mir.extras import require
from sat_mir.features.registry import ExtractorResult, ModelExtractor, Needs, OutputSpec, register
from sat_mir.models.essentia_tf import (
    ESSENTIA,
    HEADS,
    SAMPLE_RATE,
    discogs_label,
    load_models,
)
from sat_mir.models.spec import locate

__all__ = ["EssentiaTags", "top_tags"]

_HEAD_KEYS = tuple(HEADS)  # genre, mood, instrument, danceability, tonality, voice
# the class each probability output reports, found by name in the head's JSON
_POSITIVE = {"danceability": "danceable", "tonality": "atonal", "voice": "voice"}


def top_tags(probs: np.ndarray, classes: list[str], *, top_k: int, threshold: float) -> dict[str, float]:
    """``{label: probability}`` of the ``top_k`` classes at or above ``threshold``, highest first.

    Ties keep the JSON's class order; probabilities are rounded to 4 decimals.
    """
    order = np.argsort(-probs, kind="stable")[:top_k]
    return {classes[i]: round(float(probs[i]), 4) for i in order if probs[i] >= threshold}


@register
class EssentiaTags(ModelExtractor):
    name = "essentia"
    version = "2"
    needs = Needs(min_seconds=1.0, min_sound_s=1.0, music=True)  # a genre or mood of noise is not a fact
    signals = ("mix",)
    outputs = (
        OutputSpec("essentia_genre", "probability",
                   "Discogs genre---style labels (genre_discogs400 head; sigmoid, mean over ~2 s patches): "
                   "the top_k at or above threshold", kind="tags", holds="track"),
        OutputSpec("essentia_genre_top", "label", "the most probable Discogs style as 'Style (Genre)'", kind="str"),
        OutputSpec("essentia_mood", "probability",
                   "MTG-Jamendo mood/theme labels (56; sigmoid, mean over patches): the top_k at or above threshold",
                   kind="tags", holds="track"),
        OutputSpec("essentia_instrument", "probability",
                   "MTG-Jamendo instrument labels (40; sigmoid, mean over patches): the top_k at or above threshold",
                   kind="tags", holds="track"),
        OutputSpec("danceability", "probability",
                   "probability of the 'danceable' class (danceability head, softmax, mean over patches); not "
                   "Essentia's DFA Danceability algorithm", (0.0, 1.0)),
        OutputSpec("atonality", "probability",
                   "probability of the 'atonal' class (tonal_atonal head, softmax, mean over patches)", (0.0, 1.0)),
        OutputSpec("voice_probability", "probability",
                   "probability of the 'voice' class (voice_instrumental head, softmax, mean over patches): "
                   "singing or speech in the mix; 1 - p is the seed's instrumental_probability", (0.0, 1.0)),
    )

    @dataclass(frozen=True)
    class Config:
        models_dir: str | None = None
        device: str = "auto"
        top_k: int = 10
        threshold: float = 0.1

    def __init__(self, config: Config | None = None):
        super().__init__(config)
        c = self.config
        if c.device != "auto":
            raise ConfigError(f"extractors.essentia.device: only 'auto' is possible, got {c.device!r}; Essentia's "
                              f"libtensorflow picks its device itself (set CUDA_VISIBLE_DEVICES= to keep it on "
                              f"the CPU)")
        if isinstance(c.top_k, bool) or not isinstance(c.top_k, int) or c.top_k < 1:
            raise ConfigError(f"extractors.essentia.top_k must be an int >= 1, got {c.top_k!r}")
        if isinstance(c.threshold, bool) or not isinstance(c.threshold, (int, float)) or not 0.0 <= c.threshold <= 1.0:
            raise ConfigError(f"extractors.essentia.threshold must be in [0, 1], got {c.threshold!r}")

    def _folder(self) -> Path:
        return locate(ESSENTIA, self.config.models_dir)

    def preflight(self) -> None:
        """Raises WeightsError (missing file + download command) or ConfigError (no essentia-tensorflow)."""
        self._folder()
        # find_spec, not import: importing essentia loads libtensorflow, which must wait
        # until essentia_tf has silenced it
        require("models", "extractor essentia", ("essentia",))


    def compute_batch(self, ctxs: list[TrackContext]) -> list[ExtractorResult | Exception]:
        """Embeddings item by item (the model cuts its own patches), then each head once on
        the stacked embeddings of the whole batch."""
        try:
            models = load_models(self._folder(), _HEAD_KEYS)
        except (WeightsError, ConfigError) as exc:
            return [exc for _ in ctxs]
        out: list[ExtractorResult | Exception] = [ExtractorResult() for _ in ctxs]
        embs: dict[int, np.ndarray] = {}
        for i, ctx in enumerate(ctxs):
            try:
                embs[i] = _embeddings(ctx.mix, models)
            except Exception as exc:  # noqa: BLE001 - returned to the runner, which records it
                out[i] = exc
        if not embs:
            return out
        stacked = np.concatenate(list(embs.values()))
        bounds = np.cumsum([0] + [e.shape[0] for e in embs.values()])
        try:
            preds = {key: models.predict(key, stacked) for key in _HEAD_KEYS}
            positive = {key: _class_index(models, key, label) for key, label in _POSITIVE.items()}
        except Exception as exc:  # noqa: BLE001 - a head that fails fails every item of the batch
            return [exc if i in embs else o for i, o in enumerate(out)]
        for j, i in enumerate(embs):
            probs = {key: p[bounds[j]:bounds[j + 1]].mean(axis=0) for key, p in preds.items()}
            out[i].values.update(self._values(probs, models.classes, positive))
        return out

    def _values(self, probs: dict[str, np.ndarray], classes: dict[str, list[str]],
                positive: dict[str, int]) -> dict[str, object]:
        k, thr = self.config.top_k, float(self.config.threshold)
        genre = top_tags(probs["genre"], classes["genre"], top_k=k, threshold=thr)
        best_genre, best_style = discogs_label(classes["genre"][int(np.argmax(probs["genre"]))])
        return {
            "essentia_genre": genre,
            "essentia_genre_top": best_style if best_style == best_genre else f"{best_style} ({best_genre})",
            "essentia_mood": top_tags(probs["mood"], classes["mood"], top_k=k, threshold=thr),
            "essentia_instrument": top_tags(probs["instrument"], classes["instrument"], top_k=k, threshold=thr),
            "danceability": round(float(probs["danceability"][positive["danceability"]]), 4),
            "atonality": round(float(probs["tonality"][positive["tonality"]]), 4),
            "voice_probability": round(float(probs["voice"][positive["voice"]]), 4),
        }


def _embeddings(sig: SignalContext, models) -> np.ndarray:
    # keyed by folder: two models folders never share embeddings
    return sig.memo(("essentia_effnet_embeddings", str(models.folder)),
                    lambda: models.embeddings(sig.mono_at(SAMPLE_RATE)))


def _class_index(models, key: str, label: str) -> int:
    classes = models.classes[key]
    if label not in classes:
        raise WeightsError(f"{models.folder / (HEADS[key].stem + '.json')}: 'classes' {classes} lacks {label!r}; "
                           f"this is not the {HEADS[key].stem} model")
    return classes.index(label)
