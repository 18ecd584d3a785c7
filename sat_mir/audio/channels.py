"""Channel-count conversion the way stable-audio-tools' Mono/Stereo transforms do it."""

from __future__ import annotations

import numpy as np

__all__ = ["fit_channels"]


def fit_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """``[C, N]`` → ``[channels, N]``: mean for mono, mono duplicated, extra channels dropped.

    Raises
    ------
    ValueError
        More channels are wanted than a multi-channel input has (e.g. stereo → 5.1).
    """
    have = x.shape[0]
    if have == channels:
        return x
    if channels == 1:
        return x.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(x, channels, axis=0)
    if have > channels:
        return x[:channels]
    raise ValueError(f"has {have} channels; cannot make {channels}")
