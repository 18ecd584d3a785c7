"""The torch half of :mod:`sat_mir.models.adtof`: front end, Frame_RNN network, checkpoint
mapping and loader (see that module's docstring).  Kept apart so that importing the drum
extractor (every worker process does, to unpickle the extractor list) does not import torch."""

from __future__ import annotations

import logging
import math
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sat_mir.errors import WeightsError
from sat_mir.models.adtof import (
    BANDS_PER_OCTAVE,
    CLASSES,
    FMAX_HZ,
    FMIN_HZ,
    FRAME_SIZE,
    HOP,
    N_BINS,
    SAMPLE_RATE,
    SPEC,
    WEIGHTS_FILE,
)
from sat_mir.models.cache import ModelCache
from sat_mir.models.device import resolve_device
from sat_mir.models.spec import locate

__all__ = ["FrameRNN", "LogFilteredSpectrogram", "Transcriber", "checkpoint_to_state", "load_transcriber",
           "log_filterbank", "state_to_checkpoint"]

log = logging.getLogger("sat_mir.models.adtof")


# --------------------------------------------------------------------------- front end


def log_filterbank(*, sr: int = SAMPLE_RATE, frame_size: int = FRAME_SIZE, bands_per_octave: int = BANDS_PER_OCTAVE,
                   fmin: float = FMIN_HZ, fmax: float = FMAX_HZ, fref: float = 440.0) -> np.ndarray:
    """madmom's logarithmic triangular filterbank, float32 ``[bands, frame_size // 2]``.

    Band frequencies lie on ``fref * 2 ** (k / bands_per_octave)`` within [fmin, fmax];
    each maps to its nearest FFT bin (duplicates dropped); consecutive bin triples
    (start, centre, stop) give a filter rising from 0 at ``start`` to 1 at ``centre`` and
    falling to just above 0 before ``stop`` (one-bin filters where the bins are too close),
    normalised to unit area.
    """
    bin_hz = np.fft.fftfreq(frame_size, 1.0 / sr)[: frame_size // 2]
    lo = math.floor(math.log2(fmin / fref) * bands_per_octave)
    hi = math.ceil(math.log2(fmax / fref) * bands_per_octave)
    freqs = fref * 2.0 ** (np.arange(lo, hi) / bands_per_octave)
    freqs = freqs[(freqs >= fmin) & (freqs <= fmax)]
    idx = np.clip(np.searchsorted(bin_hz, freqs), 1, bin_hz.size - 1)
    idx = idx - (freqs - bin_hz[idx - 1] < bin_hz[idx] - freqs)  # the nearer neighbour, ties upwards
    bins = np.unique(idx)
    bank = np.zeros((bins.size - 2, bin_hz.size), dtype=np.float32)
    for band, (start, centre, stop) in enumerate(zip(bins[:-2], bins[1:-1], bins[2:])):
        if stop - start < 2:
            centre, stop = start, start + 1
        shape = np.concatenate([np.linspace(0.0, 1.0, centre - start, endpoint=False),
                                np.linspace(1.0, 0.0, stop - centre, endpoint=False)]).astype(np.float32)
        bank[band, start:stop] = shape / shape.sum()
    return bank


class LogFilteredSpectrogram(nn.Module):
    """Audio ``[batch, samples]`` at 44.1 kHz → log-filtered spectrogram ``[batch, frames, 84]``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.from_numpy(np.hanning(FRAME_SIZE).astype(np.float32)), persistent=False)
        self.register_buffer("filterbank", torch.from_numpy(log_filterbank().T.copy()), persistent=False)

    @staticmethod
    def frames_for(samples: int) -> int:
        """Frame count madmom gives a signal of ``samples`` samples: one per started hop."""
        return -(-int(samples) // HOP)

    def forward(self, audio: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectrogram of each row of ``audio`` (zero-padded past ``lengths`` samples).

        Returns ``(spec [batch, frames, 84], n_frames [batch])``; frames past an item's own
        count are zero (what ``log10(1 + 0)`` gives for silence).
        """
        z = torch.stft(audio, n_fft=FRAME_SIZE, hop_length=HOP, window=self.window, center=True,
                       pad_mode="constant", return_complex=True)
        mag = z[:, : FRAME_SIZE // 2].abs().transpose(1, 2)  # madmom drops the Nyquist bin
        spec = torch.log10(1.0 + mag @ self.filterbank)
        n_frames = torch.div(lengths + HOP - 1, HOP, rounding_mode="floor")
        spec = spec[:, : int(n_frames.max())]
        keep = torch.arange(spec.shape[1], device=spec.device)[None, :] < n_frames[:, None].to(spec.device)
        return spec * keep[..., None], n_frames


# --------------------------------------------------------------------------- network


class _FrozenBatchNorm(nn.Module):
    """Inference-only batch norm (Keras epsilon 1e-3); no ``num_batches_tracked``, which a
    converted Keras checkpoint does not have."""

    def __init__(self, channels: int, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm1 = _FrozenBatchNorm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = _FrozenBatchNorm(cout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm1(F.relu(self.conv1(x * mask)))
        x = self.norm2(F.relu(self.conv2(x * mask)))
        # TensorFlow "same" pooling: pad so every input cell is covered, padding never wins
        width = x.shape[-1]
        pad = max(0, (math.ceil(width / 3) - 1) * 3 + 3 - width)
        x = F.pad(x, (pad // 2, pad - pad // 2), value=float("-inf"))
        return F.max_pool2d(x, (1, 3), (1, 3))


class FrameRNN(nn.Module):
    """ADTOF's Frame_RNN: spectrogram ``[batch, frames, 84]`` → activations ``[batch, frames, 5]``."""

    FILTERS = (32, 64)
    UNITS = 60
    LAYERS = 3
    HALO = 4  # frames of context one output frame of the CNN sees on each side (4 convs)

    def __init__(self, n_bins: int = N_BINS, n_classes: int = len(CLASSES)):
        super().__init__()
        self.cnn = nn.ModuleList([_ConvBlock(1, self.FILTERS[0]), _ConvBlock(*self.FILTERS)])
        width = n_bins
        for _ in self.FILTERS:
            width = math.ceil(width / 3)
        features = self.FILTERS[-1] * width  # 640 for 84 bins
        self.rnn = nn.ModuleList([
            nn.GRU(features if i == 0 else 2 * self.UNITS, self.UNITS, batch_first=True, bidirectional=True)
            for i in range(self.LAYERS)
        ])
        self.head = nn.Linear(2 * self.UNITS, n_classes)

    def _cnn(self, spec: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = spec[:, None]
        for block in self.cnn:
            x = block(x, mask)
        # [B, C, T, F] → [B, T, F * C], frequency-major like Keras' channels-last flatten
        return x.permute(0, 2, 3, 1).flatten(2)

    def forward(self, spec: torch.Tensor, n_frames: torch.Tensor, *, chunk: int = 4000) -> torch.Tensor:
        """Activations in [0, 1]; the CNN runs over ``chunk``-frame pieces (with ``HALO``
        frames of overlap, so the result equals one pass) to bound memory on long tracks."""
        total = spec.shape[1]
        mask = (torch.arange(total, device=spec.device)[None, :] < n_frames[:, None].to(spec.device))
        mask = mask[:, None, :, None].to(spec.dtype)
        pieces = []
        for s in range(0, total, chunk):
            e = min(total, s + chunk)
            a, b = max(0, s - self.HALO), min(total, e + self.HALO)
            pieces.append(self._cnn(spec[:, a:b], mask[:, :, a:b])[:, s - a: e - a])
        x = torch.cat(pieces, dim=1)
        lengths = n_frames.cpu().clamp(min=1)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        for gru in self.rnn:
            packed, _ = gru(packed)
        x, _ = pad_packed_sequence(packed, batch_first=True, total_length=total)
        return torch.sigmoid(self.head(x))


# --------------------------------------------------------------------------- checkpoint

# ADTOF-pytorch's names (nn.Sequential indices inside each CNN block: 0 conv, 2 norm, 3 conv,
# 5 norm) beside this module's, with the parameter names each may end in; {i} is a block index.
# Both directions of the renaming are made from this one table.
_NORM = "weight|bias|running_mean|running_var|num_batches_tracked"
_NAMES = (
    ("cnn_blocks.{i}.0", "cnn.{i}.conv1", "weight|bias"),
    ("cnn_blocks.{i}.2", "cnn.{i}.norm1", _NORM),
    ("cnn_blocks.{i}.3", "cnn.{i}.conv2", "weight|bias"),
    ("cnn_blocks.{i}.5", "cnn.{i}.norm2", _NORM),
    ("gru_layers.{i}", "rnn.{i}", "(?:weight|bias)_(?:ih|hh)_l0(?:_reverse)?"),
    ("output_layer", "head", "weight|bias"),
)


def _renaming(src: int, dst: int) -> tuple[tuple[re.Pattern, str], ...]:
    out = []
    for names in _NAMES:
        indexed = "{i}" in names[src]
        pattern = re.escape(names[src]).replace(re.escape("{i}"), r"(\d+)") + r"\.(" + names[2] + ")"
        out.append((re.compile(pattern), names[dst].replace("{i}", r"\1") + (r".\2" if indexed else r".\1")))
    return tuple(out)


_KEY_MAP = _renaming(0, 1)
_KEY_MAP_BACK = _renaming(1, 0)


def _rename(key: str, table) -> str | None:
    for pattern, repl in table:
        if pattern.fullmatch(key):
            return pattern.sub(repl, key)
    return None


def checkpoint_to_state(weights: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """ADTOF-pytorch's ``model_weights`` → (this module's state dict, names that map to nothing).

    BatchNorm ``num_batches_tracked`` counters carry nothing at inference and are skipped.
    """
    state, unknown = {}, []
    for key, value in weights.items():
        if key.endswith("num_batches_tracked"):
            continue
        ours = _rename(key, _KEY_MAP)
        if ours is None:
            unknown.append(key)
        else:
            state[ours] = value
    return state, unknown


def state_to_checkpoint(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This module's state dict → ADTOF-pytorch's names and float64, the checkpoint's layout."""
    return {_rename(k, _KEY_MAP_BACK): v.detach().to(torch.float64).cpu().clone() for k, v in state.items()}


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); "
                           f"delete it and download it again") from exc
    weights = ckpt.get("model_weights", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise WeightsError(f"{path}: expected a dict with 'model_weights' (parameter name → tensor), "
                           f"got {type(ckpt).__name__}")
    info = ckpt.get("model_info") if isinstance(ckpt, dict) else None
    if isinstance(info, dict) and info.get("n_bins", N_BINS) != N_BINS:
        raise WeightsError(f"{path}: model_info says n_bins={info['n_bins']!r}; this front end gives {N_BINS}")
    state, unknown = checkpoint_to_state(weights)
    expected = FrameRNN().state_dict()
    missing = sorted(set(expected) - set(state))
    wrong = sorted(f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
                   for k, v in expected.items() if k in state and state[k].shape != v.shape)
    if missing or unknown or wrong:
        parts = [f"missing {missing}" if missing else "", f"unexpected {sorted(unknown)}" if unknown else "",
                 f"wrong shapes {wrong}" if wrong else ""]
        raise WeightsError(f"{path}: not an ADTOF Frame_RNN checkpoint: " + "; ".join(p for p in parts if p))
    return {k: v.to(torch.float32) for k, v in state.items()}


# --------------------------------------------------------------------------- inference


class Transcriber:
    """A loaded Frame_RNN and its front end on one device."""

    def __init__(self, net: FrameRNN, device: torch.device):
        self.device = device
        self.net = net.to(device).eval()
        self.front = LogFilteredSpectrogram().to(device)

    @torch.inference_mode()
    def activations(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Frame activations of each mono 44.1 kHz signal, float32 ``[ceil(n / 441), 5]`` in [0, 1].

        Raises
        ------
        ValueError
            A signal is empty, not 1-D or not finite.
        """
        if not signals:
            return []
        for x in signals:
            if np.ndim(x) != 1 or len(x) == 0 or not np.all(np.isfinite(x)):
                raise ValueError(f"each signal must be a non-empty finite 1-D array, got shape {np.shape(x)}")
        lengths = torch.tensor([len(x) for x in signals])
        audio = np.zeros((len(signals), int(lengths.max())), dtype=np.float32)
        for i, x in enumerate(signals):
            audio[i, : len(x)] = x
        spec, n_frames = self.front(torch.from_numpy(audio).to(self.device), lengths.to(self.device))
        act = self.net(spec, n_frames).float().cpu().numpy()
        return [act[i, : int(n)] for i, n in enumerate(n_frames.cpu())]


_CACHE = ModelCache()



def load_transcriber(models_dir: str | Path | None = None, device: str = "auto") -> Transcriber:
    """The Frame_RNN from ``<models_dir>/adtof/``, loaded once per process and device.

    Raises
    ------
    WeightsError
        The checkpoint is missing (the message names it and the download command) or is
        not a Frame_RNN checkpoint.
    ConfigError
        ``device`` is invalid.
    """
    folder = locate(SPEC, models_dir)
    dev = resolve_device(device)
    key = (str(folder.resolve()), str(dev), "float32")

    def load() -> Transcriber:
        net = FrameRNN()
        net.load_state_dict(_load_state(folder / WEIGHTS_FILE), strict=True)
        log.info("loaded adtof from %s on %s", folder, dev)
        return Transcriber(net, dev)

    return _CACHE.get_or_load(key, load)


# --------------------------------------------------------------------------- peak picking
