"""The bundled demo dataset: multi-stem songs synthesised with exactly known answers."""

from sat_mir.demo.library import DEMO_SONGS, ensure_demo_library, load_truth
from sat_mir.demo.synth import SongSpec, SongTruth, render_song

__all__ = ["DEMO_SONGS", "SongSpec", "SongTruth", "ensure_demo_library", "load_truth", "render_song"]
