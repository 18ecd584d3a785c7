"""Every model sat-mir can use, collected from the modules that load them."""

from __future__ import annotations

import importlib

from sat_mir.models.spec import ModelFile, ModelSpec

__all__ = ["all_models", "find_model"]

# modules with a module-level MODELS tuple
_MODULES = ("sat_mir.models.demucs", "sat_mir.models.essentia_tf", "sat_mir.models.audiobox",
            "sat_mir.models.flamingo", "sat_mir.models.adtof", "sat_mir.models.beat_this", "sat_mir.models.basic_pitch")

STABLE_AUDIO_OPEN = ModelSpec(
    name="stable-audio-open-1.0",
    folder="stable-audio-open-1.0",
    files=(ModelFile("model_config.json"), ModelFile("vae_model.ckpt")),
    licence="Stability AI Community License (commercial use only under its revenue threshold; gated repo: "
            "accept the licence on Hugging Face and log in first)",
    used_by="build (latents: the autoencoder; point dataset.models or model.dir at this folder)",
    description="Stable Audio Open 1.0: its model config and VAE weights",
    hf_repo="stabilityai/stable-audio-open-1.0",
    commercial_use=False,
    extra={"allow_patterns": ["model_config.json", "vae_model.ckpt"]},
)


def all_models() -> list[ModelSpec]:
    out = []
    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # an optional model family whose package is not installed
            if exc.name and exc.name.startswith("sat_mir"):
                raise
            continue
        out.extend(module.MODELS)
    out.append(STABLE_AUDIO_OPEN)
    return out


def find_model(name: str) -> ModelSpec:
    from sat_mir.errors import ConfigError

    models = {m.name: m for m in all_models()}
    if name not in models:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(sorted(models))}")
    return models[name]
