"""Feature extractors, one module per family; importing this package registers them."""

from sat_mir.features import (  # noqa: F401  - registration side effect
    aesthetics,
    chords,
    drums_midi,
    essentia_tags,
    flamingo,
    loudness,
    notes_midi,
    peaks,
    rhythm,
    series,
    signal_info,
    spectral,
    timbral,
    tonal,
)
from sat_mir.features.registry import REGISTRY, Extractor, ExtractorResult, OutputSpec, build_extractors

__all__ = ["REGISTRY", "Extractor", "ExtractorResult", "OutputSpec", "build_extractors"]
