"""Meta's Audiobox Aesthetics model: four quality ratings per track, from local weights only.

The model (``audiobox_aesthetics`` package, CC-BY 4.0, arXiv 2502.05139) is a WavLM-base
encoder whose 13 layer outputs are mixed with learned weights, mean-pooled over time and
fed to one MLP head per axis: Content Enjoyment (CE), Content Usefulness (CU), Production
Complexity (PC) and Production Quality (PQ), each de-normalised to roughly a 1–10 scale.

Loading goes through the package's own ``AesPredictor`` with a local ``checkpoint.pt``
(the file ``python -m sat_mir.models download audiobox`` fetches).  The package only turns
to the Hugging Face hub when the path it is given does not exist; :func:`load_aesthetics`
finds the file with :func:`~sat_mir.models.locate` first, so that never happens.

Inference does not use the predictor's ``forward``: it reads files with ``torchaudio``
(whose ``info`` is gone from the torchaudio sat-mir uses), resamples with torchaudio, and
puts every window of every item in one batch.  :meth:`AestheticsModel.predict` takes 16 kHz
mono arrays instead, cuts them with the package's ``make_inference_batch`` (10 s windows,
10 s hop, the last window zero-padded and masked), runs the windows of several items
through the model ``batch_windows`` at a time, and averages each item's window scores
weighted by their length, as the package does.

A checkpoint may carry ``model_cfg["encoder_cfg"]``: WavLM settings that replace the
package's built-in WavLM-base ones.  The released checkpoint has no such key; the tiny
stand-in that ``tools/make_tiny_audiobox.py`` writes for tests uses it to shrink the encoder
while keeping the file format and the loading path of the real one.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from sat_mir.errors import ConfigError, WeightsError
from sat_mir.models.cache import ModelCache
from sat_mir.models.device import resolve_device
from sat_mir.models.spec import ModelFile, ModelSpec, locate

__all__ = [
    "AUDIOBOX",
    "AXES",
    "CHECKPOINT",
    "MODELS",
    "SAMPLE_RATE",
    "WINDOW_S",
    "AestheticsModel",
    "encoder_config",
    "load_aesthetics",
    "resolve_device",
]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
AXES = ("CE", "CU", "PC", "PQ")  # the package's AXES_NAME, in its order
SAMPLE_RATE = 16000
WINDOW_S = 10  # the package's window and hop, seconds

AUDIOBOX = ModelSpec(
    name="audiobox",
    folder="audiobox",
    files=(ModelFile(CHECKPOINT, url="https://dl.fbaipublicfiles.com/audiobox-aesthetics/checkpoint.pt"),),
    licence="CC-BY-4.0",
    used_by="extractor aesthetics",
    description="Meta Audiobox Aesthetics (WavLM-base encoder + 4 MLP heads): content enjoyment, "
                "content usefulness, production complexity and production quality, about 1-10",
    hf_repo="facebook/audiobox-aesthetics",
    commercial_use=True,
    # the repository also holds model.safetensors (the same weights for from_pretrained); fetch one copy
    extra={"allow_patterns": [CHECKPOINT]},
)
MODELS: tuple[ModelSpec, ...] = (AUDIOBOX,)

# WavLM builds its convolutional front end with eval() of this string, so a checkpoint's
# override must be a plain list of integer tuples and nothing else.
_CONV_LAYERS = re.compile(r"[\[\]\(\)\d\s,+*]+")
_LOAD_ERRORS = (RuntimeError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError,
                AttributeError)

_CACHE = ModelCache()


class AestheticsModel:
    """A loaded ``AesMultiOutput`` network and how it runs.

    Parameters
    ----------
    net : ``audiobox_aesthetics.model.aes.AesMultiOutput`` in eval mode, on ``device``.
    target_transform : ``{axis: {"mean": float, "std": float}}``, the checkpoint's
        de-normalisation of each head's output.
    device : torch device the network lives on.
    bf16 : run under bfloat16 autocast (only honoured on CUDA).
    """

    def __init__(self, net, target_transform: Mapping[str, Mapping[str, float]], device, *, bf16: bool):
        import torch

        self.net = net
        self.device = torch.device(device)
        self.autocast = bool(bf16) and self.device.type == "cuda"
        # AesMultiOutput decides autocast from these two attributes (its own precision flag
        # never switches autocast on); set them so bf16 is used exactly where asked.
        net.precision = torch.bfloat16
        net.enable_autocast = self.autocast
        self.mean = np.array([float(target_transform[a]["mean"]) for a in AXES])
        self.std = np.array([float(target_transform[a]["std"]) for a in AXES])

    def predict(self, wavs: Sequence[np.ndarray], *, batch_windows: int = 16) -> list[dict[str, float]]:
        """Rate several recordings.

        Parameters
        ----------
        wavs : sequence of float ``[frames]`` arrays, mono at 16 kHz (``SAMPLE_RATE``), each
            with frames > 0 and finite.
        batch_windows : int > 0, 10 s windows per forward pass (windows of different items
            share a pass).

        Returns
        -------
        One ``{"CE", "CU", "PC", "PQ": float}`` per input, in order: the length-weighted mean
        of its windows' ratings.

        Raises
        ------
        ValueError
            An input is not 1-D, is empty or holds NaN/infinity.
        ConfigError
            ``batch_windows`` is not a positive int.
        """
        import torch
        from audiobox_aesthetics.infer import make_inference_batch

        if isinstance(batch_windows, bool) or not isinstance(batch_windows, int) or batch_windows < 1:
            raise ConfigError(f"batch_windows must be an int >= 1, got {batch_windows!r}")
        tensors = []
        for i, w in enumerate(wavs):
            x = np.asarray(w)
            if x.ndim != 1 or x.size == 0:
                raise ValueError(f"input {i}: expected a non-empty mono [frames] array, got shape {x.shape}")
            if not np.all(np.isfinite(x)):
                raise ValueError(f"input {i}: contains NaN or infinity")
            tensors.append(torch.from_numpy(np.array(x, dtype=np.float32))[None])  # a private, writable copy
        if not tensors:
            return []
        chunks, masks, weights, items = make_inference_batch(tensors, WINDOW_S, WINDOW_S, sample_rate=SAMPLE_RATE)
        item_of = np.asarray(items)
        weight = np.asarray(weights, dtype=np.float64)  # the valid fraction of each window

        scores = np.empty((len(chunks), len(AXES)))
        with torch.inference_mode():
            for start in range(0, len(chunks), batch_windows):
                stop = start + batch_windows
                batch = {"wav": torch.stack(chunks[start:stop]).to(self.device),
                         "mask": torch.stack(masks[start:stop]).to(self.device)}
                out = self.net(batch)
                for j, axis in enumerate(AXES):
                    scores[start:stop, j] = out[axis].float().cpu().numpy()
        scores = scores * self.std + self.mean  # the package's Normalize.inverse, per window

        rows = []
        for i in range(len(tensors)):
            sel = item_of == i
            mean = (scores[sel] * weight[sel, None]).sum(axis=0) / weight[sel].sum()
            rows.append({axis: float(v) for axis, v in zip(AXES, mean)})
        return rows



def load_aesthetics(models_dir: str | Path | None = None, *, device: str | None = "auto",
                    bf16: bool = True) -> AestheticsModel:
    """The Audiobox Aesthetics model from ``<models_dir>/audiobox/checkpoint.pt``, loaded once per process.

    Parameters
    ----------
    models_dir : the models folder (None: :func:`~sat_mir.models.default_models_dir`); a copy
        of ``checkpoint.pt`` in the Hugging Face cache is accepted too.
    device : "auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1", ...
    bf16 : bfloat16 autocast on CUDA; ignored on the CPU, which always runs float32.

    Raises
    ------
    WeightsError
        The checkpoint is missing (the message names it and the download command) or cannot
        be read as an Audiobox Aesthetics checkpoint.
    ConfigError
        ``device`` is invalid or unavailable.
    """
    folder = locate(AUDIOBOX, models_dir)
    path = (folder / CHECKPOINT).resolve()
    dev = resolve_device(device)
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, str(dev), bool(bf16) and dev.type == "cuda")

    def load() -> AestheticsModel:
        model = _load(path, dev, bf16=bf16)
        log.info("loaded audiobox from %s on %s", folder, dev)
        return model

    return _CACHE.get_or_load(key, load)


def _load(path: Path, dev, *, bf16: bool) -> AestheticsModel:
    from audiobox_aesthetics.infer import AesPredictor

    overrides = _encoder_overrides(path)
    try:
        with encoder_config(overrides), _quiet_package():
            # a path that exists: the package reads it and never looks at the hub
            predictor = AesPredictor(checkpoint_pth=str(path))
    except _LOAD_ERRORS as exc:
        raise _unreadable(path, exc) from exc
    net = predictor.model.to(dev).eval()
    return AestheticsModel(net, net.target_transform, dev, bf16=bf16)


# torch warns on every forward of the package's WavLM (a bool padding mask with a float
# attention mask); harmless, and it would fill the run log
warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask and attn_mask")


@contextlib.contextmanager
def _quiet_package():
    """The package logs its whole WavLM config at INFO and torch warns about its weight_norm:
    noise in a user's run log, said on every load; our own "loaded ..." line stays."""
    loggers = [logging.getLogger(n) for n in ("audiobox_aesthetics", "audiobox_aesthetics.infer",
                                              "audiobox_aesthetics.model.aes", "audiobox_aesthetics.model.wavlm",
                                              "audiobox_aesthetics.utils")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*weight_norm.*")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _encoder_overrides(path: Path) -> dict | None:
    """``model_cfg["encoder_cfg"]`` of the checkpoint, read without loading its tensors."""
    import torch

    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # a file from before torch's zip format cannot be memory-mapped
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        cfg = ckpt["model_cfg"]
        overrides = cfg.get("encoder_cfg")
    except _LOAD_ERRORS + (OSError,) as exc:
        raise _unreadable(path, exc) from exc
    if overrides is None:
        return None
    from audiobox_aesthetics.model.wavlm import WavLMConfig

    known = vars(WavLMConfig())
    bad = sorted(k for k, v in overrides.items()
                 if k not in known or not isinstance(v, (bool, int, float, str)))
    layers = overrides.get("conv_feature_layers", "[]")
    if bad or not isinstance(layers, str) or not _CONV_LAYERS.fullmatch(layers):
        raise WeightsError(f"{path}: model_cfg.encoder_cfg holds unknown or invalid WavLM settings "
                           f"{bad or {'conv_feature_layers': layers}}")
    return dict(overrides)


@contextlib.contextmanager
def encoder_config(overrides: dict | None) -> Iterator[None]:
    """While active, ``AesMultiOutput(...)`` builds its WavLM with ``overrides`` applied.

    ``AesMultiOutput`` always builds its encoder from the module constant ``DEFAULT_AUDIO_CFG``;
    a stand-in checkpoint with a smaller encoder swaps it for the duration of construction.
    Not thread-safe on its own: :func:`load_aesthetics` holds a lock around it.
    """
    if not overrides:
        yield
        return
    from audiobox_aesthetics.model import aes
    from audiobox_aesthetics.model.wavlm import WavLMConfig

    saved = aes.DEFAULT_AUDIO_CFG
    aes.DEFAULT_AUDIO_CFG = WavLMConfig({**vars(saved), **overrides})
    try:
        yield
    finally:
        aes.DEFAULT_AUDIO_CFG = saved


def _unreadable(path: Path, exc: BaseException) -> WeightsError:
    # torch's unpickling messages run to many lines; one line of the cause is enough here
    cause = " ".join(str(exc).split())
    cause = cause if len(cause) <= 240 else cause[:240] + " ..."
    return WeightsError(f"{path} is not a readable Audiobox Aesthetics checkpoint ({type(exc).__name__}: "
                        f"{cause}); delete it and run  python -m sat_mir.models download {AUDIOBOX.name}")
