"""Pre-encode audio into Stable Audio VAE latents, in the layout stable-audio-tools' ``pre_encoded`` dataset reads.

Output folder (``out_dir``)::

    <id>.npy       float32/float16 [latent_dim, sample_size // downsampling_ratio], same N for every item
    <id>.json      item metadata + seconds_start, seconds_total, padding_mask (N ints 0/1), sample_rate
    filelist.txt   "<id>.npy" per line, sorted: SAT reads it instead of scanning the folder
    details.json   the model and the shapes, checked on resume

Every file is written atomically and each ``.json`` after its ``.npy``, so an item is
complete exactly when both exist; a rerun skips complete items.  Decoding and resampling
run in DataLoader worker processes, ahead of the encoder, one decode per source file.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sat_mir.audio.decode import load_audio
from sat_mir.errors import AudioReadError, ConfigError, WeightsError
from sat_mir.fsutil import atomic_path, atomic_write_json, atomic_write_text

__all__ = ["LATENT_DTYPES", "Autoencoder", "EncodeItem", "EncodeSummary", "encode_items", "load_autoencoder"]

LATENT_DTYPES = ("float32", "float16")

_HOW_TO_GET = (
    "Stable Audio Open's VAE is the pair vae_model.ckpt + model_config.json in the Hugging Face repo "
    "stabilityai/stable-audio-open-1.0 (gated: accept its licence on huggingface.co, then "
    "`huggingface-cli login`): huggingface-cli download stabilityai/stable-audio-open-1.0 "
    "vae_model.ckpt model_config.json --local-dir models/sao  (the full model.safetensors of that repo "
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

# Sidecar keys SAT or this module owns; item metadata may not set them.
_RESERVED_KEYS = frozenset({"padding_mask", "sample_rate", "latent_filename", "audio"})
# Keys the item metadata may override (e.g. seconds_total = the whole track's length,
# the meaning SAT's own audio_dir loader gives it).
_OVERRIDABLE_INT_KEYS = ("seconds_start", "seconds_total")
# details.json fields that must agree for a resumed run to add to an existing folder.
_SHAPE_KEYS = ("sample_size", "downsampling_ratio", "latent_dim", "latent_dtype", "sample_rate", "audio_channels")


# --------------------------------------------------------------------------- model


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

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Encode ``audio`` float ``[B, audio_channels, S]`` (S a multiple of the ratio) to
        float32 CPU latents ``[B, latent_dim, S // downsampling_ratio]``.

        The result is a **sample** of the VAE posterior (mean + softplus(scale) · noise), not
        its mean: SAT's ``AudioAutoencoder.encode`` runs the ``vae`` bottleneck, which samples,
        and both SAT's pre_encode.py and its on-the-fly training path (``pretransform.encode``)
        use that; training on pre-encoded latents therefore sees the same distribution as
        training on audio.  Consequently latents are not bit-reproducible between runs.
        The pretransform ``scale`` of a diffusion config is *not* applied: SAT divides
        pre-encoded latents by it at training time.
        """
        x = audio.to(self.device, self.dtype, non_blocking=True)
        with torch.inference_mode():
            z = self.model.encode(x)
        return z.float().cpu()


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


# --------------------------------------------------------------------------- items


@dataclass(frozen=True)
class EncodeItem:
    """One training example: ``audio[start_s, start_s + duration_s)`` (seconds), encoded as ``<id>.npy``.

    ``duration_s=None`` runs to the end of the file.  ``id`` is the file stem: no dots (SAT and
    WebDataset split names at the first dot), no path separators or whitespace.  ``metadata``
    (JSON-native values only) is copied into ``<id>.json``; it may set ``seconds_start`` /
    ``seconds_total`` (non-negative ints) to override the computed ones.
    """

    id: str
    audio: Path
    start_s: float = 0.0
    duration_s: float | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError(f"item id must be a non-empty string, got {self.id!r}")
        bad = [c for c in self.id if c in "./\\" or c.isspace() or not c.isprintable()]
        if bad:
            raise ConfigError(f"item id {self.id!r} contains {bad[0]!r}; ids may not hold dots, slashes or whitespace")
        if self.id == "details":
            raise ConfigError("item id 'details' would collide with details.json")
        object.__setattr__(self, "audio", Path(self.audio))
        start = float(self.start_s)
        if not math.isfinite(start) or start < 0:
            raise ConfigError(f"item {self.id}: start_s must be a finite number >= 0, got {self.start_s!r}")
        object.__setattr__(self, "start_s", start)
        if self.duration_s is not None:
            dur = float(self.duration_s)
            if not math.isfinite(dur) or dur <= 0:
                raise ConfigError(f"item {self.id}: duration_s must be None or a finite number > 0, got {self.duration_s!r}")
            object.__setattr__(self, "duration_s", dur)
        if not isinstance(self.metadata, dict):
            raise ConfigError(f"item {self.id}: metadata must be a dict, got {type(self.metadata).__name__}")
        reserved = sorted(_RESERVED_KEYS & set(self.metadata))
        if reserved:
            raise ConfigError(f"item {self.id}: metadata may not set {reserved[0]!r} (written by the encoder or by SAT)")
        for key in _OVERRIDABLE_INT_KEYS:
            value = self.metadata.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"item {self.id}: metadata {key} must be a non-negative int, got {value!r}")
        try:
            json.dumps(self.metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"item {self.id}: metadata is not JSON-native ({exc})") from exc


