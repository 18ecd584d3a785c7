"""Training crops: plan cut points on the beat grid, cut mix and stems, one sidecar per crop."""

from sat_mir.crops.cut import INHERITED_KEYS, CropSettings, crop_folder, crop_id, cut_track, load_crop_tracks
from sat_mir.crops.plan import MODES, CropSpan, plan_crops, snap_to_zero_crossing
from sat_mir.crops.run import cut_tracks

__all__ = ["INHERITED_KEYS", "MODES", "CropSettings", "CropSpan", "crop_folder", "crop_id", "cut_track",
           "cut_tracks", "load_crop_tracks", "plan_crops", "snap_to_zero_crossing"]
