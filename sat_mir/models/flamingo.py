"""NVIDIA Music Flamingo (audio-language model): weights, loading once per process, batched generation.

Two Hugging Face checkpoints are known (see :data:`MODELS`):

- ``music-flamingo-2601-hf`` (default): ``MusicFlamingoForConditionalGeneration``, rotary time
  embeddings, audio up to 20 minutes;
- ``music-flamingo-hf`` (the older preview): ``AudioFlamingo3ForConditionalGeneration``, up to 10 minutes.

Both are about 8 B parameters (Qwen2.5-7B + the AF-Whisper encoder, about 17 GB in bfloat16) and
are licensed for non-commercial research only.  :func:`load_flamingo` finds the files with
:func:`~sat_mir.models.spec.locate` (the models folder, then the Hugging Face cache), picks the
model and processor classes from the folder's ``config.json`` and loads them with
``from_pretrained(folder, local_files_only=True)``: never the network.  A loaded model is kept
for the life of the process (keyed by folder, device, dtype and attention implementation), so
every item and prompt reuses it; :func:`load_count` tells how many loads happened.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sat_mir.errors import ConfigError, WeightsError
from sat_mir.models.cache import ModelCache
from sat_mir.models.device import resolve_device
from sat_mir.models.spec import ModelFile, ModelSpec, locate

__all__ = [
    "DEFAULT_MODEL",
    "DTYPES",
    "MODELS",
    "SAMPLE_RATE",
    "FlamingoModel",
    "clear_cache",
    "load_count",
    "load_flamingo",
    "locate_flamingo",
    "model_spec",
]

log = logging.getLogger("sat_mir.models.flamingo")

SAMPLE_RATE = 16000  # what the processors' Whisper feature extractor takes
DTYPES = ("auto", "bfloat16", "float16", "float32")

_LICENCE = ("NVIDIA OneWay Noncommercial License: non-commercial research use only; see the model card "
            "on huggingface.co before using the outputs")
# Sharded safetensors: the index names the shards, which _check_shards then requires.
_FILES = (ModelFile("config.json"), ModelFile("model.safetensors.index.json"), ModelFile("tokenizer_config.json"))

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="music-flamingo-2601-hf",
        folder="music-flamingo-2601-hf",
        files=_FILES,
        licence=_LICENCE,
        used_by="flamingo extractor",
        description="Music Flamingo 2601 (MusicFlamingoForConditionalGeneration, rotary time embeddings, "
                    "audio up to 20 min): text descriptions of music",
        hf_repo="nvidia/music-flamingo-2601-hf",
        commercial_use=False,
    ),
    ModelSpec(
        name="music-flamingo-hf",
        folder="music-flamingo-hf",
        files=_FILES,
        licence=_LICENCE,
        used_by="flamingo extractor",
        description="Music Flamingo preview (AudioFlamingo3ForConditionalGeneration, audio up to 10 min)",
        hf_repo="nvidia/music-flamingo-hf",
        commercial_use=False,
    ),
)
DEFAULT_MODEL = MODELS[0].name

# config.json's model_type → (model class, processor class), both in transformers >= 5.8
_CLASSES = {
    "musicflamingo": ("MusicFlamingoForConditionalGeneration", "MusicFlamingoProcessor"),
    "audioflamingo3": ("AudioFlamingo3ForConditionalGeneration", "AudioFlamingo3Processor"),
}
_ARCHITECTURES = {model: kind for kind, (model, _) in _CLASSES.items()}


def model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` called ``name``.

    Raises
    ------
    ConfigError
        No Music Flamingo model has that name.
    """
    for spec in MODELS:
        if spec.name == name:
            return spec
    raise ConfigError(f"unknown Music Flamingo model {name!r}; known: {[s.name for s in MODELS]}")


