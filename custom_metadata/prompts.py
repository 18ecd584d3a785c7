"""Prompt sampling for Stable Audio training — standard library only.

This file is copied next to the dataset by ``python -m sat_mir.build`` and runs
inside stable-audio-tools' own environment, where sat_mir is not installed; the
builder imports the same functions from here for ``prompts preview``, so there
is one copy of the logic.

An item's prompt material (prepared by the builder) is a dict::

    {"fields":    {"genre": ["Electronic", "Techno"], "artist": "X", ...},  # metadata-style
     "controls":  {"bpm": 120.0, "key": "A minor", "meter": "4/4", "chords": ["Am", "F", "C", "G"]},
     "words":     {"loudness": "loud", "brightness": "dark", ...},          # corpus-binned
     "descriptions": ["A dark techno track with ...", ...]}

and a recipe (from ``conf/prompts/<name>.yaml``) says how to combine it.  Every
call draws a new prompt from the item's material with the given
``random.Random``, in the spirit of Stable Audio's recipe: a random subset of
fields in random order, list values shuffled, half the time ``Key: value``
pairs and half values only, random case; plus measured control sentences
(MusicBench style), each dropped at random.  A text description (e.g. Music
Flamingo's) may lead that prompt (``description_p``) or, when the recipe sets
``description_only_p``, stand alone as the whole prompt.
"""

from __future__ import annotations

import math
import random
import re

__all__ = [
    "DEFAULT_RECIPE",
    "ITALIAN_TEMPI",
    "estimate_t5_tokens",
    "italian_tempo",
    "sample_prompt",
]

# (lower bound in BPM, word): the conventional metronome ranges.
ITALIAN_TEMPI = (
    (0.0, "Grave"),
    (40.0, "Largo"),
    (60.0, "Larghetto"),
    (66.0, "Adagio"),
    (76.0, "Andante"),
    (108.0, "Moderato"),
    (120.0, "Allegro"),
    (156.0, "Vivace"),
    (176.0, "Presto"),
    (200.0, "Prestissimo"),
)

DEFAULT_RECIPE = {
    # probability that each metadata-style field / word / tag group is kept
    "field_keep_p": 0.6,
    # half "Key: value" pairs, half values only (Stable Audio)
    "pairs_p": 0.5,
    # separators between fields: ", " (SAO) or "|" (Stable Audio 1/2), picked at random
    "separators": [", ", " | "],
    # case of the whole prompt: as written, lower, upper
    "case_p": {"as_is": 0.6, "lower": 0.3, "upper": 0.1},
    # each control sentence is kept with this probability
    "control_keep_p": {"bpm": 0.5, "key": 0.5, "meter": 0.3, "chords": 0.3},
    # a bpm sentence uses the Italian tempo word instead of the number this often
    "italian_tempo_p": 0.3,
    # probability that a text description (when the item has one) leads the prompt
    "description_p": 0.5,
    # probability that the prompt is one text description alone, whole (Music Flamingo writes
    # complete prompts), instead of fields, words and controls; drawn before everything else,
    # only for items that have a description; long ones keep their first sentences that fit
    "description_only_p": 0.25,
    # how many list values at most per field (after shuffling)
    "max_list_values": 5,
    # conservative budget for T5's max_length (SAO: 128 tokens)
    "max_tokens": 128,
}

_WORD_KEYS = {  # how a binned word reads as a pair: "Loudness: loud"
    "loudness": "Loudness",
}


def italian_tempo(bpm: float) -> str:
    """The Italian tempo word for ``bpm`` beats per minute."""
    word = ITALIAN_TEMPI[0][1]
    for lower, name in ITALIAN_TEMPI:
        if bpm >= lower:
            word = name
    return word


def estimate_t5_tokens(text: str) -> int:
    """A deliberately high estimate of T5 sentencepiece tokens for ``text``.

    Letters cost one token per 3 characters (rounded up; T5 keeps most English
    words whole, so real counts are lower), every digit one token (numbers may
    split digit by digit) and every other symbol one token, plus the end token.
    Rare words can still split finer than this; SAT truncates at ``max_length``
    rather than failing, so the guard keeps prompts from being cut, not from
    crashing.
    """
    pieces = re.findall(r"[^\W\d_]+|\d|[^\w\s]|_", text)
    return sum(math.ceil(len(p) / 3) if p[0].isalpha() else 1 for p in pieces) + 1  # + </s>


def _fit_text(text: str, budget: int) -> str:
    """``text`` cut to ``budget`` estimated tokens: its first whole sentences that fit, else its
    first words."""
    if estimate_t5_tokens(text) <= budget:
        return text
    sentences = re.split(r"(?<=[.!?])\s+", text)
    kept: list[str] = []
    while sentences and estimate_t5_tokens(" ".join([*kept, sentences[0]])) <= budget:
        kept.append(sentences.pop(0))
    if kept:
        return " ".join(kept)
    words = text.split()
    while words and estimate_t5_tokens(" ".join(words)) > budget:
        words.pop()
    return " ".join(words)


