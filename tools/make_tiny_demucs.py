"""Write a tiny randomly initialised HTDemucs into a Demucs model repository folder, for tests and benchmarks.

    .venv/bin/python tools/make_tiny_demucs.py REPO_DIR [--name tiny_htdemucs] [--seed 0] [--six-sources]

The architecture is Demucs v4's ``HTDemucs`` (spectrogram and waveform branches joined by
the cross-domain transformer, stereo, 44.1 kHz) shrunk to about 24 k parameters: 8 base
channels, depth 2, one transformer layer with one head, nfft 1024, 4-second training
segment.  The files follow Demucs' own package format, exactly as its remote and local
repositories hold them, so ``demucs.pretrained.get_model(name, repo=REPO_DIR)`` loads it:

- ``<sig>-<sha256[:8]>.th``: ``torch.save`` of ``demucs.states.serialize_model`` (model
  class, init args/kwargs, half-precision state, training args), written by
  ``demucs.states.save_with_checksum``; ``LocalRepo`` verifies the 8-hex-digit checksum;
- ``<name>.yaml``: a bag of models, ``models: [<sig>]`` (like ``demucs/remote/htdemucs.yaml``).

The signature is derived from the name, seed, sources and architecture, so the same
arguments always give the same signature, the same weights and the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["FOUR_SOURCES", "SIX_SOURCES", "TINY_HTDEMUCS_KWARGS", "make_tiny_demucs"]

FOUR_SOURCES = ("drums", "bass", "other", "vocals")
SIX_SOURCES = ("drums", "bass", "other", "vocals", "guitar", "piano")  # htdemucs_6s' order

# The released htdemucs is channels 48, depth 4, 5 transformer layers with 8 heads,
# nfft 4096, bottom_channels 512, dconv_mode 3 (about 42 M parameters).  These values
# keep the real code paths (STFT branch, time branch, cross transformer, DConv) while a
# 3-second mix separates in about a second on two CPU cores.
TINY_HTDEMUCS_KWARGS: dict = {
    "audio_channels": 2,
    "samplerate": 44100,
    "segment": 4,
    "channels": 8,
    "depth": 2,
    "t_layers": 1,
    "t_heads": 1,
    "nfft": 1024,
    "bottom_channels": 0,
    "dconv_depth": 1,
}


def make_tiny_demucs(
    repo_dir: Path,
    *,
    name: str = "tiny_htdemucs",
    seed: int = 0,
    sources: Sequence[str] = FOUR_SOURCES,
) -> Path:
    """Write the tiny model into ``repo_dir`` and return the path of its bag file ``<name>.yaml``.

    Parameters
    ----------
    repo_dir : folder of a Demucs local repository (created if missing); other models in
        it are left alone.
    name : the name ``get_model`` is called with; must not look like a signature.
    seed : weights are drawn with this seed inside a forked RNG, so the caller's torch
        RNG state is untouched.
    sources : the model's stems, in output order (``SIX_SOURCES`` for an htdemucs_6s stand-in).

    An earlier file with the same signature but other bytes (e.g. written by another torch
    version) is replaced, because ``LocalRepo`` refuses two files for one signature.
    """
    import torch
    import yaml
    from demucs.htdemucs import HTDemucs
    from demucs.states import save_with_checksum, serialize_model
    from omegaconf import OmegaConf

    from sat_mir.fsutil import atomic_write_text

    sources = list(sources)
    if not name or "-" in name or "/" in name:
        raise ValueError(f"name must be non-empty without '-' or '/', got {name!r}")
    sig = _signature(name, seed, sources)
    repo_dir = Path(repo_dir)
    repo_dir.mkdir(parents=True, exist_ok=True)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HTDemucs(sources=sources, **TINY_HTDEMUCS_KWARGS)
    # The real packages carry their Dora/Hydra training config here; ours records how it was made.
    training_args = OmegaConf.create({"made_by": "tools/make_tiny_demucs.py", "name": name, "seed": seed})
    package = serialize_model(model, training_args)  # half=True, like the released weights

    # save_with_checksum picks the file name (<sig>-<sha>.th) and writes in place; letting it
    # write into a private folder on the same filesystem and renaming makes the result atomic.
    with tempfile.TemporaryDirectory(prefix=".make_tiny_demucs.", dir=repo_dir) as tmp:
        save_with_checksum(package, Path(tmp) / f"{sig}.th")
        (written,) = Path(tmp).glob(f"{sig}-*.th")
        for stale in repo_dir.glob(f"{sig}-*.th"):
            if stale.name != written.name:
                stale.unlink()
        os.replace(written, repo_dir / written.name)

    bag = repo_dir / f"{name}.yaml"
    atomic_write_text(bag, yaml.safe_dump({"models": [sig]}, default_flow_style=None))
    return bag


def _signature(name: str, seed: int, sources: list[str]) -> str:
    """Eight hex digits, like a Dora experiment signature (never contains '-')."""
    spec = json.dumps({"name": name, "seed": seed, "sources": sources, "kwargs": TINY_HTDEMUCS_KWARGS},
                      sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


def main() -> None:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("repo_dir", type=Path)
    ap.add_argument("--name", default="tiny_htdemucs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--six-sources", action="store_true", help="drums, bass, other, vocals, guitar, piano")
    args = ap.parse_args()
    bag = make_tiny_demucs(args.repo_dir, name=args.name, seed=args.seed,
                           sources=SIX_SOURCES if args.six_sources else FOUR_SOURCES)
    print(f"{bag}: {bag.read_text().strip()}")
    for th in sorted(bag.parent.glob("*.th")):
        print(f"{th} ({th.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