@dataclass
class FlamingoModel:
    """A loaded model with its processor.  ``device`` is a torch device string, ``dtype`` a torch dtype."""

    name: str
    folder: Path
    model: Any
    processor: Any
    device: str
    dtype: Any

    @property
    def max_audio_s(self) -> float:
        """The longest audio the processor takes (it truncates the rest), in seconds."""
        return float(self.processor.max_audio_len)

    def _inputs(self, audios: list[np.ndarray], prompts: list[str]):
        if len(audios) != len(prompts) or not audios:
            raise ValueError(f"need one prompt per audio (got {len(audios)} audios, {len(prompts)} prompts)")
        conversations = [
            [{"role": "user", "content": [{"type": "text", "text": text},
                                          {"type": "audio", "audio": np.asarray(audio, dtype=np.float32)}]}]
            for audio, text in zip(audios, prompts)
        ]
        # the processors pad on the left, as batched generation needs
        inputs = self.processor.apply_chat_template(conversations, tokenize=True, add_generation_prompt=True,
                                                    return_dict=True)
        inputs.pop("num_audio_tokens", None)
        inputs = inputs.to(self.device)
        # the features come as float32; a bfloat16 model would refuse them
        inputs["input_features"] = inputs["input_features"].to(self.dtype)
        return inputs

    def generate(self, audios: list[np.ndarray], prompts: list[str], *, max_new_tokens: int = 500,
                 do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.9) -> list[str]:
        """One answer per (audio, prompt) pair, generated in one batch.

        Parameters
        ----------
        audios : mono float32 ``[frames]`` arrays at :data:`SAMPLE_RATE` Hz, at most :attr:`max_audio_s` long.
        prompts : the user's text for each audio.
        max_new_tokens : int > 0, the most tokens generated per answer.
        do_sample : False: greedy decoding (the same input gives the same text); True: nucleus
            sampling with ``temperature`` and ``top_p`` (seed torch's RNG for repeatable runs).

        Returns
        -------
        The decoded answers (special tokens removed, not otherwise cleaned), in input order.

        Raises
        ------
        ValueError
            ``audios`` and ``prompts`` differ in length or are empty.
        """
        import torch

        inputs = self._inputs(audios, prompts)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if do_sample else {
            "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **sampling)
        new = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new, skip_special_tokens=True)

    def first_token_logits(self, audios: list[np.ndarray], prompts: list[str]) -> np.ndarray:
        """Scores of the first answer token, float32 ``[pairs, vocab]``: one forward pass, no decoding.

        What the model makes of the audio before any text is sampled; tests compare these
        between inputs because a random stand-in model's decoded words are meaningless.

        Raises
        ------
        ValueError
            ``audios`` and ``prompts`` differ in length or are empty.
        """
        import torch

        inputs = self._inputs(audios, prompts)
        with torch.inference_mode():
            logits = self.model(**inputs, logits_to_keep=1).logits[:, -1, :]
        return logits.float().cpu().numpy()


_CACHE = ModelCache()


def load_count() -> int:
    """How many times this process has loaded a Music Flamingo model from disk."""
    return _CACHE.loads


def clear_cache() -> None:
    """Forget the loaded models (frees their memory once nothing else holds them)."""
    _CACHE.clear()


def locate_flamingo(name: str = DEFAULT_MODEL, models_dir: str | Path | None = None) -> Path:
    """The folder holding every file of model ``name`` (shards included), without loading anything.

    Raises
    ------
    WeightsError
        A file is missing: the message names it and ``python -m sat_mir.models download <name>``.
    ConfigError
        No Music Flamingo model has that name.
    """
    spec = model_spec(name)
    folder = locate(spec, models_dir)
    _check_shards(folder, spec)
    return folder


