"""Essentia's Discogs-EffNet embeddings and classification heads, loaded from local ``.pb`` files.

The chain is MTG's own (``essentia-tensorflow``; see the ``*_predictions.py`` examples of
https://essentia.upf.edu/models.html): 16 kHz mono → ``TensorflowPredictEffnetDiscogs``
(mel front end, 128-frame patches every 62 frames, about one row per second) → ``[n, 1280]``
embeddings (``PartitionedCall:1``) → one ``TensorflowPredict2D`` per head → ``[n, classes]``.
Every file lives in ``<models_dir>/essentia/`` (:data:`ESSENTIA`, fetched with
``python -m sat_mir.models download essentia``); labels always come from each model's own
JSON ``classes``, never from a list in this code.

Essentia bundles libtensorflow 2.5, which picks its device itself: a GPU when it finds the
CUDA 11 runtime and cuDNN 8, the CPU otherwise (``CUDA_VISIBLE_DEVICES=`` keeps it off the
GPU).  ``TF_FORCE_GPU_ALLOW_GROWTH`` is set so that it does not reserve the whole GPU that
the torch models of the same run share.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sat_mir.errors import ExtractorError, WeightsError
from sat_mir.models.cache import ModelCache
from sat_mir.models.spec import ModelFile, ModelSpec

__all__ = [
    "EFFNET",
    "ESSENTIA",
    "HEADS",
    "MODELS",
    "PATCH_SECONDS",
    "SAMPLE_RATE",
    "EssentiaModels",
    "HeadSpec",
    "discogs_label",
    "load_models",
]

log = logging.getLogger("sat_mir.models.essentia")

SAMPLE_RATE = 16000
# TensorflowPredictEffnetDiscogs: 128 mel frames of hop 256 per patch
PATCH_SECONDS = 128 * 256 / SAMPLE_RATE
_BASE_URL = "https://essentia.upf.edu/models"


@dataclass(frozen=True)
class HeadSpec:
    """One classification head: its file stem, URL folder and graph node names."""

    key: str
    stem: str
    url_dir: str
    input: str = "model/Placeholder"
    output: str = "model/Sigmoid"


EFFNET = HeadSpec("effnet", "discogs-effnet-bs64-1", "feature-extractors/discogs-effnet",
                  input="serving_default_melspectrogram", output="PartitionedCall:1")
HEADS: dict[str, HeadSpec] = {h.key: h for h in (
    HeadSpec("genre", "genre_discogs400-discogs-effnet-1", "classification-heads/genre_discogs400",
             input="serving_default_model_Placeholder", output="PartitionedCall:0"),
    HeadSpec("mood", "mtg_jamendo_moodtheme-discogs-effnet-1", "classification-heads/mtg_jamendo_moodtheme"),
    HeadSpec("instrument", "mtg_jamendo_instrument-discogs-effnet-1", "classification-heads/mtg_jamendo_instrument"),
    HeadSpec("danceability", "danceability-discogs-effnet-1", "classification-heads/danceability",
             output="model/Softmax"),
    HeadSpec("tonality", "tonal_atonal-discogs-effnet-1", "classification-heads/tonal_atonal",
             output="model/Softmax"),
    HeadSpec("voice", "voice_instrumental-discogs-effnet-1", "classification-heads/voice_instrumental",
             output="model/Softmax"),
)}


def _files(spec: HeadSpec) -> tuple[ModelFile, ...]:
    return tuple(ModelFile(f"{spec.stem}{ext}", f"{_BASE_URL}/{spec.url_dir}/{spec.stem}{ext}") for ext in (".pb", ".json"))


ESSENTIA = ModelSpec(
    name="essentia",
    folder="essentia",
    files=sum((_files(s) for s in (EFFNET, *HEADS.values())), ()),
    licence="CC BY-NC-SA 4.0 (Music Technology Group, UPF; a proprietary licence is available from MTG)",
    used_by="extractor essentia (sat_mir.features.essentia_tags)",
    description="Discogs-EffNet bs64 embeddings with the genre_discogs400, MTG-Jamendo mood/theme and "
                "instrument, danceability, tonal/atonal and voice/instrumental heads (frozen TensorFlow graphs)",
    commercial_use=False,
)
MODELS: tuple[ModelSpec, ...] = (ESSENTIA,)


def discogs_label(label: str) -> tuple[str, str]:
    """``"Electronic---Goa Trance"`` → ``("Electronic", "Goa Trance")``; a label without ``---`` is its own style."""
    genre, sep, style = label.partition("---")
    return (genre, style) if sep else (label, label)


def _essentia_standard():
    """``essentia.standard`` with TensorFlow's start-up chatter silenced.

    The variables must be set before libtensorflow loads, which happens when ``essentia``
    itself is imported; ``setdefault`` leaves a user's own choice alone.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # errors still show
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    import essentia

    essentia.log.infoActive = False  # one "loaded graph" line per algorithm otherwise
    import essentia.standard as es

    return es


