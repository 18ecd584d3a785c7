"""The runner: plan track × extractor work, skip what is done, run the rest, isolate failures."""

from sat_mir.run.runner import RunSummary, plan_tracks, run_extraction
from sat_mir.run.worker import TrackOutcome, TrackTask, process_track

__all__ = ["RunSummary", "TrackOutcome", "TrackTask", "plan_tracks", "process_track", "run_extraction"]
