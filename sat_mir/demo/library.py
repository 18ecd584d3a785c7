"""Write the demo songs into a library folder (seed layout), once, on first use."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from filelock import FileLock

from sat_mir.audio.write import write_audio
from sat_mir.demo.synth import SongSpec, SongTruth, render_song
from sat_mir.fsutil import atomic_write_json, atomic_write_text

__all__ = ["DEMO_SONGS", "TRUTH_FILE", "ensure_demo_library", "load_truth"]

DEMO_SONGS = (
    SongSpec("Demo 01 - Sunrise", bpm=120.0, beats_per_bar=4, tonic=0, mode="major", bars=14, seed=1),
    SongSpec("Demo 02 - Night Drive", bpm=96.0, beats_per_bar=4, tonic=9, mode="minor", bars=11, seed=2),
    SongSpec("Demo 03 - Waltz", bpm=138.0, beats_per_bar=3, tonic=5, mode="major", bars=18, seed=3),
    SongSpec("Demo 04 - Steps", bpm=108.0, beats_per_bar=4, tonic=4, mode="minor", bars=12, seed=4),
)
TRUTH_FILE = "demo_truth.json"
_STAMP = ".sat-mir-demo"
_SYNTH_VERSION = "1"


def _stamp(songs: tuple[SongSpec, ...], sr: int) -> str:
    blob = json.dumps([_SYNTH_VERSION, sr, [s.__dict__ for s in songs]], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def ensure_demo_library(root: str | Path, *, songs: tuple[SongSpec, ...] = DEMO_SONGS, sr: int = 44100) -> Path:
    """Make sure ``root`` holds the rendered demo songs; render them when missing or outdated.

    Layout: ``<root>/<title>/full_mix.flac`` plus ``drums|bass|other|vocals.flac`` and
    ``<root>/demo_truth.json`` with each song's ground truth.  Safe to call from
    concurrent processes.
    """
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    stamp = _stamp(songs, sr)
    with FileLock(str(root.parent / f".{root.name}.lock")):
        stamp_file = root / _STAMP
        if stamp_file.exists() and stamp_file.read_text().strip() == stamp:
            return root
        truths: list[SongTruth] = []
        for spec in songs:
            stems, truth = render_song(spec, sr=sr)
            folder = root / spec.title
            for name, audio in stems.items():
                write_audio(folder / f"{name}.flac", audio, sr=sr)
            write_audio(folder / "full_mix.flac", np.sum(list(stems.values()), axis=0), sr=sr)
            truths.append(truth)
        atomic_write_json(root / TRUTH_FILE, {t.title: t.to_dict() for t in truths})
        atomic_write_text(stamp_file, stamp + "\n")
    return root


def load_truth(root: str | Path) -> dict[str, dict]:
    return json.loads((Path(root) / TRUTH_FILE).read_text())
