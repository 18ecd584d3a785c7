"""Write audio atomically (the format follows the file extension)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from sat_mir.fsutil import atomic_path

__all__ = ["write_audio"]

_SUBTYPES = {".flac": "PCM_24", ".wav": "FLOAT", ".aiff": "PCM_24", ".aif": "PCM_24", ".ogg": "VORBIS"}


def write_audio(path: str | Path, samples: np.ndarray, *, sr: int, subtype: str | None = None,
                compression_level: float | None = None, bitrate_mode: str | None = None) -> None:
    """Write ``samples`` (``[channels, frames]`` or ``[frames]``) to ``path`` atomically: the one
    place sat-mir encodes audio (crops, training items, separated stems).

    FLAC/AIFF are 24-bit PCM and WAV is 32-bit float unless ``subtype`` says otherwise;
    ``compression_level`` and ``bitrate_mode`` are libsndfile's encoder options (checked by the
    caller, e.g. :func:`sat_mir.separation.stem_io.write_stems`).
    """
    path = Path(path)
    x = np.asarray(samples, dtype=np.float32)
    data = x.T if x.ndim == 2 else x
    subtype = subtype or _SUBTYPES.get(path.suffix.lower())
    with atomic_path(path, suffix=path.suffix) as tmp:
        sf.write(str(tmp), data, sr, subtype=subtype, format=_format(path), compression_level=compression_level,
                 bitrate_mode=bitrate_mode)


def _format(path: Path) -> str:
    ext = path.suffix.lower().lstrip(".")
    return {"aif": "AIFF", "aiff": "AIFF", "oga": "OGG", "opus": "OGG"}.get(ext, ext.upper())
