"""Stem separation: Demucs v4 run in process from local weights, and stem writers."""

from sat_mir.separation.demucs_separator import EXTRA_STEMS, STEMS, DemucsSeparator, load_separator
from sat_mir.separation.stem_io import STEM_FORMATS, WrittenStems, write_stems

__all__ = [
    "EXTRA_STEMS",
    "STEMS",
    "STEM_FORMATS",
    "DemucsSeparator",
    "WrittenStems",
    "load_separator",
    "write_stems",
]
