"""Load a Stable Audio autoencoder (VAE) the way stable-audio-tools builds it, with checked weights.

Accepts an autoencoder config (``vae_config.json``-style) or a full ``diffusion_cond``
model config whose ``model.pretransform`` holds the autoencoder (Stable Audio Open's
``model_config.json``), and an unwrapped checkpoint (``vae_model.ckpt``) or a full
model checkpoint.  SAT's own loader skips mismatching tensors silently; this one
refuses a checkpoint that leaves encoder weights unset.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sat_mir.errors import ConfigError, WeightsError
from sat_mir.fsutil import sha256_file

__all__ = ["Autoencoder", "load_autoencoder"]

_HOW_TO_GET = (
    "Stable Audio Open's VAE is the pair vae_model.ckpt + model_config.json in the Hugging Face repo "
    "stabilityai/stable-audio-open-1.0 (gated: accept its licence on huggingface.co, then "
    "`huggingface-cli login`): huggingface-cli download stabilityai/stable-audio-open-1.0 "
    "vae_model.ckpt model_config.json --local-dir models/stable-audio-open-1.0  (the full model.safetensors of that repo "
    "works as the checkpoint too; its VAE is read from the pretransform)"
)

# Where a checkpoint may keep the autoencoder's tensors, most specific first: SAT's
# unwrapped VAE (no prefix), its autoencoder training wrapper (EMA copy preferred, as
# SAT's unwrap does), and a full diffusion model holding the VAE as its pretransform.
_KNOWN_PREFIXES = (
    "",
    "autoencoder_ema.ema_model.",
    "autoencoder.",
    "pretransform.model.",
    "diffusion.pretransform.model.",
    "model.",
)


@dataclass(frozen=True, eq=False)
class Autoencoder:
    """A stable-audio-tools ``AudioAutoencoder`` ready to encode, with the numbers callers need.

    ``sample_rate`` (Hz) and ``audio_channels`` are what the encoder expects as input;
    ``downsampling_ratio`` audio samples make one latent frame of ``latent_dim`` channels.
    """

    model: torch.nn.Module
    sample_rate: int
    audio_channels: int
    downsampling_ratio: int
    latent_dim: int
    device: torch.device
    dtype: torch.dtype
    model_config: Path
    ckpt: Path
    ckpt_prefix: str  # the prefix the checkpoint's autoencoder tensors had ("" for an unwrapped VAE)

    ckpt_sha256: str = ""

    @property
    def sampling(self) -> str:
        """How a latent is drawn from the encoder's output (recorded in ``details.json``)."""
        if _is_vae(self.model.bottleneck):
            return "vae posterior sample, noise seeded by the item id (sha256)"
        name = type(self.model.bottleneck).__name__ if self.model.bottleneck is not None else "none"
        return f"bottleneck {name}"

    def encode(self, audio: torch.Tensor, seeds: list[int] | None = None) -> torch.Tensor:
        """Encode ``audio`` float ``[B, audio_channels, S]`` (S a multiple of the ratio) to
        float32 CPU latents ``[B, latent_dim, S // downsampling_ratio]``.

        The result is a **sample** of the VAE posterior (mean + (softplus(scale) + 1e-4) ·
        noise, SAT's ``vae_sample``), not its mean: SAT's ``AudioAutoencoder.encode`` runs the
        ``vae`` bottleneck, which samples, and both SAT's pre_encode.py and its on-the-fly
        training path (``pretransform.encode``) use that; training on pre-encoded latents
        therefore sees the same distribution as training on audio.  With ``seeds`` (one per
        batch row) the noise of row i comes from a CPU generator seeded with ``seeds[i]``, so an
        item's latent is the same in every run, whatever batch it is encoded in; without, the
        noise is SAT's own ``randn_like``.  The pretransform ``scale`` of a diffusion config is
        *not* applied: SAT divides pre-encoded latents by it at training time.
        """
        x = audio.to(self.device, self.dtype, non_blocking=True)
        with torch.inference_mode():
            if seeds is None or not _is_vae(self.model.bottleneck):
                return self.model.encode(x).float().cpu()
            if len(seeds) != x.shape[0]:
                raise ValueError(f"{len(seeds)} seeds for a batch of {x.shape[0]}")
            pre = self.model.encode(x, skip_bottleneck=True).float()
            mean, scale = pre.chunk(2, dim=1)
            noise = torch.stack([torch.randn(mean.shape[1:], generator=torch.Generator().manual_seed(int(s)))
                                 for s in seeds]).to(mean.device)
            z = noise * (torch.nn.functional.softplus(scale) + 1e-4) + mean
        return z.cpu()


