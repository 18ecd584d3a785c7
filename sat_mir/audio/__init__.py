"""Decoding, resampling, writing, and the per-signal analysis context."""

from sat_mir.audio.context import SignalContext, TrackContext
from sat_mir.audio.decode import Audio, load_audio, probe_frames
from sat_mir.audio.resample import resample
from sat_mir.audio.write import write_audio

__all__ = [
    "Audio",
    "SignalContext",
    "TrackContext",
    "load_audio",
    "probe_frames",
    "resample",
    "write_audio",
]
