"""Sidecars: one JSON file per track with flat feature keys and per-extractor provenance."""

from sat_mir.store.sidecar import (
    SCHEMA_VERSION,
    ExtractorRecord,
    fingerprint_inputs,
    merge_extractor,
    read_sidecar,
    records,
    sidecar_path,
    stat_matches,
    track_dir,
    update_track,
)

__all__ = [
    "SCHEMA_VERSION",
    "ExtractorRecord",
    "fingerprint_inputs",
    "merge_extractor",
    "read_sidecar",
    "sidecar_path",
    "track_dir",
    "records",
    "stat_matches",
    "update_track",
]
