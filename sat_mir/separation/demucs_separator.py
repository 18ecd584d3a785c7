"""Stem separation with Demucs v4 (HTDemucs) in process, and atomic stem writers.

``load_separator`` loads a model from local files only and never downloads: a Demucs
local repository folder (``models_dir``: ``<sig>-<sha>.th`` files plus bag ``<name>.yaml``
files, read by ``demucs.pretrained.get_model(name, repo=models_dir)``), or, without
``models_dir``, the caches ``get_model`` fills where the internet works: the Hugging Face
cache (demucs 4.1 fetches ``adefossez/HTDemucs*`` there first) and the torch hub cache
(``$TORCH_HOME/hub/checkpoints``, demucs 4.0 and 4.1's fallback).  Missing weights raise
:class:`~sat_mir.errors.WeightsError` before any network access.

``DemucsSeparator.separate`` returns the model's stems at the input's rate and length
without peak normalisation, so the stems add up to what the model reconstructs of the mix.
``write_stems`` writes them as ``<stem>.<ext>`` files with one explicit clip policy.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch
import yaml
from demucs.apply import BagOfModels
from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name, load_safetensors_model
from demucs.htdemucs import HTDemucs
from demucs.pretrained import REMOTE_ROOT, _parse_remote_files, get_model
from demucs.repo import AnyModelRepo, BagOnlyRepo, LocalRepo, ModelLoadingError

from sat_mir.audio.resample import resample
from sat_mir.errors import ConfigError, WeightsError
from sat_mir.fsutil import sha256_file
from sat_mir.separation.chunked import apply_batched
from sat_mir.models.device import resolve_device

__all__ = ["EXTRA_STEMS", "STEMS", "DemucsSeparator", "load_separator"]

STEMS = ("drums", "bass", "other", "vocals")
# htdemucs_6s' extra sources; like any source outside STEMS they are added into "other"
# unless the separator keeps them.
EXTRA_STEMS = ("guitar", "piano")

# --------------------------------------------------------------------------- separator


class DemucsSeparator:
    """A loaded Demucs model plus the settings ``apply_model`` runs it with.

    Parameters
    ----------
    model : ``HTDemucs``/``HDemucs``/``Demucs`` or ``BagOfModels`` (what ``get_model`` returns);
        it is moved to ``device`` and put in eval mode.
    name : label used in messages.
    device : "cpu", "cuda", "cuda:1", ...; None picks CUDA when available, else CPU.
    segment : float > 0 or None, seconds per chunk; None uses the model's own (7.8 s for the
        released HTDemucs models).  Transformer models cannot take more than they were trained on.
    overlap : float in [0, 1), fraction of a chunk shared with the next one.
    shifts : int >= 0, random time shifts averaged (each costs one more pass; they use
        Python's global ``random`` state, as in demucs).
    keep_extra : keep sources outside ``STEMS`` (htdemucs_6s' guitar and piano) as stems of
        their own instead of adding them into "other".
    batch_segments : int >= 1, segments per forward pass (see :mod:`sat_mir.separation.chunked`;
        the result does not depend on it, only speed and memory do); None = 8 on a GPU, 1 on
        the CPU.

    Raises
    ------
    ConfigError
        A setting is out of range, CUDA was asked for but is missing, or the model lacks
        one of ``STEMS``.
    """

    def __init__(self, model: torch.nn.Module, *, name: str, device: str | None = None,
                 segment: float | None = None, overlap: float = 0.25, shifts: int = 0,
                 keep_extra: bool = False, batch_segments: int | None = None):
        missing = [s for s in STEMS if s not in model.sources]
        if missing:
            raise ConfigError(f"Demucs model {name!r} has sources {list(model.sources)}; "
                              f"separation needs {list(STEMS)} (missing {missing})")
        if not 0.0 <= overlap < 1.0:
            raise ConfigError(f"overlap must be in [0, 1), got {overlap!r}")
        if isinstance(shifts, bool) or not isinstance(shifts, int) or shifts < 0:
            raise ConfigError(f"shifts must be an int >= 0, got {shifts!r}")
        if batch_segments is not None and (isinstance(batch_segments, bool) or not isinstance(batch_segments, int)
                                           or batch_segments < 1):
            raise ConfigError(f"batch_segments must be an int >= 1 or None, got {batch_segments!r}")
        if segment is not None:
            max_segment = _max_segment(model)
            if not 0.0 < segment <= max_segment:
                raise ConfigError(f"segment must be in (0, {max_segment:g}] s for Demucs model {name!r} "
                                  f"(a transformer model cannot take longer chunks than it was trained on), "
                                  f"got {segment!r}")
        self.device = _resolve_device(device)
        self.model = model.to(self.device).eval()
        self.name = name
        self.segment = None if segment is None else float(segment)
        self.overlap = float(overlap)
        self.shifts = shifts
        self.keep_extra = keep_extra
        # None: 8 on a GPU, 1 on the CPU, where stacking segments measured 0.7-0.8x the speed of
        # one at a time (tools/bench_separation.py, full-size and tiny HTDemucs, 2 threads)
        self.batch_segments = batch_segments or (8 if self.device.startswith("cuda") else 1)

    @property
    def samplerate(self) -> int:
        """The model's rate in Hz (44100 for every released v4 model)."""
        return int(self.model.samplerate)

    @property
    def audio_channels(self) -> int:
        return int(self.model.audio_channels)

    @property
    def stems(self) -> tuple[str, ...]:
        """Names of the stems ``separate`` returns, in order."""
        if self.keep_extra:
            return tuple(self.model.sources)
        return STEMS

    def separate(self, audio: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Split ``audio`` into stems.

        Parameters
        ----------
        audio : float ``[channels, frames]`` (or ``[frames]``, mono) at ``sr`` Hz; mono is
            duplicated to the model's channels.  Not modified.
        sr : int > 0, Hz.

        Returns
        -------
        ``{stem: float32 [model channels, frames]}`` at ``sr`` with the input's frame count,
        keys in ``self.stems`` order.  The input is resampled to the model's rate and the
        stems back with libsoxr (VHQ).  Levels are the model's: no peak normalisation, so
        the stems sum to the model's reconstruction of the mix and may exceed ±1.

        Raises
        ------
        ValueError
            ``audio`` is empty, non-finite, or has a channel count the model cannot take.
        """
        x = self._model_input(audio, sr)
        frames = x.shape[-1]
        if sr != self.samplerate:
            x = resample(x, sr_in=sr, sr_out=self.samplerate)
        wav = torch.from_numpy(x)
        # Whole-track statistics, as demucs' own separator uses, so every chunk sees the
        # same scaling.  The mean (DC) is shared equally between the sources: demucs adds
        # it to every stem, which would put (S - 1) * mean of extra DC into their sum.
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        out = apply_batched(self.model, ((wav - mean) / std)[None], shifts=self.shifts, overlap=self.overlap,
                            segment=self.segment, batch=self.batch_segments, device=self.device)[0]
        out = out * std + mean / len(self.model.sources)
        stems = {src: out[i] for i, src in enumerate(self.model.sources)}
        if not self.keep_extra:
            for src in [s for s in self.model.sources if s not in STEMS]:
                stems["other"] = stems["other"] + stems.pop(src)
        y = torch.stack([stems[s] for s in self.stems]).cpu().numpy().astype(np.float32, copy=False)
        if sr != self.samplerate:
            y = resample(y, sr_in=self.samplerate, sr_out=sr)
        y = _fit_length(y, frames)
        return {s: np.ascontiguousarray(y[i]) for i, s in enumerate(self.stems)}

    def _model_input(self, audio: np.ndarray, sr: int) -> np.ndarray:
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
            raise ValueError(f"sr must be a positive int (Hz), got {sr!r}")
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[-1] == 0:
            raise ValueError(f"audio must be [channels, frames] with frames > 0, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("audio contains NaN or infinity")
        if x.shape[0] == 1 and self.audio_channels > 1:
            x = np.repeat(x, self.audio_channels, axis=0)
        if x.shape[0] != self.audio_channels:
            raise ValueError(f"Demucs model {self.name!r} takes 1 or {self.audio_channels} channels, "
                             f"got {x.shape[0]}")
        return x


def _max_segment(model: torch.nn.Module) -> float:
    if isinstance(model, BagOfModels):
        return model.max_allowed_segment
    if isinstance(model, HTDemucs):
        return float(model.segment)
    return float("inf")


def _resolve_device(device: str | None) -> str:
    return str(resolve_device(device))


def _fit_length(y: np.ndarray, frames: int) -> np.ndarray:
    """Trim or zero-pad the last axis to ``frames`` (resampling may be a frame off)."""
    if y.shape[-1] >= frames:
        return y[..., :frames]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, frames - y.shape[-1])])


# --------------------------------------------------------------------------- loading


def load_separator(model: str = "htdemucs", *, models_dir: Path | None = None, device: str | None = None,
                   segment: float | None = None, overlap: float = 0.25, shifts: int = 0,
                   keep_extra: bool = False, batch_segments: int | None = None) -> DemucsSeparator:
    """Load Demucs model ``model`` from local files and wrap it in a :class:`DemucsSeparator`.

    Parameters
    ----------
    model : a bag name (``htdemucs``, ``htdemucs_ft``, ``htdemucs_6s``, or any ``<name>.yaml``
        in ``models_dir``) or a single model's signature.
    models_dir : a Demucs local repository folder; loaded with
        ``demucs.pretrained.get_model(model, repo=models_dir)``, which verifies each
        ``<sig>-<sha>.th`` against its checksum.  None reads the Hugging Face and torch hub
        caches instead (see the module docstring).
    device, segment, overlap, shifts, keep_extra, batch_segments : see :class:`DemucsSeparator`.

    Raises
    ------
    WeightsError
        The model's files are not there, fail their checksum or cannot be read; the
        message names the model, the files looked for and how to fetch them.
    ConfigError
        A setting is invalid (checked after loading, since limits depend on the model).
    """
    if not isinstance(model, str) or not _MODEL_NAME.fullmatch(model):
        raise ConfigError(f"model must be a Demucs model name or signature such as 'htdemucs' "
                          f"(hf:// and namespace/ names need the network), got {model!r}")
    if models_dir is not None:
        net = _load_local_repo(model, Path(models_dir))
    else:
        net = _load_from_caches(model)
    return DemucsSeparator(net, name=model, device=device, segment=segment, overlap=overlap,
                           shifts=shifts, keep_extra=keep_extra, batch_segments=batch_segments)


_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

# What demucs' loaders raise for a file that is missing, damaged or inconsistent: its own
# ModelLoadingError (a RuntimeError, like torch.load's and load_state_dict's errors), pickle
# and EOF errors from truncated files, YAML errors, KeyError for a bag without "models",
# and AssertionError from BagOfModels' consistency checks.
_LOAD_ERRORS = (RuntimeError, EOFError, pickle.UnpicklingError, yaml.YAMLError, KeyError, AssertionError)


def _load_local_repo(name: str, models_dir: Path) -> torch.nn.Module:
    # get_model() calls sys.exit() when the folder is missing, so check it here first.
    if not models_dir.is_dir():
        raise WeightsError(f"Demucs models folder {models_dir} does not exist or is not a folder "
                           f"(looking for model {name!r})")
    try:
        return get_model(name, repo=models_dir)
    except ModelLoadingError as exc:
        held = sorted(p.name for p in models_dir.iterdir() if p.suffix in (".th", ".yaml"))
        raise WeightsError(f"Demucs model {name!r} cannot be loaded from {models_dir}: {exc} "
                           f"(the folder holds {held or 'no .th or .yaml files'}). A local repository "
                           f"needs <name>.yaml (e.g. copied from demucs/remote/) and every "
                           f"<signature>-<checksum>.th it lists.") from exc
    except _LOAD_ERRORS as exc:
        raise WeightsError(f"Demucs model {name!r} in {models_dir} cannot be read: "
                           f"{type(exc).__name__}: {exc}") from exc


def _load_from_caches(name: str) -> torch.nn.Module:
    """The Hugging Face cache first (demucs 4.1's order), then the torch hub cache; never the network."""
    hf_repo, hf_files = _hf_cached_files(name)
    try:
        if hf_files is not None:
            yaml_path, model_paths = hf_files
            for path in model_paths:
                _check_hf_blob(path)
            bag = yaml.safe_load(yaml_path.read_text())
            models = [load_safetensors_model(p) for p in model_paths]
            return BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()
        hub_files = _torch_hub_files(name)
        if hub_files and all(p.is_file() for p in hub_files):
            model_repo = LocalRepo(hub_files[0].parent)  # verifies each file's sha256 prefix
            return AnyModelRepo(model_repo, BagOnlyRepo(REMOTE_ROOT, model_repo)).get_model(name).eval()
    except _LOAD_ERRORS + (OSError,) as exc:
        raise WeightsError(f"Demucs model {name!r} found in a local cache but cannot be loaded: "
                           f"{type(exc).__name__}: {exc}") from exc
    raise WeightsError(_missing_message(name, hf_repo, _torch_hub_files(name)))


def _hf_cached_files(name: str) -> tuple[str, tuple[Path, list[Path]] | None]:
    """(HF repo id, (bag yaml, model files) when all are in the HF cache, else None)."""
    from huggingface_hub import try_to_load_from_cache

    repo_id = f"{DEFAULT_NAMESPACE}/{hf_repo_name(name)}"
    found = try_to_load_from_cache(repo_id, f"{name}.yaml")
    if not isinstance(found, str):
        return repo_id, None
    yaml_path = Path(found)
    try:
        sigs = yaml.safe_load(yaml_path.read_text())["models"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise WeightsError(f"{yaml_path}: not a Demucs bag file ({type(exc).__name__}: {exc})") from exc
    paths = [try_to_load_from_cache(repo_id, f"{sig}.safetensors") for sig in sigs]
    if not all(isinstance(p, str) for p in paths):
        return repo_id, None
    return repo_id, (yaml_path, [Path(p) for p in paths])


def _check_hf_blob(path: Path) -> None:
    """The HF cache names a large (LFS) file's blob after its sha256; demucs' HF loader does
    not check it, so a cut-off or damaged copy is caught here."""
    blob = path.resolve()
    if not re.fullmatch(r"[0-9a-f]{64}", blob.name):
        return  # a small (git) file is named by its git hash: nothing to compare with
    digest = sha256_file(blob)
    if digest != blob.name:
        raise WeightsError(f"{path} (blob {blob}) fails its checksum: sha256 {digest}, expected "
                           f"{blob.name}; delete it and fetch the model again")


def _torch_hub_files(name: str) -> list[Path]:
    """Where torch hub keeps the model's ``<sig>-<sha>.th`` files; [] when demucs does not know the name."""
    urls = _parse_remote_files(REMOTE_ROOT / "files.txt")  # {sig: url}
    bag_file = REMOTE_ROOT / f"{name}.yaml"
    if bag_file.is_file():
        sigs = yaml.safe_load(bag_file.read_text())["models"]
    elif name in urls:
        sigs = [name]
    else:
        return []
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    return [checkpoints / urls[sig].rsplit("/", 1)[-1] for sig in sigs if sig in urls]


def _missing_message(name: str, hf_repo: str, hub_files: list[Path]) -> str:
    from huggingface_hub import constants

    hub = (f"{', '.join(p.name for p in hub_files)} in the torch hub cache {hub_files[0].parent}"
           if hub_files else f"nothing in the torch hub cache: demucs' remote list has no model {name!r}")
    return (
        f"Demucs model {name!r} is not available locally, and sat-mir never downloads weights. "
        f"Looked for {name}.yaml and its .safetensors files in the Hugging Face cache "
        f"{constants.HF_HUB_CACHE} (repo {hf_repo}), and for {hub}. "
        f"Where the internet works, run  python -c \"from demucs.pretrained import get_model; "
        f"get_model('{name}')\"  with the same HF_HOME (demucs 4.1 stores the model in the Hugging Face "
        f"cache; demucs 4.0 in $TORCH_HOME/hub/checkpoints) and copy that cache here; or put the "
        f"<signature>-<checksum>.th files from https://dl.fbaipublicfiles.com/demucs/ plus {name}.yaml "
        f"from demucs/remote/ in one folder and pass models_dir=<that folder>. Simplest: "
        f"python -m sat_mir.models download {'demucs' if name == 'htdemucs' else 'demucs-' + name}  "
        f"(writes that folder as <models folder>/demucs, which extract reads)."
    )