@dataclass(frozen=True)
class EncodeSummary:
    """Outcome of :func:`encode_items`: counts, failures ``{id: reason}``, wall seconds and
    seconds of real (unpadded) audio encoded in this run."""

    encoded: int
    skipped: int
    failed: dict[str, str]
    seconds: float
    audio_seconds: float


class _ItemError(Exception):
    """This item cannot be cut from its (readable) file."""


def _to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """``[C, N]`` → ``[channels, N]`` the way SAT's Mono/Stereo transforms do."""
    have = x.shape[0]
    if have == channels:
        return x
    if channels == 1:
        return x.mean(axis=0, keepdims=True)
    if have == 1:
        return np.repeat(x, channels, axis=0)
    if have > channels:
        return x[:channels]
    raise _ItemError(f"has {have} channels; cannot make {channels}")


def _window(x: np.ndarray, sr: int, item: EncodeItem, sample_size: int) -> tuple[np.ndarray, int, int]:
    """Cut the item from ``x`` ``[C, N]`` and zero-pad/crop it to ``sample_size``.

    Returns (window ``[C, sample_size]`` float32, item frames before the crop, real frames in the window).
    """
    total = x.shape[-1]
    start = int(round(item.start_s * sr))
    if start >= total:
        raise _ItemError(f"starts at {item.start_s:g} s, at or after the end of the audio ({total / sr:.3f} s)")
    end = total if item.duration_s is None else min(total, start + int(round(item.duration_s * sr)))
    n_item = end - start
    if n_item <= 0:
        raise _ItemError(f"duration {item.duration_s:g} s is shorter than one sample")
    n_real = min(n_item, sample_size)
    out = np.zeros((x.shape[0], sample_size), dtype=np.float32)
    out[:, :n_real] = x[:, start : start + n_real]
    return out, n_item, n_real


class _WindowStream(torch.utils.data.IterableDataset):
    """Batches of ready-to-encode windows.  Each worker takes every k-th source file, decodes
    and resamples it once, and cuts all of that file's items from it."""

    def __init__(self, groups: list[tuple[Path, list[EncodeItem]]], *, sample_rate: int, channels: int,
                 sample_size: int, batch_size: int):
        self.groups = groups
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_size = sample_size
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        groups = self.groups if info is None else self.groups[info.id :: info.num_workers]
        ids, windows, n_items, n_reals, failed = [], [], [], [], []

        def pack() -> dict:
            audio = torch.from_numpy(np.stack(windows)) if windows else torch.zeros(0)
            return {"ids": list(ids), "audio": audio, "n_item": list(n_items), "n_real": list(n_reals), "failed": list(failed)}

        for path, items in groups:
            try:
                decoded = load_audio(path, sr=self.sample_rate)
                # SAT clamps training audio to [-1, 1]; the VAE has never seen more.
                x = np.clip(_to_channels(decoded.samples, self.channels), -1.0, 1.0)
                reason = None
            except AudioReadError as exc:
                reason = str(exc)  # "<path>: <reason>"
            except _ItemError as exc:
                reason = f"{path}: {exc}"
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the run
                reason = f"{path}: {type(exc).__name__}: {exc}"
            for item in items:
                if reason is not None:
                    failed.append((item.id, reason))
                    continue
                try:
                    window, n_item, n_real = _window(x, self.sample_rate, item, self.sample_size)
                except _ItemError as exc:
                    failed.append((item.id, f"{path}: {exc}"))
                    continue
                ids.append(item.id)
                windows.append(window)
                n_items.append(n_item)
                n_reals.append(n_real)
                if len(ids) == self.batch_size:
                    yield pack()
                    ids, windows, n_items, n_reals, failed = [], [], [], [], []
        if ids or failed:
            yield pack()


