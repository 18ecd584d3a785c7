"""Stems checked against their mix where they enter (file headers only, no decoding).

A stem at another sample rate or channel count is fine: every stage brings it to the mix's
(resampled, mixed down or duplicated), and the track carries a note saying so.  A stem whose
length differs from the mix's by more than a second (and 2 %) is not that mix's stem (a
different edit, a cut-off render): it is left out of the track, with the reason, rather than
measured and cut against a mix it does not belong to.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from sat_mir.audio.decode import probe_header
from sat_mir.catalog.scan import Track

__all__ = ["check_stems"]

log = logging.getLogger("sat_mir.catalog")

MAX_LENGTH_DIFF_S = 1.0
MAX_LENGTH_DIFF_RATIO = 0.02


def check_stems(tracks: list[Track], root: Path) -> list[Track]:
    """The tracks with mismatched stems left out and notes added; one log line per track."""
    out = []
    for track in tracks:
        if not track.stems:
            out.append(track)
            continue
        mix = probe_header(track.mix)
        if mix is None:  # the mix's own decode will say what is wrong with it
            out.append(track)
            continue
        stems, notes = {}, []
        for name, path in track.stems.items():
            h = probe_header(path)
            if h is None:
                stems[name] = path  # unknown length (mp3, m4a): the stage that decodes it checks
                continue
            diff = abs(h.duration_s - mix.duration_s)
            if diff > max(MAX_LENGTH_DIFF_S, MAX_LENGTH_DIFF_RATIO * mix.duration_s):
                notes.append(f"stem {name} ({path.name}) is {h.duration_s:.2f} s, the mix {mix.duration_s:.2f} s: "
                             "not this mix's stem, left out")
                continue
            stems[name] = path
            if h.sr != mix.sr:
                notes.append(f"stem {name} is at {h.sr} Hz, the mix at {mix.sr} Hz: resampled")
            if h.channels != mix.channels:
                notes.append(f"stem {name} has {h.channels} channel(s), the mix {mix.channels}: "
                             "brought to the mix's channels where they are combined")
        if notes:
            log.warning("%s: %s", track.rel, "; ".join(notes))
            track = dataclasses.replace(track, stems=stems, notes=tuple(notes))
        out.append(track)
    return out

