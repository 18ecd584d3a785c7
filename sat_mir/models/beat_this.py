"""Beat This! (Foscarin, Schlüter & Widmer, ISMIR 2024): a transformer that marks beats and
downbeats in a log-mel spectrogram, from the ``beat-this`` package (CPJKU/beat_this).

When its checkpoint is in the models folder, the ``rhythm`` extractor takes its beats and
downbeats (``tracker: auto``, the default) instead of the DSP metrical analysis; everything
that reads the beat grid (crops, stem rhythm, chords, drum MIDI tempo) follows.  The package's
own inference pieces are used as they are: ``load_model`` for the checkpoint, ``LogMelSpect``
for its front end (22.05 kHz mono, 1024-point frames every 441 samples: 50 frames per second,
128 mel bands), ``split_predict_aggregate`` for 30-s chunks and its "minimal" postprocessor
(local maxima above probability 0.5, downbeats moved to the nearest beat).  Only the weights'
location differs: ``<models_dir>/beat_this/final0.ckpt`` (or the copy the package itself keeps
in the torch hub cache, ``beat_this-final0.ckpt``); nothing is downloaded during a run.

Licence: MIT (the package and its checkpoints, CPJKU/beat_this).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sat_mir.errors import ConfigError, WeightsError
from sat_mir.models.cache import ModelCache
from sat_mir.models.spec import ModelFile, ModelSpec, locate

__all__ = ["CHECKPOINT", "FPS", "MODELS", "SAMPLE_RATE", "SPEC", "BeatTracker", "find_checkpoint", "load_tracker"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050
FPS = 50
CHECKPOINT = "final0.ckpt"
_URL = "https://cloud.cp.jku.at/public.php/dav/files/7ik4RrBKTS273gp"
SPEC = ModelSpec(
    name="beat_this",
    folder="beat_this",
    files=(ModelFile(CHECKPOINT, url=f"{_URL}/{CHECKPOINT}"),),
    licence="MIT (CPJKU/beat_this, code and checkpoints)",
    used_by="rhythm (tracker: auto or beat_this)",
    description="Beat This! final0: beats and downbeats (transformer, 50 fps), 78 MB",
    commercial_use=True,
)
MODELS: tuple[ModelSpec, ...] = (SPEC,)
_CACHE = ModelCache()


def find_checkpoint(models_dir: str | Path | None = None) -> Path:
    """The checkpoint: ``<models_dir>/beat_this/final0.ckpt``, else the package's own torch-hub copy.

    Raises
    ------
    WeightsError
        Neither exists (the message names the file and the download command), or the
        ``beat-this`` package is not installed.
    """
    from sat_mir.extras import require

    require("models", "the Beat This! tracker", ("torch", "beat_this"))
    try:
        return locate(SPEC, models_dir) / CHECKPOINT
    except WeightsError:
        hub = _torch_hub_dir() / "checkpoints" / f"beat_this-{CHECKPOINT}"
        if hub.is_file():
            return hub
        raise


def _torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` without importing torch when it is not loaded yet (a run that
    finds no checkpoint must not pay two seconds for torch): ``$TORCH_HOME/hub``, TORCH_HOME
    defaulting to ``$XDG_CACHE_HOME/torch`` (``~/.cache/torch``)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return Path(torch.hub.get_dir())  # honours torch.hub.set_dir
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.path.expanduser(os.environ.get("TORCH_HOME") or os.path.join(cache, "torch"))) / "hub"


@dataclass
class BeatTracker:
    """A loaded Beat This! model on a device."""

    model: object
    spect: object
    device: object

    def activations(self, mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Beat and downbeat logits per frame (50 fps) of mono audio at 22.05 kHz."""
        import torch
        from beat_this.inference import split_predict_aggregate

        x = torch.tensor(np.asarray(mono, dtype=np.float32), device=self.device)  # a copy: the input is read-only
        with torch.inference_mode():
            spect = self.spect(x)
            pred = split_predict_aggregate(spect, chunk_size=1500, border_size=6, overlap_mode="keep_first",
                                           model=self.model)
        return pred["beat"].float().cpu().numpy(), pred["downbeat"].float().cpu().numpy()

    def __call__(self, mono: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(beats s, downbeats s, beat probability per frame, downbeat probability per frame)."""
        import torch
        from beat_this.model.postprocessor import Postprocessor

        beat, down = self.activations(mono)
        beats, downbeats = Postprocessor(type="minimal", fps=FPS)(torch.from_numpy(beat), torch.from_numpy(down))
        sig = 1.0 / (1.0 + np.exp(-np.clip(beat, -50, 50)))
        dsig = 1.0 / (1.0 + np.exp(-np.clip(down, -50, 50)))
        return np.asarray(beats, dtype=np.float64), np.asarray(downbeats, dtype=np.float64), sig, dsig


def load_tracker(models_dir: str | Path | None = None, device: str = "auto") -> BeatTracker:
    """The Beat This! model, loaded once per process and device.

    Raises
    ------
    WeightsError
        The checkpoint is missing or not a Beat This! checkpoint.
    ConfigError
        ``device`` is invalid.
    """
    from sat_mir.models.device import resolve_device

    path = find_checkpoint(models_dir)
    dev = resolve_device(device)

    def load() -> BeatTracker:
        from beat_this.inference import load_model
        from beat_this.preprocessing import LogMelSpect

        try:
            model = load_model(str(path), device=dev)
        except (KeyError, RuntimeError, ValueError, OSError) as exc:
            raise WeightsError(f"{path}: not a Beat This! checkpoint ({exc}); delete it and run  "
                               f"python -m sat_mir.models download {SPEC.name}") from exc
        log.info("loaded beat_this from %s on %s", path, dev)
        return BeatTracker(model=model, spect=LogMelSpect(device=dev), device=dev)

    if dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"beat_this runs on cpu or cuda, not {dev}")
    return _CACHE.get_or_load((str(path.resolve()), str(dev)), load)