# --------------------------------------------------------------------------- encoding


def encode_items(
    items: Iterable[EncodeItem],
    ae: Autoencoder,
    out_dir: Path,
    *,
    sample_size: int,
    batch_size: int = 8,
    num_workers: int = 2,
    latent_dtype: str = "float32",
    progress: bool = True,
) -> EncodeSummary:
    """Encode every item to ``out_dir/<id>.npy`` + ``<id>.json``; see the module docstring for the layout.

    Each item is decoded, resampled to ``ae.sample_rate``, brought to ``ae.audio_channels``
    (mono duplicated, extra channels dropped), clamped to [-1, 1], cut to
    ``[start_s, start_s + duration_s)`` and zero-padded/cropped to ``sample_size`` samples
    (a multiple of ``ae.downsampling_ratio``).  Latents are VAE samples (see
    :meth:`Autoencoder.encode`), shape ``[latent_dim, N]`` with ``N = sample_size // ratio``.

    Sidecar fields: ``seconds_start`` = floor(start_s); ``seconds_total`` = ceil of the item's
    real duration in seconds (the span clipped to the end of the file, *not* capped at the
    window; item metadata may override both); ``padding_mask[i]`` = 1 when latent frame i
    starts inside real audio, the nearest-neighbour reduction SAT's pre_encode.py applies to
    its per-sample mask; ``sample_rate`` = ``ae.sample_rate``.

    ``num_workers`` decoding processes prefetch (0 = decode inline).  Items whose pair is
    already complete with the right shape are skipped; an item that cannot be read is
    recorded in ``failed`` and the run goes on.  ``details.json`` is written before encoding
    and a folder made with other shapes is refused (:class:`ConfigError`); ``filelist.txt``
    lists the complete items of ``items`` at the end.
    """
    t0 = time.perf_counter()
    items = list(items)
    out_dir = Path(out_dir)
    ratio = ae.downsampling_ratio
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size <= 0 or sample_size % ratio:
        raise ConfigError(f"sample_size must be a positive multiple of the downsampling ratio {ratio}, got {sample_size!r}")
    if batch_size < 1 or num_workers < 0:
        raise ConfigError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
    if latent_dtype not in LATENT_DTYPES:
        raise ConfigError(f"latent_dtype must be one of {LATENT_DTYPES}, got {latent_dtype!r}")
    if ".npy" in str(out_dir):
        # SAT finds the sidecar with latent_filename.replace(".npy", ".json") on the whole path.
        raise ConfigError(f"output folder {out_dir} contains '.npy' in its path, which SAT's reader mishandles")
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ConfigError(f"item id {item.id!r} occurs more than once")
        seen.add(item.id)

    n_frames = sample_size // ratio
    shape = (ae.latent_dim, n_frames)
    out_dir.mkdir(parents=True, exist_ok=True)
    details = {
        "model_config": str(ae.model_config),
        "ckpt_path": str(ae.ckpt),
        "sample_size": sample_size,
        "downsampling_ratio": ratio,
        "latent_dim": ae.latent_dim,
        "latent_frames": n_frames,
        "latent_dtype": latent_dtype,
        # VAEBottleneck: latents are posterior samples (see Autoencoder.encode)
        "bottleneck": type(ae.model.bottleneck).__name__ if ae.model.bottleneck is not None else None,
        "sample_rate": ae.sample_rate,
        "audio_channels": ae.audio_channels,
    }
    _check_details(out_dir / "details.json", details)
    # Written first, so a killed run leaves what a resume checks against.
    atomic_write_json(out_dir / "details.json", details)

    todo = []
    for item in items:
        if _complete(out_dir, item.id, shape, latent_dtype):
            continue
        # A half-written or stale pair must not survive a failure of the redo.
        for suffix in (".json", ".npy"):
            with contextlib.suppress(FileNotFoundError):
                (out_dir / f"{item.id}{suffix}").unlink()
        todo.append(item)
    skipped = len(items) - len(todo)

    by_id = {item.id: item for item in todo}
    groups: dict[Path, list[EncodeItem]] = {}
    for item in todo:
        groups.setdefault(item.audio, []).append(item)
    stream = _WindowStream(list(groups.items()), sample_rate=ae.sample_rate, channels=ae.audio_channels,
                           sample_size=sample_size, batch_size=batch_size)
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=num_workers,
        pin_memory=ae.device.type == "cuda", prefetch_factor=2 if num_workers else None,
    )

    encoded, audio_seconds, failed = 0, 0.0, {}
    np_dtype = np.dtype(latent_dtype)
    bar = tqdm(total=len(items), initial=skipped, unit="item", desc="encode latents",
               disable=not progress or not items, dynamic_ncols=True)
    # Writes (two fsyncs per file) run on threads so the encoder never waits on the disk.
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="sat-mir-latents") as writer:
        pending: list[Future] = []
        try:
            for batch in loader if todo else ():
                for item_id, reason in batch["failed"]:
                    failed[item_id] = reason
                bar.update(len(batch["failed"]))
                if not batch["ids"]:
                    continue
                z = ae.encode(batch["audio"])
                if tuple(z.shape[1:]) != shape:
                    raise ConfigError(
                        f"the encoder of {ae.model_config} made latents {tuple(z.shape[1:])} from {sample_size} samples, "
                        f"expected {shape}"
                    )
                lat = z.numpy().astype(np_dtype)
                for i, item_id in enumerate(batch["ids"]):
                    if not np.isfinite(lat[i]).all():
                        failed[item_id] = f"the encoder produced non-finite latents (as {latent_dtype})"
                        continue
                    n_item, n_real = batch["n_item"][i], batch["n_real"][i]
                    sidecar = _sidecar(by_id[item_id], n_item, n_real, ae.sample_rate, ratio, n_frames)
                    pending.append(writer.submit(_write_pair, out_dir, item_id, np.ascontiguousarray(lat[i]), sidecar))
                    encoded += 1
                    audio_seconds += n_real / ae.sample_rate
                bar.update(len(batch["ids"]))
                pending = _reap(pending, limit=4 * batch_size)
            _reap(pending, limit=0)
        finally:
            bar.close()

    present = sorted(f"{it.id}.npy" for it in items
                     if (out_dir / f"{it.id}.npy").is_file() and (out_dir / f"{it.id}.json").is_file())
    atomic_write_text(out_dir / "filelist.txt", "".join(f"{name}\n" for name in present))
    return EncodeSummary(encoded=encoded, skipped=skipped, failed=failed,
                         seconds=time.perf_counter() - t0, audio_seconds=audio_seconds)


