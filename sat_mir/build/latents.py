"""Pre-encode audio into Stable Audio VAE latents, in the layout stable-audio-tools' ``pre_encoded`` dataset reads.

Output folder (``out_dir``)::

    <id>.npy       float32/float16 [latent_dim, sample_size // downsampling_ratio], same N for every item
    <id>.json      item metadata + seconds_start, seconds_total, padding_mask (N ints 0/1), sample_rate
    filelist.txt   "<id>.npy" per line, sorted: SAT reads it instead of scanning the folder
    details.json   the model, its checkpoint's sha256, the sampling rule and the shapes, checked on resume

An item's latent is a VAE posterior sample whose noise is seeded by its id (:func:`item_seed`),
so a build interrupted and resumed, or run twice, writes the same bytes; another checkpoint
or sampling rule encodes every item again, other shapes are refused.

Every file is written atomically and each ``.json`` after its ``.npy``, so an item is
complete exactly when both exist; a rerun skips complete items.  Decoding and resampling
run in DataLoader worker processes, ahead of the encoder, one decode per source file.

Size: about 440 lines, kept in one module because the decode stream, the batched encoder and
the resume rule (details.json, item seeds, completeness) are one contract; split apart, a
change to one would silently break a resumed build's byte-identity with the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sat_mir.audio.channels import fit_channels
from sat_mir.audio.decode import load_audio
from sat_mir.build.autoencoder import Autoencoder, load_autoencoder
from sat_mir.audio.headroom import fit_full_scale
from sat_mir.errors import AudioRangeError, AudioReadError, ConfigError
from sat_mir.fsutil import atomic_path, atomic_write_json, atomic_write_text

__all__ = ["LATENT_DTYPES", "Autoencoder", "EncodeItem", "EncodeSummary", "encode_items", "item_seed",
           "load_autoencoder", "write_filelist"]

log = logging.getLogger(__name__)

LATENT_DTYPES = ("float32", "float16")

# Sidecar keys SAT or this module owns; item metadata may not set them.
_RESERVED_KEYS = frozenset({"padding_mask", "sample_rate", "latent_filename", "audio"})
# Keys the item metadata may override (e.g. seconds_total = the whole track's length,
# the meaning SAT's own audio_dir loader gives it).
_OVERRIDABLE_INT_KEYS = ("seconds_start", "seconds_total")
# details.json fields that must agree for a resumed run to add to an existing folder.
# details.json fields that, when changed, make every latent in the folder stale.
_SOURCE_KEYS = ("ckpt_sha256", "sampling")
_SHAPE_KEYS = ("sample_size", "downsampling_ratio", "latent_dim", "latent_dtype", "sample_rate", "audio_channels")


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
    left_out: dict[str, str] = field(default_factory=dict)  # over full scale under peak_policy=reject


class _ItemError(Exception):
    """This item cannot be cut from its (readable) file."""


def _fit(x: np.ndarray, channels: int) -> np.ndarray:
    try:
        return fit_channels(x, channels)
    except ValueError as exc:
        raise _ItemError(str(exc)) from exc


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
                 sample_size: int, batch_size: int, peak_policy: str = "normalize"):
        self.groups = groups
        self.peak_policy = peak_policy
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_size = sample_size
        self.batch_size = batch_size

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        groups = self.groups if info is None else self.groups[info.id :: info.num_workers]
        ids, windows, n_items, n_reals, gains, failed, left_out = [], [], [], [], [], [], []

        def pack() -> dict:
            audio = torch.from_numpy(np.stack(windows)) if windows else torch.zeros(0)
            return {"ids": list(ids), "audio": audio, "n_item": list(n_items), "n_real": list(n_reals),
                    "gain_db": list(gains), "failed": list(failed), "left_out": list(left_out)}

        for path, items in groups:
            try:
                decoded = load_audio(path, sr=self.sample_rate)
                # SAT clamps training audio to [-1, 1]; the VAE has never seen more.
                fitted, headroom = fit_full_scale({"x": _fit(decoded.samples, self.channels)}, self.peak_policy)
                x, reason = fitted["x"], None
                if headroom.changed:
                    log.warning("%s: %s (peak_policy=%s)", path, headroom.describe(), self.peak_policy)
            except AudioRangeError as exc:
                left_out.extend((item.id, f"{path}: {exc}") for item in items)
                continue
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
                gains.append(headroom.gain_db)
                windows.append(window)
                n_items.append(n_item)
                n_reals.append(n_real)
                if len(ids) == self.batch_size:
                    yield pack()
                    ids, windows, n_items, n_reals, gains, failed, left_out = [], [], [], [], [], [], []
        if ids or failed or left_out:
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
    peak_policy: str = "normalize",
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
        "sampling": ae.sampling,
        "ckpt_sha256": ae.ckpt_sha256,
        "sample_rate": ae.sample_rate,
        "audio_channels": ae.audio_channels,
    }
    if _check_details(out_dir / "details.json", details):
        # Removed before details.json changes, so a run killed meanwhile still sees them as stale.
        stale = [p for p in out_dir.iterdir() if p.suffix in (".npy", ".json") and p.name != "details.json"]
        log.info("%s: %d latents were made with another checkpoint or sampling rule; encoding them again",
                 out_dir, sum(p.suffix == ".npy" for p in stale))
        for p in stale:
            p.unlink(missing_ok=True)
    # Written first, so a killed run leaves what a resume checks against.
    atomic_write_json(out_dir / "details.json", details)

    todo = []
    for item in items:
        if _complete(out_dir, item.id, shape, latent_dtype, item.audio):
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
                           sample_size=sample_size, batch_size=batch_size, peak_policy=peak_policy)
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=num_workers,
        pin_memory=ae.device.type == "cuda", prefetch_factor=2 if num_workers else None,
    )

    encoded, audio_seconds, failed, left_out = 0, 0.0, {}, {}
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
                for item_id, reason in batch["left_out"]:
                    left_out[item_id] = reason
                bar.update(len(batch["failed"]) + len(batch["left_out"]))
                if not batch["ids"]:
                    continue
                audio, n = batch["audio"], len(batch["ids"])
                if n < batch_size:
                    # Always full batches: CPU kernels round a batch of one differently from a
                    # larger one, and a resumed run's batches hold other items than the first run's.
                    audio = torch.cat([audio, audio.new_zeros((batch_size - n, *audio.shape[1:]))])
                seeds = [item_seed(i) for i in batch["ids"]] + [0] * (batch_size - n)
                z = ae.encode(audio, seeds=seeds)[:n]
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
                    sidecar = _sidecar(by_id[item_id], n_item, n_real, ae.sample_rate, ratio, n_frames,
                                       batch["gain_db"][i])
                    pending.append(writer.submit(_write_pair, out_dir, item_id, np.ascontiguousarray(lat[i]), sidecar))
                    encoded += 1
                    audio_seconds += n_real / ae.sample_rate
                bar.update(len(batch["ids"]))
                pending = _reap(pending, limit=4 * batch_size)
            _reap(pending, limit=0)
        finally:
            bar.close()

    write_filelist(out_dir, items)
    return EncodeSummary(encoded=encoded, skipped=skipped, failed=failed,
                         seconds=time.perf_counter() - t0, audio_seconds=audio_seconds, left_out=left_out)


def write_filelist(out_dir: Path, items: Iterable[EncodeItem]) -> None:
    """``filelist.txt``: the latents of ``items`` whose pair is complete, sorted."""
    present = sorted(f"{it.id}.npy" for it in items
                     if (out_dir / f"{it.id}.npy").is_file() and (out_dir / f"{it.id}.json").is_file())
    atomic_write_text(out_dir / "filelist.txt", "".join(f"{name}\n" for name in present))


def _sidecar(item: EncodeItem, n_item: int, n_real: int, sr: int, ratio: int, n_frames: int,
             gain_db: float = 0.0) -> dict:
    real_frames = -(-n_real // ratio)
    md: dict[str, Any] = dict(item.metadata)
    # every item has it (SAT collates metadata across a batch): gains already in the item's audio + ours
    md["gain_db"] = round(float(md.get("gain_db", 0.0)) + gain_db, 4)
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


def _complete(out_dir: Path, item_id: str, shape: tuple[int, int], dtype: str, source: Path | None = None) -> bool:
    npy, sidecar = out_dir / f"{item_id}.npy", out_dir / f"{item_id}.json"
    if not (npy.is_file() and sidecar.is_file()):
        return False
    # an item id outlives its audio (a re-cut crop keeps <track>_000): older than the audio = stale
    if source is not None and source.is_file() and npy.stat().st_mtime_ns < source.stat().st_mtime_ns:
        return False
    try:
        arr = np.load(npy, mmap_mode="r")  # header only; the data stays on disk
    except (OSError, ValueError):
        return False
    return tuple(arr.shape) == shape and arr.dtype == np.dtype(dtype)


def item_seed(item_id: str) -> int:
    """The noise seed of an item's latent: the first 8 bytes of sha256(id), so a resumed or
    repeated build draws every item's latent exactly as the first build did."""
    return int.from_bytes(hashlib.sha256(item_id.encode("utf-8")).digest()[:8], "little") & (2**63 - 1)


def _check_details(path: Path, details: dict) -> bool:
    """Refuse a folder of other shapes; True when its latents came from another checkpoint or
    sampling rule (every item is then encoded again)."""
    if not path.exists():
        return False
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
    return any(old.get(key) != details[key] for key in _SOURCE_KEYS)
