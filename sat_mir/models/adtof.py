"""ADTOF drum transcription: the Frame_RNN network, its front end, its weights and its peak picker.

ADTOF (Zehren et al., ISMIR 2021; *Signals* 4:768, 2023) transcribes five drum classes
(bass drum, snare, toms, hi-hat, cymbals) from a log-filtered spectrogram with a small CNN
followed by three bidirectional GRUs.  The original is TensorFlow + madmom; sat-mir runs
the PyTorch conversion of its published ``Frame_RNN`` weights (ADTOF-pytorch) through its
own implementation of the network, the madmom-style front end and madmom's note peak
picker, so neither TensorFlow nor madmom is needed.

Front end (:class:`LogFilteredSpectrogram`): 44.1 kHz mono, frames of 2048 samples centred
every 441 samples (100 fps, zero padding outside the signal, ``ceil(n / 441)`` frames),
symmetric Hann window, magnitude of the 1024 non-Nyquist bins, madmom's logarithmic
filterbank (12 bands per octave aligned to A4 = 440 Hz, 20 Hz–20 kHz, triangular
area-normalised filters on unique FFT bins: 84 bands), then ``log10(1 + x)``.  Known
deviation from madmom: none in the definition; float rounding differs (torch FFT).
ADTOF-pytorch anchors its band frequencies at 20 Hz instead of A4, which gives other band
edges than the filterbank the network was trained on; sat-mir follows madmom.

Network (:class:`FrameRNN`): per block ``conv3x3 → ReLU → BatchNorm`` twice, max-pool
(1 × 3) over frequency with TensorFlow "same" padding (padded cells never win, unlike
ADTOF-pytorch's zero padding), 32 then 64 filters; per frame the 64 × 10 map is flattened
frequency-major (Keras' channels-last order) into 640 features; three bidirectional GRUs of
60 units (PyTorch's GRU equations equal Keras' ``reset_after=True`` ones); a dense layer
and a sigmoid give activations ``[frames, 5]``.  Items of different lengths are batched
exactly: frames past an item's end are zeroed before every convolution (as "same" padding
does at a lone item's end) and the GRUs run on packed sequences.

Weights: ``adtof_frame_rnn_pytorch_weights.pth`` from ADTOF-pytorch, a dict with
``model_weights`` (ADTOF-pytorch's parameter names, float64) and ``model_info``.
:func:`checkpoint_to_state` maps those names onto this module's; loading is strict.
Licence: CC BY-NC-SA 4.0 (non-commercial).

This module holds the constants, the weights' spec and the (numpy) peak picker; the torch
half lives in :mod:`sat_mir.models.adtof_net` and its names are reachable from here too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from sat_mir.models.spec import ModelFile, ModelSpec

# the torch names (FrameRNN, load_transcriber, ...) are reachable here too, imported lazily: see __getattr__
__all__ = [
    "CLASSES",
    "FPS",
    "GM_NOTES",
    "MODELS",
    "N_BINS",
    "SAMPLE_RATE",
    "SPEC",
    "THRESHOLDS",
    "pick_onsets",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100
FPS = 100
FRAME_SIZE = 2048
HOP = SAMPLE_RATE // FPS  # 441
BANDS_PER_OCTAVE = 12
FMIN_HZ, FMAX_HZ = 20.0, 20000.0
N_BINS = 84
# ADTOF's LABELS_5 order: bass drum, snare, toms, hi-hat, cymbals (crash + ride)
CLASSES = ("kick", "snare", "toms", "hihat", "cymbal")
GM_NOTES = (35, 38, 47, 42, 49)
THRESHOLDS = (0.22, 0.24, 0.32, 0.22, 0.30)  # tuned per class by ADTOF for Frame_RNN
PEAK_PICKING = {"pre_avg": 0.1, "post_avg": 0.01, "pre_max": 0.02, "post_max": 0.01, "combine": 0.02}

WEIGHTS_FILE = "adtof_frame_rnn_pytorch_weights.pth"
_COMMIT = "6e670fde61ab219fc9af2666db78edd444dfa7ed"
SPEC = ModelSpec(
    name="adtof",
    folder="adtof",
    files=(ModelFile(
        WEIGHTS_FILE,
        url=f"https://raw.githubusercontent.com/xavriley/ADTOF-pytorch/{_COMMIT}/src/adtof_pytorch/data/{WEIGHTS_FILE}",
        sha256="1bc986e596ec47ba0b44916f87cd4a39f0b2bec23596df3fb5d0e87749217320",
    ),),
    licence="CC BY-NC-SA 4.0 (ADTOF Frame_RNN weights, converted to PyTorch by ADTOF-pytorch, "
            "which ships no licence file of its own)",
    used_by="drums_midi",
    description="ADTOF Frame_RNN drum transcription (5 classes, 100 fps), PyTorch conversion",
    commercial_use=False,
)
MODELS: tuple[ModelSpec, ...] = (SPEC,)


def pick_onsets(activations: np.ndarray, *, fps: float = FPS, thresholds: Sequence[float] = THRESHOLDS,
                pre_avg: float = 0.1, post_avg: float = 0.01, pre_max: float = 0.02, post_max: float = 0.01,
                combine: float = 0.02) -> list[tuple[np.ndarray, np.ndarray]]:
    """madmom's note peak picking, per class: ``[(frames, peak activations), ...]``.

    A frame is an onset of class ``c`` when its activation reaches the mean over
    ``[t - pre_avg, t + post_avg]`` plus ``thresholds[c]`` and equals the maximum over
    ``[t - pre_max, t + post_max]`` (windows in seconds, rounded to frames; outside the
    signal counts as 0); onsets within ``combine`` seconds of the last kept one are
    dropped.  madmom compares that gap in float seconds, which merges a 2-frame gap at
    some times and not at others; here it is compared in whole frames.

    Parameters
    ----------
    activations : float ``[frames, classes]`` in [0, 1].
    fps : frames per second of ``activations``.
    thresholds : one threshold per class.

    Raises
    ------
    ValueError
        ``activations`` is not 2-D or ``thresholds`` has another length.
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    act = np.asarray(activations, dtype=np.float64)
    if act.ndim != 2 or act.shape[1] != len(thresholds):
        raise ValueError(f"activations must be [frames, {len(thresholds)}], got shape {act.shape}")
    if act.shape[0] == 0:
        return [(np.zeros(0, dtype=np.int64), np.zeros(0)) for _ in thresholds]
    pa, po, pm, pM, comb = (round(v * fps) for v in (pre_avg, post_avg, pre_max, post_max, combine))
    if pa + po > 0:
        # scipy's origin shifts the window so it spans exactly [t - pa, t + po]
        avg = uniform_filter1d(act, pa + po + 1, axis=0, mode="constant", origin=(pa - po) // 2)
    else:
        avg = np.zeros_like(act)
    det = act * (act >= avg + np.asarray(thresholds, dtype=np.float64)[None, :])
    if pm + pM > 0:
        det = det * (det == maximum_filter1d(det, pm + pM + 1, axis=0, mode="constant", origin=(pm - pM) // 2))
    out = []
    for c in range(act.shape[1]):
        frames = np.flatnonzero(det[:, c])
        kept: list[int] = []
        for f in frames:
            if not kept or f - kept[-1] > comb:
                kept.append(int(f))
        idx = np.asarray(kept, dtype=np.int64)
        out.append((idx, act[idx, c]))
    return out


# The network half needs torch; it is imported on first use of one of these names.
_NET = ("FrameRNN", "LogFilteredSpectrogram", "Transcriber", "checkpoint_to_state", "load_transcriber",
        "log_filterbank", "state_to_checkpoint")


def __getattr__(name: str):
    if name in _NET:
        from sat_mir.models import adtof_net

        return getattr(adtof_net, name)
    if name == "resolve_device":
        from sat_mir.models.device import resolve_device

        return resolve_device
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
