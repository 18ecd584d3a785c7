"""The beat grid's settings, shared by every extractor that reads the grid (rhythm, stem_rhythm,
series, chords, tonal): which tracker makes it and how, and the base class that prepares its
inputs and keys a skip on the tracker actually used.

Apart from ``rhythm`` so that ``tonal`` can read the grid too: ``rhythm`` reads tonal's
harmonic frames (harmonic change marks bar lines), so neither can import the other at load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ConfigError, MissingExtraError, WeightsError
from sat_mir.features.registry import Extractor

__all__ = ["TRACKERS", "GridConfig", "UsesBeatGrid", "grid_settings", "resolve_tracker"]

TRACKERS = ("auto", "dsp", "beat_this")


@lru_cache(maxsize=16)
def resolve_tracker(tracker: str, models_dir: str | None = None) -> str:
    """``"dsp"`` or ``"beat_this"`` for a ``tracker`` setting: ``auto`` takes Beat This! when its
    checkpoint and package are here, the DSP metrical analysis otherwise.

    Raises
    ------
    ConfigError
        An unknown setting.
    WeightsError
        ``beat_this`` asked for, and its checkpoint or package is missing.
    """
    from sat_mir.models.beat_this import find_checkpoint

    if tracker not in TRACKERS:
        raise ConfigError(f"extractors.rhythm.tracker must be one of {list(TRACKERS)}, got {tracker!r}")
    if tracker == "dsp":
        return "dsp"
    try:
        find_checkpoint(models_dir)
    except (WeightsError, MissingExtraError):
        if tracker == "beat_this":
            raise
        return "dsp"
    return "beat_this"


@dataclass(frozen=True)
class GridConfig:
    """The beat grid's settings, in the config of every extractor that reads the grid (rhythm's;
    the others' are interpolated from it, so all of them share one grid).

    tightness : how strictly the tracked beats follow one tempo (librosa's DP).
    use_stems : let the drums, bass and other stems inform the beat level and the bars.
    tracker : auto | dsp | beat_this (auto: Beat This! when its weights are here).
    models_dir, device : where Beat This!'s weights are and what it runs on.
    """

    tightness: float = 100.0
    use_stems: bool = True
    tracker: str = "auto"
    models_dir: str | None = None
    device: str = "auto"

    def __post_init__(self):
        resolve_tracker(self.tracker, self.models_dir)  # unknown setting or missing weights: say so now


def grid_settings(config: GridConfig) -> dict:
    """The keyword arguments of :func:`sat_mir.features.rhythm.metrical_of` from an extractor's config."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(GridConfig)}


class UsesBeatGrid(Extractor):
    """An extractor that reads the beat grid: its config is a :class:`GridConfig`, and its skip
    key holds the tracker ``auto`` resolved to, so weights that appear later make the next run
    redo the grid with Beat This!."""

    Config = GridConfig

    def prepare(self, ctx: TrackContext, stem: str) -> None:
        if self.config.use_stems:
            from sat_mir.features.rhythm import prepare_rhythm_inputs

            prepare_rhythm_inputs(ctx, stem)

    @property
    def config_hash(self) -> str:
        import hashlib

        engine = resolve_tracker(self.config.tracker, self.config.models_dir)
        return hashlib.sha1(f"{super().config_hash}/{engine}".encode()).hexdigest()[:12]
