"""Checks before SAT sees the data: SAT silently swaps undecodable or silent files for random
others, and fails late on a missing conditioning key, so the builder checks first."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sat_mir.audio.decode import load_audio
from sat_mir.audio.headroom import sample_peak
from sat_mir.errors import AudioReadError

__all__ = ["SILENCE_DBFS", "validate_audio_items", "validate_prompts"]

# SAT's audio_dir loader treats a peak below -60 dBFS as silence and draws another file.
SILENCE_DBFS = -60.0


def validate_audio_items(ids: Iterable[str], folder: Path, *, channels: int, ext: str = "flac") -> dict[str, str]:
    """{item id: reason} for items whose file does not decode, is silent, or has the wrong channels."""
    bad = {}
    for iid in ids:
        path = folder / f"{iid}.{ext}"
        try:
            data = load_audio(path).samples  # [channels, frames]
        except AudioReadError as exc:
            bad[iid] = f"{path.name} does not decode ({exc.reason})"
            continue
        peak = sample_peak(data)
        if peak == 0.0 or 20 * np.log10(peak) < SILENCE_DBFS:
            bad[iid] = f"silent (peak below {SILENCE_DBFS:.0f} dBFS): SAT would swap it for a random other file"
        elif data.shape[0] != channels:
            bad[iid] = f"{data.shape[0]} channels, the model takes {channels}"
    return bad


def validate_prompts(materials: dict[str, dict], recipe: dict, *, seed: int, draws: int = 4) -> dict[str, str]:
    """{item id: reason} for items whose prompts come out empty or over the token budget."""
    from sat_mir.build.manifest import prompts_module

    sampler = prompts_module()
    budget = int({**sampler.DEFAULT_RECIPE, **recipe}["max_tokens"])
    bad = {}
    for iid, material in materials.items():
        rng = random.Random(f"{seed}:{iid}:validate")
        for _ in range(draws):
            prompt = sampler.sample_prompt(material, rng, recipe)
            if not prompt.strip():
                bad[iid] = "its prompt material is empty (no features, tags or descriptions to describe it)"
                break
            if sampler.estimate_t5_tokens(prompt) > budget:
                bad[iid] = f"prompt over the {budget}-token budget: {prompt[:80]!r}..."
                break
    return bad
