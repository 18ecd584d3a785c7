"""Find the tracks of a library, give each a stable id and a work folder."""

from sat_mir.catalog.check import check_stems
from sat_mir.catalog.scan import AUDIO_SUFFIXES, Track, scan_library, track_id

__all__ = ["AUDIO_SUFFIXES", "Track", "check_stems", "scan_library", "track_id"]
