"""Which torch device a model runs on: one rule for every model-backed step."""

from __future__ import annotations

from sat_mir.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(device: str | None = "auto"):
    """``torch.device`` for a setting: "auto" (or None) = CUDA when torch sees it, else CPU;
    otherwise any torch device string ("cpu", "cuda", "cuda:1", ...).

    Raises
    ------
    ConfigError
        Not a torch device, or CUDA asked for but absent.
    """
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {device!r} is not a torch device ({exc})") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA device")
    return dev
