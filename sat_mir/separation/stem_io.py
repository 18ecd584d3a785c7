"""Write separated stems: flac / wav / mp3 / ogg, with a documented clip policy.

``clip="rescale"`` scales every stem by one common factor so none clips (the stems
still sum to the scaled mix); ``"clamp"`` clips each stem on its own; ``"none"`` is
allowed only for float WAV.  Demucs' own writer rescales each stem separately,
which breaks the sum.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sat_mir.audio.headroom import sample_peak
from sat_mir.audio.write import write_audio
from sat_mir.errors import ConfigError

__all__ = ["STEM_FORMATS", "WrittenStems", "write_stems"]

# format -> (file extension, libsndfile major format, subtypes allowed, default subtype)
STEM_FORMATS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "flac": ("flac", "FLAC", ("PCM_24", "PCM_16"), "PCM_24"),
    "wav": ("wav", "WAV", ("FLOAT", "PCM_24", "PCM_16", "PCM_32"), "FLOAT"),  # float: write_audio's default
    "mp3": ("mp3", "MP3", ("MPEG_LAYER_III",), "MPEG_LAYER_III"),
    "ogg": ("ogg", "OGG", ("VORBIS",), "VORBIS"),
}
_CLIP_MODES = ("rescale", "clamp", "none")
_BITRATE_MODES = ("CONSTANT", "AVERAGE", "VARIABLE")
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_STEM_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class WrittenStems:
    """``paths``: ``{stem: file}``; ``gain``: the factor every stem was multiplied by
    before encoding (below 1 only when ``clip="rescale"`` had to lower the set)."""

    paths: dict[str, Path]
    gain: float


def write_stems(stems: Mapping[str, np.ndarray], folder: str | Path, *, sr: int, fmt: str = "flac",
                subtype: str | None = None, clip: str = "rescale", compression_level: float | None = None,
                bitrate_mode: str | None = None, bitrate_kbps: int | None = None) -> WrittenStems:
    """Write each stem to ``folder/<stem>.<ext>`` atomically (one file at a time).

    Parameters
    ----------
    stems : ``{name: float [channels, frames] or [frames]}``, all the same shape; names are
        ``[A-Za-z0-9_]+``.  Not modified.
    folder : created if missing; existing files of the same names are replaced.
    sr : int > 0, Hz; mp3 takes only 8000–48000 (MPEG rates).
    fmt : "flac" (24-bit, or subtype "PCM_16"), "wav" (subtype "FLOAT" default, "PCM_24",
        "PCM_16", "PCM_32"), "mp3" (LAME via libsndfile) or "ogg" (Vorbis).
    clip : how samples beyond ±1.0 (which PCM cannot hold) are handled:
        "rescale" multiplies *all* stems by one factor, ``1 / peak`` over the whole set,
        when that peak exceeds 1, so no stem clips and the stems still add up to the
        (scaled) mix; "clamp" clips each stem at ±1 independently (the sum then no longer
        matches the mix wherever a stem clipped); "none" writes as is (float WAV only).
    compression_level : float, libsndfile's [0, 1] knob, 0 = best quality/least compression.
        flac: encoder effort (lossless either way); ogg: Vorbis VBR quality q(10·(1 - level));
        mp3: with bitrate_mode CONSTANT/AVERAGE the bitrate 320 - level·288 kbps at 32–48 kHz
        (LAME takes the standard bitrate at or below it), with VARIABLE the LAME VBR quality
        V(10·level); libsndfile 1.2 rejects 1.0 for mp3.
        With no option at all, mp3 is LAME's default VBR (about 140 kbps for stereo music).
    bitrate_mode : mp3 only: "VARIABLE" (libsndfile's default), "CONSTANT" or "AVERAGE".
    bitrate_kbps : mp3 only: nominal bitrate (e.g. 128, 192, 320), CONSTANT unless bitrate_mode
        is "AVERAGE"; turned into the compression_level above.  Give this or compression_level.

    Returns
    -------
    WrittenStems with the paths and the gain applied.

    Raises
    ------
    ConfigError
        Unknown format, subtype, clip mode or encoder option, or an option the format lacks.
    ValueError
        Empty, mismatched, non-finite stems or an unusable stem name.
    """
    if fmt not in STEM_FORMATS:
        raise ConfigError(f"fmt must be one of {sorted(STEM_FORMATS)}, got {fmt!r}")
    ext, _major, subtypes, default_subtype = STEM_FORMATS[fmt]
    subtype = default_subtype if subtype is None else subtype.upper()
    if subtype not in subtypes:
        raise ConfigError(f"subtype {subtype!r} is not available for {fmt} (choose from {list(subtypes)})")
    if clip not in _CLIP_MODES:
        raise ConfigError(f"clip must be one of {list(_CLIP_MODES)}, got {clip!r}")
    if clip == "none" and subtype != "FLOAT":
        raise ConfigError(f"clip='none' needs float WAV; {fmt} {subtype} cannot hold samples beyond ±1")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive int (Hz), got {sr!r}")
    level, mode = _encoder_options(fmt, sr, compression_level, bitrate_mode, bitrate_kbps)
    arrays = _check_stems(stems)

    gain = 1.0
    if clip == "rescale":
        peak = max(sample_peak(a) for a in arrays.values())
        gain = 1.0 / peak if peak > 1.0 else 1.0
    folder = Path(folder)
    paths: dict[str, Path] = {}
    for name, a in arrays.items():
        y = a * np.float32(gain) if gain != 1.0 else a
        if clip == "clamp":
            y = np.clip(y, -1.0, 1.0)
        path = folder / f"{name}.{ext}"
        write_audio(path, y, sr=sr, subtype=subtype, compression_level=level, bitrate_mode=mode)
        paths[name] = path
    return WrittenStems(paths=paths, gain=gain)


def _encoder_options(fmt: str, sr: int, level: float | None, mode: str | None,
                     kbps: int | None) -> tuple[float | None, str | None]:
    if level is not None and fmt == "wav":
        raise ConfigError("compression_level applies to flac, mp3 and ogg, not wav")
    if (mode is not None or kbps is not None) and fmt != "mp3":
        raise ConfigError(f"bitrate_mode/bitrate_kbps apply to mp3 only, not {fmt}")
    if fmt == "mp3":
        if sr not in _MP3_RATES:
            raise ConfigError(f"mp3 cannot be written at {sr} Hz (MPEG rates: {list(_MP3_RATES)}); "
                              f"resample the stems or use flac")
        if mode is not None:
            mode = mode.upper()
            if mode not in _BITRATE_MODES:
                raise ConfigError(f"bitrate_mode must be one of {list(_BITRATE_MODES)}, got {mode!r}")
        if kbps is not None:
            if level is not None:
                raise ConfigError("give bitrate_kbps or compression_level for mp3, not both")
            if mode == "VARIABLE":
                raise ConfigError("bitrate_kbps needs bitrate_mode CONSTANT or AVERAGE; VARIABLE takes "
                                  "compression_level (VBR quality)")
            # Without an explicit mode libsndfile would read the level as VBR quality.
            mode = mode or "CONSTANT"
            # libsndfile maps level -> kbps linearly over the MPEG version's range (mpeg_l3_encode.c).
            lo, hi = (32, 320) if sr >= 32000 else (8, 160) if sr >= 16000 else (8, 64)
            level = (hi - kbps) / (hi - lo)
            if not 0.0 <= level < 1.0:
                raise ConfigError(f"bitrate_kbps must be in ({lo}, {hi}] at {sr} Hz, got {kbps!r}")
        elif level is not None and not 0.0 <= level < 1.0:
            raise ConfigError(f"compression_level for mp3 must be in [0, 1) (libsndfile rejects 1.0), got {level!r}")
    elif level is not None and not 0.0 <= level <= 1.0:
        raise ConfigError(f"compression_level must be in [0, 1], got {level!r}")
    return level, mode


def _check_stems(stems: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not stems:
        raise ValueError("no stems to write")
    out: dict[str, np.ndarray] = {}
    shape = None
    for name, a in stems.items():
        if not isinstance(name, str) or not _STEM_NAME.fullmatch(name):
            raise ValueError(f"stem name must match [A-Za-z0-9_]+ (it becomes a file name), got {name!r}")
        x = np.asarray(a, dtype=np.float32)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[-1] == 0:
            raise ValueError(f"stem {name!r} must be [channels, frames] with frames > 0, got shape {x.shape}")
        if shape is not None and x.shape != shape:
            raise ValueError(f"stem {name!r} has shape {x.shape}, the others {shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"stem {name!r} contains NaN or infinity")
        shape = x.shape
        out[name] = x
    return out