def _is_vae(bottleneck: Any) -> bool:
    return type(bottleneck).__name__ == "VAEBottleneck"


def load_autoencoder(
    model_config: Path, ckpt: Path, *, device: str | None = None, half: bool | None = None
) -> Autoencoder:
    """Build the autoencoder of ``model_config`` (JSON) with SAT and load ``ckpt`` into it.

    ``model_config`` is either an autoencoder config (``model_type: "autoencoder"``) or a
    full model config whose ``model.pretransform`` is an autoencoder (Stable Audio Open's
    ``model_config.json``).  ``ckpt`` is ``.safetensors`` or a torch file holding
    ``{"state_dict": ...}`` (SAT's unwrapped format) or a bare state dict; tensors may carry
    a wrapper prefix (``autoencoder.``, ``pretransform.model.``, ...).  Every encoder and
    bottleneck tensor must be found with the right shape, otherwise :class:`WeightsError`
    (SAT's own ``copy_state_dict`` would silently leave them random).  Decoder tensors are
    loaded when present; encoding does not use them.

    ``device`` defaults to CUDA when available, else CPU.  ``half`` defaults to True on
    CUDA only and then means bfloat16 where the GPU supports it, else float16.
    """
    model_config, ckpt = Path(model_config), Path(ckpt)
    for path, what in ((model_config, "model config"), (ckpt, "autoencoder checkpoint")):
        if not path.is_file():
            raise WeightsError(f"{what} {path} not found. {_HOW_TO_GET}")
    try:
        raw = json.loads(model_config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{model_config}: not a readable JSON model config ({exc})") from exc
    ae_config = _autoencoder_config(raw, model_config)

    create_model_from_config = _import_sat_factory()
    try:
        with _quiet_sat():
            model = create_model_from_config(ae_config)
    except (AssertionError, KeyError, TypeError, ValueError, NotImplementedError) as exc:
        raise ConfigError(f"{model_config}: stable-audio-tools cannot build this autoencoder ({exc!r})") from exc
    if getattr(model, "is_discrete", False):
        raise ConfigError(f"{model_config}: the autoencoder has a discrete bottleneck; only continuous latents are supported")
    audio_channels = int(ae_config.get("audio_channels", 2))
    if int(model.in_channels) != audio_channels:
        raise ConfigError(
            f"{model_config}: audio_channels is {audio_channels} but the encoder takes {model.in_channels} channels"
        )
    prefix = _load_weights(model, _read_state_dict(ckpt), ckpt, model_config)

    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if half is None:
        half = dev.type == "cuda"
    dtype = torch.float32
    if half:
        # CPU convolutions have no usable float16 path; bfloat16 works there too.
        bf16_ok = dev.type != "cuda" or torch.cuda.is_bf16_supported()
        dtype = torch.bfloat16 if bf16_ok else torch.float16
    model = model.to(device=dev, dtype=dtype).eval().requires_grad_(False)
    return Autoencoder(
        model=model,
        sample_rate=int(ae_config["sample_rate"]),
        audio_channels=audio_channels,
        downsampling_ratio=int(model.downsampling_ratio),
        latent_dim=int(model.latent_dim),
        device=dev,
        dtype=dtype,
        model_config=model_config,
        ckpt=ckpt,
        ckpt_prefix=prefix,
        ckpt_sha256=sha256_file(ckpt),
    )


def _autoencoder_config(raw: Any, path: Path) -> dict:
    """The SAT autoencoder config inside ``raw``: itself, or a diffusion model's pretransform.

    SAT builds a pretransform autoencoder from ``model.pretransform.config`` with the top-level
    ``sample_rate`` (``models/factory.py: create_pretransform_from_config``); so do we.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a model config must be a JSON object")
    model_type = raw.get("model_type")
    pretransform = raw.get("model", {}).get("pretransform") if isinstance(raw.get("model"), dict) else None
    if model_type == "autoencoder":
        cfg = raw
    elif isinstance(pretransform, dict):
        if pretransform.get("type") != "autoencoder" or not isinstance(pretransform.get("config"), dict):
            raise ConfigError(
                f"{path}: model.pretransform has type {pretransform.get('type')!r}; only an 'autoencoder' "
                "pretransform with a 'config' object can be pre-encoded"
            )
        cfg = {
            "model_type": "autoencoder",
            "sample_rate": raw.get("sample_rate"),
            "audio_channels": raw.get("audio_channels", 2),
            "model": pretransform["config"],
        }
    else:
        raise ConfigError(
            f"{path}: model_type {model_type!r} is neither 'autoencoder' nor a model with an autoencoder "
            "under model.pretransform"
        )
    cfg = json.loads(json.dumps(cfg))  # private copy: SAT's factories may mutate what they are given
    model = cfg.get("model")
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: the autoencoder config has no 'model' object")
    for key in ("encoder", "decoder"):
        if not isinstance(model.get(key), dict):
            raise ConfigError(f"{path}: the autoencoder config has no '{key}' object")
    for where, key in ((cfg, "sample_rate"), (model, "latent_dim"), (model, "downsampling_ratio"), (model, "io_channels")):
        value = where.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{path}: the autoencoder's {key} must be a positive integer, got {value!r}")
    return cfg


def _import_sat_factory():
    # laion_clap (pulled in by some SAT imports) retries huggingface.co for minutes when
    # offline; the autoencoder needs nothing from the hub.  setdefault keeps a user's choice.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with _quiet_sat():
        from stable_audio_tools.models.factory import create_model_from_config
    return create_model_from_config


@contextlib.contextmanager
def _quiet_sat() -> Iterator[None]:
    """SAT prints a flash-attn notice on import, its dependencies warn about deprecated APIs
    (pkg_resources, jsonschema, torch.jit), and SAT's WNConv1d uses torch's deprecated
    ``weight_norm``: none of it concerns our users."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _read_state_dict(ckpt: Path) -> dict[str, torch.Tensor]:
    """The tensors of ``ckpt``, read like SAT's ``load_ckpt_state_dict`` (weights only, CPU)."""
    try:
        if ckpt.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(ckpt))
        else:
            obj = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not usable weights"
        raise WeightsError(
            f"{ckpt}: cannot read the checkpoint ({type(exc).__name__}: {exc}). A Lightning training "
            "checkpoint must be unwrapped first (SAT's unwrap_model.py)"
        ) from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{ckpt}: holds no state dict (expected {{'state_dict': {{name: tensor}}}} or {{name: tensor}})")
    return obj


