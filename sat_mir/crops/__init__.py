"""Training crops: plan cut points on the beat grid, cut mix and stems, one sidecar per crop."""

from sat_mir.crops.cut import CropSettings, cut_track
from sat_mir.crops.plan import MODES, CropSpan, plan_crops, snap_to_zero_crossing
from sat_mir.crops.run import cut_tracks

__all__ = ["MODES", "CropSettings", "CropSpan", "cut_track", "cut_tracks", "plan_crops",
           "snap_to_zero_crossing"]
