"""Demucs v4 weights as a local Demucs repository: ``<models_dir>/demucs/`` holding the
``<signature>-<checksum>.th`` files and the bag ``<name>.yaml`` files (copied from the
installed demucs package), which ``demucs.pretrained.get_model(name, repo=...)`` reads and
checks.  See :mod:`sat_mir.separation.demucs_separator` for the loader."""

from __future__ import annotations

import yaml

from sat_mir.models.spec import ModelFile, ModelSpec

__all__ = ["MODELS", "demucs_spec"]

BASE_URL = "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/"
LICENCE = "MIT (code and released weights, facebookresearch/demucs)"
DESCRIPTIONS = {
    "htdemucs": "Hybrid Transformer Demucs v4 (default; one model, 4 stems)",
    "htdemucs_ft": "the 4 per-stem fine-tuned HTDemucs models (about 4x slower, slightly better)",
    "htdemucs_6s": "HTDemucs with guitar and piano stems (folded into 'other' unless kept)",
}


def demucs_spec(name: str) -> ModelSpec:
    """The spec of one Demucs bag, read from the installed package's remote list."""
    from demucs.pretrained import REMOTE_ROOT

    sigs = yaml.safe_load((REMOTE_ROOT / f"{name}.yaml").read_text())["models"]
    names = {line.split("-", 1)[0]: line.strip() for line in (REMOTE_ROOT / "files.txt").read_text().split()
             if line.strip().endswith(".th")}
    files = [ModelFile(f"{name}.yaml", url=f"package:demucs/remote/{name}.yaml")]
    # the Demucs file name carries the first 8 hex digits of its sha256, which LocalRepo checks on load
    files += [ModelFile(names[s], url=BASE_URL + names[s], sha256=names[s][:-3].split("-")[1]) for s in sigs]
    return ModelSpec(name=f"demucs-{name}" if name != "htdemucs" else "demucs", folder="demucs",
                     files=tuple(files), licence=LICENCE, used_by=f"separation (model={name})",
                     description=DESCRIPTIONS.get(name, ""), commercial_use=True)


MODELS = tuple(demucs_spec(n) for n in DESCRIPTIONS)