def load_flamingo(name: str = DEFAULT_MODEL, *, models_dir: str | Path | None = None, device: str = "auto",
                  dtype: str = "auto", attn_implementation: str | None = "sdpa") -> FlamingoModel:
    """The model ``name`` from local files, loaded on first call and reused afterwards.

    Parameters
    ----------
    name : a name from :data:`MODELS`.
    models_dir : the models folder (None: ``SAT_MIR_MODELS`` or ``~/.cache/sat-mir/models``); the
        model's sub-folder there, else its Hugging Face cache snapshot, is loaded.
    device : "auto" (CUDA when torch sees it, else CPU), "cpu", "cuda", "cuda:1", ...
    dtype : "auto" (bfloat16 on CUDA, float32 on CPU, where bfloat16 matmuls are slow), "bfloat16",
        "float16" or "float32".
    attn_implementation : "sdpa", "eager", "flash_attention_2" (needs the flash-attn package) or
        None (transformers' choice).

    Raises
    ------
    WeightsError
        A file is missing (the message names it and ``python -m sat_mir.models download <name>``)
        or the files cannot be loaded.
    ConfigError
        Unknown model, device or dtype, or CUDA asked for but missing.
    """
    folder = locate_flamingo(name, models_dir)
    dev = _resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, dev)
    key = (str(folder.resolve()), dev, str(torch_dtype), attn_implementation)

    def load() -> FlamingoModel:
        from safetensors import SafetensorError

        from transformers.utils import logging as hf_logging

        model_cls, processor_cls = _classes_for(folder)
        # transformers draws a "Loading weights" bar of its own; ours already shows the run's progress
        hf_logging.disable_progress_bar()
        try:
            processor = processor_cls.from_pretrained(folder, local_files_only=True)
            model = model_cls.from_pretrained(folder, local_files_only=True, dtype=torch_dtype,
                                              attn_implementation=attn_implementation, device_map=dev)
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            raise WeightsError(f"Music Flamingo model {name!r} in {folder} cannot be loaded: "
                               f"{type(exc).__name__}: {exc}") from exc
        loaded = FlamingoModel(name=name, folder=folder, model=model.eval(), processor=processor, device=dev,
                               dtype=torch_dtype)
        log.info("loaded %s from %s on %s (%s, %s)", name, folder, dev, model_cls.__name__,
                 str(torch_dtype).removeprefix("torch."))
        return loaded

    return _CACHE.get_or_load(key, load)


def _check_shards(folder: Path, spec: ModelSpec) -> None:
    """``locate`` checks the index file; the shards it names must be there too."""
    index = folder / "model.safetensors.index.json"
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WeightsError(f"{index}: not a safetensors index ({type(exc).__name__}: {exc}); delete it and run  "
                           f"python -m sat_mir.models download {spec.name}") from exc
    missing = [s for s in shards if not (folder / s).is_file()]
    if missing:
        raise WeightsError(f"model {spec.name!r} is missing {folder / missing[0]}"
                           + (f" and {len(missing) - 1} more shard(s)" if len(missing) > 1 else "")
                           + f" named in {index.name}; sat-mir never downloads during a run: run  "
                             f"python -m sat_mir.models download {spec.name}  where the internet works")


def _classes_for(folder: Path):
    import transformers

    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{config_path}: unreadable ({type(exc).__name__}: {exc})") from exc
    kinds = [_ARCHITECTURES[a] for a in config.get("architectures") or [] if a in _ARCHITECTURES]
    kind = kinds[0] if kinds else config.get("model_type")
    if kind not in _CLASSES:
        raise WeightsError(f"{config_path}: architectures {config.get('architectures')} / model_type "
                           f"{config.get('model_type')!r} is not a Music Flamingo model (known: "
                           f"{sorted(_ARCHITECTURES)})")
    model_name, processor_name = _CLASSES[kind]
    if not hasattr(transformers, model_name):
        raise ConfigError(f"transformers {transformers.__version__} has no {model_name}; Music Flamingo "
                          f"needs transformers >= 5.8")
    return getattr(transformers, model_name), getattr(transformers, processor_name)


def _resolve_device(device: str) -> str:
    return str(resolve_device(device))


def _resolve_dtype(dtype: str, device: str):
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)