def _read_classes(path: Path) -> list[str]:
    try:
        meta = json.loads(path.read_text())
        classes = meta["classes"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path}: cannot read the model's 'classes' ({exc}); delete it and run  "
                           f"python -m sat_mir.models download {ESSENTIA.name}") from exc
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise WeightsError(f"{path}: 'classes' must be a non-empty list of labels")
    return classes


def _device() -> str:
    """Where libtensorflow runs, read from the libraries it managed to load into this process.

    Essentia's libtensorflow 2.5 loads the CUDA 11 runtime and the driver when it can and
    otherwise runs on the CPU; it says so only in the log lines silenced above.
    """
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "cpu"
    return "gpu" if "libcudart.so.11" in maps and "libcuda.so" in maps else "cpu"


class EssentiaModels:
    """The embedding model and the heads of one models folder, loaded once.

    Parameters
    ----------
    folder : the folder :func:`~sat_mir.models.locate` returned for :data:`ESSENTIA`.
    heads : keys of :data:`HEADS` to load.

    Raises
    ------
    WeightsError
        A graph or JSON file does not load (the message names it).
    """

    def __init__(self, folder: Path, heads: tuple[str, ...]):
        es = _essentia_standard()
        self.folder = Path(folder)
        # batchSize 64: the file's fixed batch; other values crash Essentia (see notes)
        self.effnet = self._load(es.TensorflowPredictEffnetDiscogs, EFFNET, batchSize=64)
        self.heads = {key: self._load(es.TensorflowPredict2D, HEADS[key]) for key in heads}
        self.classes = {key: _read_classes(self.folder / f"{HEADS[key].stem}.json") for key in heads}

    def _load(self, algorithm, spec: HeadSpec, **params):
        path = self.folder / f"{spec.stem}.pb"
        try:
            return algorithm(graphFilename=str(path), input=spec.input, output=spec.output, **params)
        except RuntimeError as exc:  # Essentia reports a bad graph or node name as RuntimeError
            raise WeightsError(f"{path}: Essentia cannot load it ({exc}); delete it and run  "
                               f"python -m sat_mir.models download {ESSENTIA.name}") from exc

    def embeddings(self, mono16k: np.ndarray) -> np.ndarray:
        """``[patches, 1280]`` float32 embeddings of a 16 kHz mono signal (one row per ~1 s).

        Raises
        ------
        ExtractorError
            The signal is shorter than one patch (about 2.03 s), so no embedding exists.
        """
        x = np.ascontiguousarray(mono16k, dtype=np.float32)
        out = self.effnet(x)
        emb = np.asarray(out, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0:
            raise ExtractorError(f"signal of {x.size / SAMPLE_RATE:.3f} s is shorter than one Discogs-EffNet patch "
                                 f"({PATCH_SECONDS:.2f} s of 16 kHz audio)")
        return emb

    def predict(self, key: str, embeddings: np.ndarray) -> np.ndarray:
        """``[rows, len(classes[key])]`` head outputs for ``[rows, 1280]`` embeddings.

        Raises
        ------
        WeightsError
            The graph's output width differs from its JSON's class count (mismatched files).
        """
        out = np.asarray(self.heads[key](np.ascontiguousarray(embeddings, dtype=np.float32)), dtype=np.float32)
        n = len(self.classes[key])
        if out.ndim != 2 or out.shape != (embeddings.shape[0], n):
            raise WeightsError(f"{self.folder / (HEADS[key].stem + '.pb')} gives shape {out.shape} for "
                               f"{embeddings.shape[0]} embeddings but its JSON lists {n} classes; the files do "
                               f"not belong together: delete them and run  python -m sat_mir.models download "
                               f"{ESSENTIA.name}")
        return out


_CACHE = ModelCache()


def load_models(folder: Path, heads: tuple[str, ...]) -> EssentiaModels:
    """The :class:`EssentiaModels` of ``folder`` with ``heads``, loaded once per process."""
    unknown = [h for h in heads if h not in HEADS]
    if unknown:
        raise ValueError(f"unknown Essentia head(s) {unknown}; known: {sorted(HEADS)}")
    key = (str(Path(folder).resolve()), tuple(heads))

    def load() -> EssentiaModels:
        models = EssentiaModels(Path(folder), tuple(heads))
        log.info("loaded %s (+ %s) from %s on %s", EFFNET.stem, ", ".join(HEADS[h].stem for h in heads), folder,
                 _device())
        return models

    return _CACHE.get_or_load(key, load)