def _sidecar(item: EncodeItem, n_item: int, n_real: int, sr: int, ratio: int, n_frames: int) -> dict:
    real_frames = -(-n_real // ratio)
    md: dict[str, Any] = dict(item.metadata)
    md.setdefault("seconds_start", int(math.floor(item.start_s)))
    md.setdefault("seconds_total", int(-(-n_item // sr)))
    md["padding_mask"] = [1] * real_frames + [0] * (n_frames - real_frames)
    md["sample_rate"] = int(sr)
    return md


def _write_pair(out_dir: Path, item_id: str, latent: np.ndarray, sidecar: dict) -> None:
    with atomic_path(out_dir / f"{item_id}.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, latent)  # a file object: np.save would append ".npy" to the temp name
    # Compact: the padding mask alone is N numbers.  The .json goes last: it marks the pair complete.
    atomic_write_text(out_dir / f"{item_id}.json",
                      json.dumps(sidecar, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n")


def _reap(pending: list[Future], *, limit: int) -> list[Future]:
    """Re-raise write errors as they happen and keep at most ``limit`` writes in flight."""
    while len(pending) > limit:
        pending.pop(0).result()
    still = []
    for fut in pending:
        if fut.done():
            fut.result()
        else:
            still.append(fut)
    return still


def _complete(out_dir: Path, item_id: str, shape: tuple[int, int], dtype: str) -> bool:
    npy, sidecar = out_dir / f"{item_id}.npy", out_dir / f"{item_id}.json"
    if not (npy.is_file() and sidecar.is_file()):
        return False
    try:
        arr = np.load(npy, mmap_mode="r")  # header only; the data stays on disk
    except (OSError, ValueError):
        return False
    return tuple(arr.shape) == shape and arr.dtype == np.dtype(dtype)


def _check_details(path: Path, details: dict) -> None:
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); delete it or use another output folder") from exc
    for key in _SHAPE_KEYS:
        if key in old and old[key] != details[key]:
            raise ConfigError(
                f"{path.parent} holds latents made with {key}={old[key]!r}, this run has {details[key]!r}; "
                "use another output folder or empty this one"
            )
