"""Stable Audio 3's LoRA data folder (``formats=[sa3_data_dir]``): each item's audio beside a
``.txt`` caption of the same name, the layout its ``scripts/train_lora.py --data_dir`` and
``scripts/pre_encode_dataset.py --data_dir`` read (a clip is rejected when its ``.txt`` is
missing; the caption is the whole prompt).

SA3 reads one fixed caption per clip, not a prompt drawn anew per fetch, so each caption is the
richest one the material allows: every field, tag group and control kept, a description leading
when there is one, as long as the token budget allows (its prompt guide favours long descriptive
captions: genre, instruments, mood, BPM).  ``captions > 1`` writes that many differently drawn
captions as duplicated items (``<item>-v<k>``; the audio is hard-linked, not copied, where the
filesystem allows).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

from sat_mir.fsutil import atomic_path, atomic_write_text

__all__ = ["rich_recipe", "write_sa3_folder"]

_AUDIO_SUFFIXES = (".flac", ".wav", ".mp3", ".ogg")


def rich_recipe(recipe: dict) -> dict:
    """``recipe`` with everything kept, each field named ("Loudness: quiet"): what a single fixed
    caption should say."""
    controls = dict.fromkeys((recipe.get("control_keep_p") or {}) or ("bpm", "key", "meter", "chords"), 1.0)
    return {**recipe, "field_keep_p": 1.0, "control_keep_p": controls, "description_p": 1.0,
            "description_only_p": 0.0, "italian_tempo_p": 0.0, "pairs_p": 1.0,
            "case_p": {"as_is": 1.0, "lower": 0.0, "upper": 0.0}}


def _link(source: Path, target: Path) -> None:
    """``target`` holds ``source``'s bytes: a hard link where possible, else a copy (atomic)."""
    with atomic_path(target, suffix=target.suffix) as tmp:
        tmp.unlink()  # atomic_path made an empty file there: the link takes its name
        try:
            os.link(source, tmp)
        except OSError:  # another filesystem, or links not allowed
            shutil.copyfile(source, tmp)


def write_sa3_folder(folder: Path, item_ids: Sequence[str], audio_dir: Path, materials: dict[str, dict],
                     recipe: dict, *, seed: int, captions: int = 1) -> int:
    """Write ``folder/<clip>.flac`` + ``folder/<clip>.txt`` for every item (``captions`` clips
    each); remove clips of an earlier build that this one does not make.  Returns the clips."""
    from sat_mir.build.manifest import prompts_module

    if captions < 1:
        raise ValueError(f"sa3 captions must be >= 1, got {captions}")
    sampler = prompts_module()
    rich = rich_recipe(recipe)
    folder.mkdir(parents=True, exist_ok=True)
    made: set[str] = set()
    for iid in item_ids:
        rng = random.Random(f"{seed}:{iid}:sa3")
        for k in range(captions):
            clip = iid if captions == 1 else f"{iid}-v{k}"
            _link(audio_dir / f"{iid}.flac", folder / f"{clip}.flac")
            atomic_write_text(folder / f"{clip}.txt", sampler.sample_prompt(materials[iid], rng, rich) + "\n")
            made.add(clip)
    for path in folder.iterdir():
        if path.suffix in (*_AUDIO_SUFFIXES, ".txt") and path.stem not in made and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return len(made)
