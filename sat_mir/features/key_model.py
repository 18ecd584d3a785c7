"""The fitted key model: a conditional logit over the 24 keys on cues that each score every key.

The hand-weighted key (:func:`sat_mir.features.tonal.key_scores`) adds four cues with weights
chosen by hand: the pitch-class profile's correlation, the opening's tonic triad, the opening's
bass and the chords at phrase starts.  The fitted model reads those and more, each a ``[2 modes,
12 tonics]`` array (:func:`key_cues`), and weighs them with weights fitted on rendered and
human-composed development corpora by ``tools/fit_key.py``: a key's score is the weighted sum
of its standardised cues, and its probability a softmax over the 24 scores (so
``key_confidence`` is the model's own probability).  The cues beyond the hand-weighted four:

* the correlations with Krumhansl-Kessler's and Temperley's profiles beside Albrecht-Shanahan's,
  and of the plain and the overtone-suppressed note chroma separately;
* the bass over the whole track: its share of the tonic and of the dominant;
* how much of the chorded time is the key's tonic, dominant (major in both modes: the harmonic
  minor's V tells a minor key from its relative major) and subdominant chord, and how much of it
  is diatonic to the key (the harmonic minor's raised 7th allowed);
* whether the first and the last chord are its tonic triad, and how well the last seconds fit it.

The weights ship in ``key_weights.json`` beside this module, one set for tracks whose harmonic
content comes from stems and one for the mix alone.  Each set has a temperature that divides the
scores before the softmax, chosen on held-out songs and pieces: fitted on rendered songs, the
model was over-confident on human-composed pieces (a mean probability of 0.93 where 84 % were
right), and ``key_confidence`` decides whether a prompt states the key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np

from sat_mir.features.tonal import TONIC_TRIADS, _correlations, centred_unit

__all__ = ["CUES", "key_cues", "key_probabilities", "load_key_model"]

CUES = ("albrecht", "krumhansl", "temperley", "plain", "notes", "opening", "opening_bass", "phrase",
        "phrase_sq", "bass_tonic", "bass_dominant", "bass_profile", "closing", "tonic_chord", "dominant_chord",
        "subdominant_chord", "diatonic", "first_chord", "last_chord", "minor")

_MAJOR_SCALE = frozenset({0, 2, 4, 5, 7, 9, 11})
_MINOR_SCALE = frozenset({0, 2, 3, 5, 7, 8, 10, 11})  # natural minor and the harmonic minor's raised 7th


def _fit(pcp: np.ndarray | None, templates: np.ndarray) -> np.ndarray:
    """Every template's Pearson correlation with ``pcp``; zeros when it is missing or flat."""
    if pcp is None or np.ptp(pcp) == 0:
        return np.zeros(templates.shape[:-1])
    return _correlations(pcp, templates)


def _chord_shares(segments, interval: int, kinds: tuple[frozenset, frozenset]) -> np.ndarray:
    """``[2, 12]``: the share of the chorded time on the chord a given interval above each key's
    tonic whose triad kind is ``kinds[mode]``."""
    out = np.zeros((2, 12))
    total = sum(end - start for start, end, root, _ in segments if root is not None)
    if total <= 0:
        return out
    for start, end, root, kind in segments:
        if root is None:
            continue
        for mode in (0, 1):
            if kind in kinds[mode]:
                out[mode, (root - interval) % 12] += (end - start) / total
    return out


def _diatonic(segments, pitch_classes) -> np.ndarray:
    out = np.zeros((2, 12))
    total = 0.0
    for (start, end, root, _), pcs in zip(segments, pitch_classes):
        if root is None:
            continue
        total += end - start
        for tonic in range(12):
            rel = {(p - tonic) % 12 for p in pcs}
            out[0, tonic] += (end - start) * (rel <= _MAJOR_SCALE)
            out[1, tonic] += (end - start) * (rel <= _MINOR_SCALE)
    return out / total if total > 0 else out


