"""Text descriptions of the mix by NVIDIA Music Flamingo (an audio-language model).

One answer per prompt type and track, ``flamingo_<prompt>``: ``full`` (genre, tempo, key,
instruments, production, mood), ``technical``, ``genre_mood``, ``instrumentation`` and
``structure``.  The prompt texts live in the config; they may hold template fields filled from
values already measured for the track (``{bpm}``, ``{key}``, ``{essentia_genre}``, any sidecar
key, with an optional format spec such as ``{bpm:.0f}``) and ``{hints}``, the configured hint
sentences whose values all exist.  A prompt whose own field has no value is left out for
that track (an ``absent`` entry says which value was missing); a hint without its value is
dropped silently.

The model runs on the mix at 16 kHz mono (the array is passed, never a path), truncated to the
model's limit (20 min for 2601, 10 min for the preview).  Every (track, prompt) pair of a batch
goes through ``generate`` together, with left padding.  Answers are normalised (NFKC, dashes and
quotes to ASCII, whitespace collapsed).  Because an 8 B model is slow, ``probability`` describes
only a deterministic sample of the tracks (by track id and ``seed``); the others get ``absent``
entries saying so.

Greedy decoding is the default, so a track gets the same text on every run; the seed's
``llama-mtmd-cli`` runs sampled (temperature 0.7, top-p 0.9), which ``do_sample`` restores.
The licence of both checkpoints forbids commercial use.
"""

from __future__ import annotations

import hashlib
import math
import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ConfigError, ExtractorError
from sat_mir.extras import require
from sat_mir.features.registry import ExtractorResult, ModelExtractor, OutputSpec, register

__all__ = ["DEFAULT_HINTS", "DEFAULT_PROMPTS", "PROMPT_TYPES", "Flamingo", "fill_template", "normalize_text"]

# The seed's five prompt types (notes §5.4), reworded; the word limits are the seed's.
DEFAULT_PROMPTS: dict[str, str] = {
    "full": "{hints} Describe this track in full detail: first its genre, tempo and key, then the "
            "instruments, the production style and techniques, the construction of the piece and the "
            "mood it creates. Be professional and precise, use no filler words and do not describe "
            "anything you cannot hear.",
    "technical": "{hints} As a music critic, describe the tempo, key and chordal motion of this track, "
                 "then its textures, dynamics and production, in under 20 words.",
    "genre_mood": "{hints} Write a prompt for a music generator that names the genre, subgenre and "
                  "emotional character of this track, in under 30 words.",
    "instrumentation": "Describe the timbre of this track and name the instruments you recognise, "
                       "in under 15 words.",
    "structure": "Describe the structure of this track: its sections, the transitions between them and "
                 "how the energy develops over time.",
}
PROMPT_TYPES: tuple[str, ...] = tuple(DEFAULT_PROMPTS)

# Each sentence joins {hints} only when every value it names exists for the track.
DEFAULT_HINTS: tuple[str, ...] = (
    "Measured tempo: {bpm:.0f} BPM.",
    "Estimated key: {key}.",
    "A genre classifier gives (independent probabilities, 0-1): {essentia_genre}.",
)

_PUNCT = str.maketrans({
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2212\u2043\ufe63\uff0d", "-"),
    "\u2014": "--", "\u2015": "--",
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4\u0060", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
    "\u2026": "...", "\ufffd": None, "\u200b": None, "\ufeff": None,
})
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC, typographic dashes/quotes/ellipsis to ASCII, stray replacement characters removed,
    every run of whitespace (newlines included) to one space, ends stripped."""
    text = unicodedata.normalize("NFKC", text)
    # after NFKC, since NFKC turns the non-breaking hyphen U+2011 into U+2010
    return _SPACE.sub(" ", text.translate(_PUNCT)).strip()


def _format_value(value: Any, spec: str, top_k: int) -> str | None:
    """A sidecar value as prompt text; None when there is no usable value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, Mapping):  # tags: label → probability, highest first
        items = sorted(value.items(), key=lambda kv: -float(kv[1]))[:top_k]
        if not items:
            return None
        return ", ".join(f"{str(label).replace('---', ' - ')} ({float(p):.2f})" for label, p in items)
    if spec:
        return format(value, spec)
    if isinstance(value, float):
        return format(value, ".4g")
    return str(value)


