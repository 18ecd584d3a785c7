"""The output folder: where things live (layout), the typed view of a dataset (dataset), and the
per-item sidecars with flat feature keys and per-extractor provenance (sidecar)."""

from sat_mir.store.dataset import (
    CROP_SECTION_FEATURES,
    Dataset,
    crop_tracks,
    item_values,
    read_crops_manifest,
    write_catalog,
)
from sat_mir.store.layout import crop_folder, crop_id, is_crop_id, sidecar_path, source_track_id, track_dir
from sat_mir.store.sidecar import (
    SCHEMA_VERSION,
    ExtractorRecord,
    fingerprint_inputs,
    merge_extractor,
    read_sidecar,
    records,
    stat_matches,
    update_track,
)

__all__ = [
    "CROP_SECTION_FEATURES",
    "SCHEMA_VERSION",
    "Dataset",
    "ExtractorRecord",
    "crop_folder",
    "crop_id",
    "crop_tracks",
    "fingerprint_inputs",
    "is_crop_id",
    "item_values",
    "merge_extractor",
    "read_crops_manifest",
    "read_sidecar",
    "records",
    "sidecar_path",
    "source_track_id",
    "stat_matches",
    "track_dir",
    "update_track",
    "write_catalog",
]