def _tonic_chord(segment) -> np.ndarray:
    out = np.zeros((2, 12))
    if segment is not None and segment[3] in ("maj", "min"):
        out[0 if segment[3] == "maj" else 1, segment[2]] = 1.0
    return out


def key_cues(*, pcp: np.ndarray, plain: np.ndarray, notes: np.ndarray, opening: np.ndarray | None,
             opening_bass: np.ndarray | None, bass: np.ndarray | None, closing: np.ndarray | None,
             phrase: np.ndarray | None, segments: Sequence[tuple[float, float, int | None, str | None]],
             pitch_classes: Sequence[Sequence[int]], profiles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every cue of :data:`CUES` as a ``[2 modes, 12 tonics]`` array.

    ``pcp``, ``plain`` and ``notes``: the mean unit-max frames of the key's blend, the plain
    chroma and the note chroma; ``opening`` and ``closing``: the blend's mean over the first and
    the last seconds; ``opening_bass`` and ``bass``: the bass's mean unit-max chroma over the
    first seconds and over the whole track; ``phrase``: the share of phrase starts on each key's
    tonic triad (or None); ``segments``: the chords as (start, end, root or None, triad kind
    'maj' / 'min' / ...), with ``pitch_classes`` the pitch classes of each; ``profiles``: the
    ``[2, 12, 12]`` centred unit-norm profile matrices by name."""
    named = [s for s in segments if s[2] is not None]
    bass_c = np.zeros(12) if bass is None else centred_unit(bass)
    phrase = np.zeros((2, 12)) if phrase is None else np.asarray(phrase, dtype=np.float64)
    open_bass = np.zeros(12) if opening_bass is None else centred_unit(opening_bass)
    major, minor = frozenset({"maj"}), frozenset({"min"})
    return {
        "albrecht": _fit(pcp, profiles["albrecht"]),
        "krumhansl": _fit(pcp, profiles["krumhansl"]),
        "temperley": _fit(pcp, profiles["temperley"]),
        "plain": _fit(plain, profiles["albrecht"]),
        "notes": _fit(notes, profiles["albrecht"]),
        "opening": _fit(opening, TONIC_TRIADS),
        "opening_bass": np.stack([open_bass, open_bass]),
        "phrase": phrase,
        "phrase_sq": phrase ** 2,
        "bass_tonic": np.stack([bass_c, bass_c]),
        "bass_dominant": np.stack([np.roll(bass_c, -7)] * 2),
        "bass_profile": _fit(bass, profiles["albrecht"]),
        "closing": _fit(closing, TONIC_TRIADS),
        "tonic_chord": _chord_shares(segments, 0, (major, minor)),
        "dominant_chord": _chord_shares(segments, 7, (major, major)),
        "subdominant_chord": _chord_shares(segments, 5, (major, minor)),
        "diatonic": _diatonic(segments, pitch_classes),
        "first_chord": _tonic_chord(named[0] if named else None),
        "last_chord": _tonic_chord(named[-1] if named else None),
        "minor": np.stack([np.zeros(12), np.ones(12)]),
    }


def key_probabilities(cues: dict[str, np.ndarray], variant: dict) -> np.ndarray:
    """``[2, 12]``: each key's probability under one fitted variant (``{"cues": [...], "mean":
    [...], "scale": [...], "weights": [...], "temperature": T}``): the softmax of the scores
    divided by ``T`` (1 when the variant has none; see ``tools/fit_key.py --calibrate``)."""
    x = np.stack([cues[name] for name in variant["cues"]], axis=-1)
    z = (x - np.asarray(variant["mean"])) / np.asarray(variant["scale"])
    score = z @ np.asarray(variant["weights"]) / float(variant.get("temperature", 1.0))
    p = np.exp(score - score.max())
    return p / p.sum()


@lru_cache(maxsize=1)
def load_key_model() -> dict:
    """The fitted weights (``key_weights.json``): ``{"stems": variant, "mix": variant, ...}``."""
    return json.loads(resources.files("sat_mir.features").joinpath("key_weights.json").read_text())