def _title(key: str) -> str:
    return _WORD_KEYS.get(key, key.replace("_", " ").capitalize())


def _values(value, rng: random.Random, max_values: int) -> list[str]:
    if isinstance(value, (list, tuple)):
        vals = [str(v) for v in value if str(v).strip()]
        rng.shuffle(vals)
        return vals[:max_values]
    text = str(value).strip()
    return [text] if text else []


def _control_sentences(controls: dict, recipe: dict, rng: random.Random) -> list[str]:
    keep = recipe.get("control_keep_p", {})
    out = []
    bpm = controls.get("bpm")
    if isinstance(bpm, (int, float)) and bpm > 0 and rng.random() < keep.get("bpm", 0.0):
        if rng.random() < recipe.get("italian_tempo_p", 0.0):
            out.append(f"This song is in {italian_tempo(float(bpm))}.")
        else:
            out.append(f"This song goes at {float(bpm):.0f} beats per minute.")
    key = controls.get("key")
    if key and rng.random() < keep.get("key", 0.0):
        out.append(f"This song is in the key of {key}.")
    meter = controls.get("meter")
    if meter and rng.random() < keep.get("meter", 0.0):
        # a time signature ("6/8") reads as one; a bare number of beats per bar as a count
        out.append(f"The time signature is {meter}." if "/" in str(meter) else f"The beat counts to {meter}.")
    chords = controls.get("chords")
    if chords and rng.random() < keep.get("chords", 0.0):
        out.append(f"The chord sequence is {', '.join(str(c) for c in chords)}.")
    return out


def _apply_case(text: str, recipe: dict, rng: random.Random) -> str:
    probs = recipe.get("case_p", {"as_is": 1.0})
    r = rng.random() * sum(probs.values())
    for mode, p in probs.items():
        r -= p
        if r < 0:
            return text.lower() if mode == "lower" else text.upper() if mode == "upper" else text
    return text


def sample_prompt(material: dict, rng: random.Random, recipe: dict | None = None) -> str:
    """Draw one prompt for an item's ``material`` (see the module docstring).

    Never empty when the material holds anything; fields are dropped (controls
    first, then the last fields) until the estimate fits ``max_tokens``.
    """
    recipe = {**DEFAULT_RECIPE, **(recipe or {})}
    budget = int(recipe["max_tokens"])
    descriptions = [str(d).strip() for d in material.get("descriptions") or [] if str(d).strip()]
    only_p = float(recipe.get("description_only_p") or 0.0)
    if descriptions and only_p > 0 and rng.random() < only_p:
        return _apply_case(_fit_text(rng.choice(descriptions), budget), recipe, rng)
    max_values = int(recipe.get("max_list_values", 5))
    groups: list[tuple[str, list[str]]] = []
    for section in ("fields", "words"):
        for key, value in (material.get(section) or {}).items():
            vals = _values(value, rng, max_values)
            if vals:
                groups.append((key, vals))
    rng.shuffle(groups)
    kept = [g for g in groups if rng.random() < recipe["field_keep_p"]]
    if not kept and groups:
        kept = [groups[0]]  # a random subset, but never an empty one
    pairs = rng.random() < recipe["pairs_p"]
    separators = recipe.get("separators") or [", "]
    sep = separators[rng.randrange(len(separators))]
    if pairs:
        parts = [f"{_title(k)}: {', '.join(v)}" for k, v in kept]
    else:
        parts = [", ".join(v) for _, v in kept]

    lead = []
    if descriptions and (rng.random() < recipe["description_p"] or not parts):
        lead.append(rng.choice(descriptions))
    controls = _control_sentences(material.get("controls") or {}, recipe, rng)
    if not parts and not lead and not controls and material.get("controls"):
        # nothing else to say: keep one control sentence rather than an empty prompt
        controls = _control_sentences(material["controls"], {**recipe, "control_keep_p": dict.fromkeys(
            ("bpm", "key", "meter", "chords"), 1.0)}, rng)[:1]

    def render() -> str:
        body = sep.join(parts)
        text = " ".join(x for x in (*lead, body) if x)
        if controls:
            text = f"{text}. {' '.join(controls)}" if text else " ".join(controls)
        return text

    text = render()
    # a description too long beside one field gives way to it; alone, it is cut below
    while estimate_t5_tokens(text) > budget and (controls or len(parts) > 1 or (lead and parts)):
        if controls:
            controls.pop()
        elif len(parts) > 1:
            parts.pop()
        else:
            lead.clear()
        text = render()
    # one enormous field or description: its first sentences, or words, that fit
    return _apply_case(_fit_text(text, budget), recipe, rng)