def _fields(template: str) -> list[str]:
    """Field names of ``template``; ConfigError for bad syntax or attribute/index access."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"prompt template {template!r}: {exc} (write {{{{ and }}}} for literal braces)") from exc
    names = []
    for _, name, _, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or conversion:
            raise ConfigError(f"prompt template {template!r}: field {{{name}}} must be a plain feature key "
                              f"such as {{bpm}} or {{bpm:.0f}}")
        names.append(name)
    return names


def fill_template(template: str, values: Mapping[str, Any], *, hints: str = "", top_k: int = 5) -> tuple[str, list[str]]:
    """(filled text, names of fields without a value).

    ``{hints}`` takes ``hints``; any other ``{name[:spec]}`` takes ``values[name]`` formatted by
    its spec (floats default to 4 significant digits, tag dicts to their ``top_k`` labels with
    probabilities).  Whitespace is collapsed, so an empty ``{hints}`` leaves no gap.
    """
    out, missing = [], []
    for literal, name, spec, _ in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name == "hints":
            out.append(hints)
            continue
        try:
            text = _format_value(values.get(name), spec, top_k)
        except (ValueError, TypeError):  # a format spec that does not fit the value's type
            text = None
        if text is None:
            missing.append(name)
        else:
            out.append(text)
    return _SPACE.sub(" ", "".join(out)).strip(), missing


def _sampled(track_id: str, seed: int, probability: float) -> bool:
    if probability >= 1.0:
        return True
    if probability <= 0.0:
        return False
    digest = hashlib.sha256(f"{seed}\0{track_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < probability


@register
class Flamingo(ModelExtractor):
    name = "flamingo"
    version = "1"
    signals = ("mix",)
    outputs = tuple(
        # a description of the song's course (its structure) is not true of a crop of it
        OutputSpec(f"flamingo_{p}", "text", f"Music Flamingo's answer to the {p!r} prompt (normalised text)",
                   kind="str", holds="span" if p == "structure" else "track")
        for p in PROMPT_TYPES
    )

    @dataclass(frozen=True)
    class Config:
        model: str = "music-flamingo-2601-hf"
        models_dir: str | None = None
        device: str = "auto"
        dtype: str = "auto"
        attn_implementation: str | None = "sdpa"
        prompts: list[str] = field(default_factory=lambda: ["full"])
        texts: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PROMPTS))
        hints: list[str] = field(default_factory=lambda: list(DEFAULT_HINTS))
        tags_top_k: int = 5
        max_new_tokens: int = 500
        batch_size: int = 4
        do_sample: bool = False
        temperature: float = 0.7
        top_p: float = 0.9
        probability: float = 1.0
        seed: int = 0
        max_audio_s: float | None = None

    def __init__(self, config: Config | None = None):
        super().__init__(config)
        c = self.config
        unknown = sorted(set(c.prompts) - set(PROMPT_TYPES))
        if unknown or not c.prompts:
            raise ConfigError(f"extractors.flamingo.prompts: {list(c.prompts)!r}; choose from {list(PROMPT_TYPES)}")
        extra = sorted(set(c.texts) - set(PROMPT_TYPES))
        if extra:
            raise ConfigError(f"extractors.flamingo.texts: unknown prompt type(s) {extra}; known {list(PROMPT_TYPES)}")
        if not 0.0 <= c.probability <= 1.0:
            raise ConfigError(f"extractors.flamingo.probability must be in [0, 1], got {c.probability!r}")
        for key in ("max_new_tokens", "batch_size", "tags_top_k"):
            value = getattr(c, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"extractors.flamingo.{key} must be an int >= 1, got {value!r}")
        if c.max_audio_s is not None and not c.max_audio_s > 0:
            raise ConfigError(f"extractors.flamingo.max_audio_s must be > 0 or null, got {c.max_audio_s!r}")
        self.texts = {**DEFAULT_PROMPTS, **c.texts}
        for template in [self.texts[p] for p in c.prompts] + list(c.hints):
            _fields(template)

    @property
    def reads_features(self) -> list[str]:
        """Feature keys the prompts and hints read: run this extractor after the ones that write them."""
        names = [n for t in [self.texts[p] for p in self.config.prompts] + list(self.config.hints)
                 for n in _fields(t) if n != "hints"]
        return sorted(set(names))

    def preflight(self) -> None:
        from sat_mir.models.flamingo import locate_flamingo

        locate_flamingo(self.config.model, self.config.models_dir)
        require("models", "extractor flamingo", ("torch", "transformers"))


    # ------------------------------------------------------------------ batching

    def prompts_for(self, ctx: TrackContext) -> tuple[dict[str, str], dict[str, str]]:
        """({prompt type: filled text}, {output key: why absent}) for one track."""
        c = self.config
        values = getattr(ctx, "features", None) or {}
        hints = []
        for hint in c.hints:
            text, missing = fill_template(hint, values, top_k=c.tags_top_k)
            if not missing:
                hints.append(text)
        texts, absent = {}, {}
        for p in c.prompts:
            text, missing = fill_template(self.texts[p], values, hints=" ".join(hints), top_k=c.tags_top_k)
            if missing:
                absent[f"flamingo_{p}"] = (f"the {p!r} prompt needs {', '.join(sorted(set(missing)))}, "
                                           f"which this track has no value for")
            else:
                texts[p] = text
        return texts, absent

    def compute_batch(self, ctxs: list[TrackContext]) -> list[ExtractorResult | Exception]:
        c = self.config
        results: list[ExtractorResult | Exception] = [ExtractorResult() for _ in ctxs]
        pairs: list[tuple[int, str, str]] = []  # (item, prompt type, text)
        for i, ctx in enumerate(ctxs):
            track_id = str(getattr(ctx, "track_id", None) or ctx.sources["mix"])
            if not _sampled(track_id, c.seed, c.probability):
                reason = f"track not in the sample (probability {c.probability:g}, seed {c.seed})"
                results[i].absent.update({f"flamingo_{p}": reason for p in c.prompts})
                continue
            texts, absent = self.prompts_for(ctx)
            results[i].absent.update(absent)
            pairs.extend((i, p, t) for p, t in texts.items())
        if not pairs:
            return results

        from sat_mir.models.flamingo import SAMPLE_RATE, load_flamingo

        try:
            model = load_flamingo(c.model, models_dir=c.models_dir, device=c.device, dtype=c.dtype,
                                  attn_implementation=c.attn_implementation)
        except Exception as exc:  # noqa: BLE001 - every described item fails with it, none gets a stand-in
            for i in {i for i, _, _ in pairs}:
                results[i] = exc
            return results
        limit_s = min(model.max_audio_s, c.max_audio_s or math.inf)
        audio: dict[int, np.ndarray] = {}
        for i in sorted({i for i, _, _ in pairs}):
            try:
                audio[i] = _model_audio(ctxs[i], SAMPLE_RATE, limit_s)
            except Exception as exc:  # noqa: BLE001 - this item's error, returned to the runner
                results[i] = exc
        pairs = [pr for pr in pairs if pr[0] in audio]
        # similar lengths together: fewer padded tokens per batch
        pairs.sort(key=lambda pr: audio[pr[0]].size)
        answers: dict[tuple[int, str], str | Exception] = {}
        for start in range(0, len(pairs), c.batch_size):
            chunk = pairs[start:start + c.batch_size]
            answers.update(self._generate(model, chunk, audio))
        for (i, p), answer in answers.items():
            if isinstance(results[i], Exception):
                continue
            if isinstance(answer, Exception):
                results[i] = answer
                continue
            text = normalize_text(answer)
            if text:
                results[i].values[f"flamingo_{p}"] = text
            else:
                results[i].absent[f"flamingo_{p}"] = "the model answered with no text"
        return results

    def _generate(self, model, chunk, audio) -> dict[tuple[int, str], str | Exception]:
        c = self.config
        kwargs = {"max_new_tokens": c.max_new_tokens, "do_sample": c.do_sample, "temperature": c.temperature,
                  "top_p": c.top_p}
        try:
            texts = model.generate([audio[i] for i, _, _ in chunk], [t for _, _, t in chunk], **kwargs)
            return {(i, p): t for (i, p, _), t in zip(chunk, texts)}
        except Exception as exc:  # noqa: BLE001 - retried one by one below, so one bad pair fails alone
            if len(chunk) == 1:
                i, p, _ = chunk[0]
                return {(i, p): ExtractorError(f"Music Flamingo failed on prompt {p!r}: "
                                               f"{type(exc).__name__}: {exc}")}
        out: dict[tuple[int, str], str | Exception] = {}
        for pair in chunk:
            out.update(self._generate(model, [pair], audio))
        return out


def _model_audio(ctx: TrackContext, sr: int, limit_s: float) -> np.ndarray:
    mono = ctx.mix.mono_at(sr)
    if mono.size == 0:
        raise ExtractorError("the mix has no samples")
    if not np.all(np.isfinite(mono)):
        raise ExtractorError("the mix contains NaN or infinite samples")
    if math.isfinite(limit_s):
        mono = mono[: int(limit_s * sr)]
    return np.ascontiguousarray(mono, dtype=np.float32)