def _load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], ckpt: Path, config: Path) -> str:
    """Copy the autoencoder's tensors from ``state`` into ``model``; return the prefix they had."""
    target = model.state_dict()
    required = {k for k in target if not k.startswith("decoder.")}
    # Every prefix under which some model key appears in the checkpoint.
    prefixes = set()
    for key in state:
        cuts = [0] + [i + 1 for i, ch in enumerate(key) if ch == "."]
        prefixes.update(key[:i] for i in cuts if key[i:] in target)

    def matched(prefix: str) -> set[str]:
        return {k for k in target if prefix + k in state and tuple(state[prefix + k].shape) == tuple(target[k].shape)}

    def rank(prefix: str) -> tuple[int, int]:
        known = _KNOWN_PREFIXES.index(prefix) if prefix in _KNOWN_PREFIXES else len(_KNOWN_PREFIXES)
        return (len(matched(prefix) & required), -known)

    best = max(prefixes, key=rank, default=None)
    found = matched(best) if best is not None else set()
    if not found & required:
        sample = ", ".join(list(state)[:3])
        raise WeightsError(
            f"{ckpt}: none of its {len(state)} tensors matches a parameter of the autoencoder in {config} "
            f"(the model expects e.g. {next(iter(sorted(required)))!r}; the checkpoint has {sample}, ...). "
            f"Is it the checkpoint for this config? {_HOW_TO_GET}"
        )
    missing = sorted(required - found)
    if missing:
        raise WeightsError(
            f"{ckpt}: {len(missing)} of the {len(required)} encoder/bottleneck tensors of {config} are missing "
            f"or have another shape (prefix {best!r}; e.g. {', '.join(missing[:3])}). Is it the checkpoint for this config?"
        )
    merged = dict(target)
    merged.update({k: state[best + k] for k in found})
    model.load_state_dict(merged, strict=True)
    return best
