"""Basic Pitch (Spotify, ICASSP 2022): note transcription from real weights that ship in its wheel.

The trained network (``basic_pitch/saved_models/icassp_2022/nmp.onnx``, 230 KB) is part of the
``basic-pitch`` package on PyPI, so there is nothing to download: sat-mir runs that ONNX file with
onnxruntime through the package's own ``Model`` class, and turns the network's frame outputs
into notes with the package's own ``note_creation.model_output_to_notes``.  Only the windowing
of an in-memory signal is done here (the package's ``get_audio_input`` reads a file; this does
the same on an array: half an overlap of zeros in front, 2-s windows every 2 s minus 30 frames,
and :func:`basic_pitch.inference.unwrap_output` to stitch them).

basic-pitch 0.4.0 declares ``tensorflow<2.15.1`` on Linux with Python ≥ 3.11, which needs a
protobuf that stable-audio-tools does not allow; the ONNX path needs none of it, so it is
installed without its dependencies (``pip install --no-deps basic-pitch==0.4.0``) beside the
``models`` extra, which brings onnxruntime, resampy, pretty_midi and mir_eval (what its modules
import).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sat_mir.errors import WeightsError
from sat_mir.models.spec import ModelFile, ModelSpec

__all__ = ["MODELS", "SAMPLE_RATE", "SPEC", "Note", "NoteSettings", "install_hint", "load_transcriber"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050  # basic_pitch.constants.AUDIO_SAMPLE_RATE
PACKAGE_FILE = "saved_models/icassp_2022/nmp.onnx"
SPEC = ModelSpec(
    name="basic_pitch",
    folder="basic_pitch",
    files=(ModelFile("nmp.onnx", url=f"package:basic_pitch/{PACKAGE_FILE}",
                     sha256="2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec"),),
    licence="Apache-2.0 (Spotify's basic-pitch; the trained model ships inside its PyPI wheel)",
    used_by="notes_midi",
    description="Basic Pitch ICASSP 2022 note transcription (ONNX, run with onnxruntime)",
    commercial_use=True,
    extra={"install": "pip install --no-deps basic-pitch==0.4.0"},
)
MODELS: tuple[ModelSpec, ...] = (SPEC,)
_MODULES = ("basic_pitch", "onnxruntime", "resampy", "pretty_midi", "mir_eval")


def install_hint() -> str:
    return ("pip install 'sat-mir[models]' && pip install --no-deps basic-pitch==0.4.0  (its model ships in "
            "the wheel; --no-deps skips the TensorFlow pin the ONNX model does not need)")


class Note(NamedTuple):
    start_s: float
    end_s: float
    pitch: int  # MIDI note number
    velocity: int  # 1..127, from the network's note activation


@dataclass(frozen=True)
class NoteSettings:
    """``model_output_to_notes``'s options (Basic Pitch's defaults, its command line's names)."""

    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    minimum_note_length_ms: float = 127.70
    minimum_frequency: float | None = None
    maximum_frequency: float | None = None
    multiple_pitch_bends: bool = False
    melodia_trick: bool = True


def _check_installed() -> None:
    from sat_mir.extras import missing_modules

    with warnings.catch_warnings():
        # librosa registers resampy as a lazy module: looking it up loads it, and resampy warns
        # that pkg_resources is deprecated
        warnings.simplefilter("ignore", UserWarning)
        missing = missing_modules(_MODULES)
    if missing:
        raise WeightsError(f"Basic Pitch needs {', '.join(missing)}, not installed here: {install_hint()}")


def model_path() -> Path:
    """The ONNX file inside the installed basic-pitch package (found without importing it)."""
    from sat_mir.models.spec import package_folder

    _check_installed()
    folder = package_folder(SPEC)
    if folder is None:
        raise WeightsError(f"the installed basic-pitch has no {PACKAGE_FILE}: {install_hint()}")
    return folder / SPEC.files[0].path


def _quiet_import():
    # basic_pitch's __init__ logs three root-logger warnings about the back ends it does not
    # find (CoreML, TFLite, TensorFlow), and resampy warns that pkg_resources is deprecated;
    # only the ONNX back end is used here
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            import basic_pitch.inference as inference
            import basic_pitch.note_creation as note_creation
    finally:
        root.setLevel(level)
    return inference, note_creation


class Transcriber:
    """Basic Pitch loaded once: :meth:`notes` of a mono signal at :data:`SAMPLE_RATE`."""

    def __init__(self):
        self._inference, self._notes = _quiet_import()
        path = model_path()
        if not self._inference.ONNX_PRESENT:
            raise WeightsError(f"onnxruntime does not import here: {install_hint()}")
        self.model = self._inference.Model(str(path))

    def outputs(self, mono: np.ndarray) -> dict[str, np.ndarray]:
        """The network's frame outputs (``note``, ``onset``, ``contour``) for a whole signal."""
        from basic_pitch.constants import AUDIO_N_SAMPLES, FFT_HOP

        n_overlap = 30  # frames, as basic_pitch.inference.run_inference
        overlap = n_overlap * FFT_HOP
        hop = AUDIO_N_SAMPLES - overlap
        audio = np.concatenate([np.zeros(overlap // 2, dtype=np.float32), np.asarray(mono, dtype=np.float32)])
        out: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
        for window, _ in self._inference.window_audio_file(audio, hop):
            for k, v in self.model.predict(window[None, ...]).items():
                out[k].append(v)
        return {k: self._inference.unwrap_output(np.concatenate(v), len(mono), n_overlap) for k, v in out.items()}

    def notes(self, mono: np.ndarray, settings: NoteSettings = NoteSettings()) -> list[Note]:
        """Notes of ``mono`` (22.05 kHz), sorted by start time."""
        if mono.size == 0:
            return []
        out = self.outputs(mono)
        _, events = self._notes.model_output_to_notes(
            out, onset_thresh=settings.onset_threshold, frame_thresh=settings.frame_threshold,
            min_note_len=int(np.round(settings.minimum_note_length_ms / 1000 * (SAMPLE_RATE / 256))),
            min_freq=settings.minimum_frequency, max_freq=settings.maximum_frequency,
            multiple_pitch_bends=settings.multiple_pitch_bends, melodia_trick=settings.melodia_trick)
        notes = [Note(float(s), float(e), int(p), int(np.clip(round(127 * a), 1, 127)))
                 for s, e, p, a, *_ in events]
        return sorted(notes)


@lru_cache(maxsize=1)
def load_transcriber() -> Transcriber:
    """The one Basic Pitch of this process (an ONNX session on the CPU)."""
    return Transcriber()
