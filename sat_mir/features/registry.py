"""The extractor contract and registry.

An extractor declares its name, version, the signals it needs, its device and
its outputs (:class:`OutputSpec`: key, unit, range, description).  It gets a
:class:`~sat_mir.audio.context.TrackContext` and returns an
:class:`ExtractorResult`; it never decodes files or writes them.  The runner,
the docs and the builder all read the same specs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sat_mir.audio.context import TrackContext
from sat_mir.errors import ConfigError, SatMirError

__all__ = [
    "Extractor",
    "ExtractorResult",
    "ModelExtractor",
    "Needs",
    "OutputSpec",
    "REGISTRY",
    "build_extractors",
    "confidence_keys",
    "register",
    "track_wide_keys",
]


# Config fields that change how and where an extractor runs, not what it measures.
RUNTIME_OPTIONS = frozenset({"models_dir", "device", "batch_size", "batch_windows", "batch_items",
                             "attn_implementation"})


@dataclass(frozen=True)
class OutputSpec:
    """One output key.  ``{stem}`` in ``key`` expands to each stem the track has."""

    key: str
    unit: str
    description: str
    range: tuple[float, float] | None = None
    # float | int | str | tags (an object label → probability, highest first) | bool | list (of strings)
    kind: str = "float"
    # the key holding this value's confidence (e.g. bpm → tempo_confidence): the build leaves
    # the value out of prompts and numbers when that confidence is below its threshold
    confidence: str | None = None
    # "span": the value describes the stretch of audio it was measured on (a loudness, a tempo
    # that may drift); "track": it holds for any part of the track (a key, a meter, a genre), so
    # each crop inherits it (sat_mir.crops.cut) beside what is measured on the crop itself
    holds: str = "span"

    def __post_init__(self):
        if self.holds not in ("span", "track"):
            raise ValueError(f"OutputSpec {self.key!r}: holds must be 'span' or 'track', got {self.holds!r}")

    @property
    def per_stem(self) -> bool:
        return "{stem}" in self.key

    def expand(self, stems: Iterable[str]) -> list[str]:
        return [self.key.format(stem=s) for s in stems] if self.per_stem else [self.key]

    def out_of_range(self, value: Any) -> str | None:
        """A message when a numeric ``value`` lies outside :attr:`range`, else None."""
        if self.range is None or not isinstance(value, (int, float)):
            return None
        lo, hi = self.range
        if not lo <= value <= hi:
            return f"{value!r} outside the declared range [{lo}, {hi}] {self.unit}"
        return None


@dataclass(frozen=True)
class Needs:
    """What an extractor's values need from the mix to mean anything (:mod:`sat_mir.audio.content`).

    Below a need the runner records every key of the extractor as absent, with the reason,
    and does not compute: a key of white noise or a tempo of a DC offset is not data.
    """

    min_seconds: float = 0.0  # the mix's duration
    min_sound_s: float = 0.0  # seconds louder than -60 dBFS, DC and sub-20 Hz left out
    pitched: bool = False  # tonal content (tonality >= PITCHED)
    rhythmic: bool = False  # a pulse (pulse clarity >= RHYTHMIC)
    music: bool = False  # pitched or rhythmic: not noise

    @property
    def any(self) -> bool:
        return self != Needs()

    def unmet(self, c) -> str | None:
        """Why ``c`` (a :class:`~sat_mir.audio.content.Content`) does not meet these needs, or None."""
        from sat_mir.audio.content import PITCHED, RHYTHMIC, SOUND_DB

        if c.duration_s < self.min_seconds:
            return f"the mix is {c.duration_s:.2f} s long; these values need {self.min_seconds:g} s"
        if c.sound_s < self.min_sound_s:
            return (f"the mix has {c.sound_s:.2f} s above {SOUND_DB:g} dBFS (DC left out); these values need "
                    f"{self.min_sound_s:g} s")
        if self.pitched and not c.pitched:
            return f"no pitched content (tonality {c.tonality:.2f} < {PITCHED})"
        if self.rhythmic and not c.rhythmic:
            return f"no pulse (pulse clarity {c.pulse_clarity:.2f} < {RHYTHMIC})"
        if self.music and not (c.pitched or c.rhythmic):
            return (f"neither pitched content nor a pulse (tonality {c.tonality:.2f}, pulse clarity "
                    f"{c.pulse_clarity:.2f}): noise, not music")
        return None


@dataclass
class ExtractorResult:
    """What an extractor produced for one track.

    ``values``: flat feature keys → JSON scalars (finite numbers only).
    ``artifacts``: file name → text (str) or bytes (e.g. a MIDI file), written atomically in
    the track's work folder.
    ``absent``: key → why no value exists although nothing failed (e.g. a silent stem).
    """

    values: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str | bytes] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)


class Extractor(ABC):
    """Base class: subclasses set the class attributes and implement :meth:`compute`."""

    name: ClassVar[str]
    version: ClassVar[str]
    signals: ClassVar[tuple[str, ...]] = ("mix",)  # "mix" and/or "stems"
    # "cpu": pure DSP, runs in the worker pool.  "model": loads a neural network (weights
    # from a models folder, GPU when present); the runner checks the weights once per run
    # with :meth:`preflight` and feeds such extractors batches in one process, so each model
    # is loaded once per run.
    device: ClassVar[str] = "cpu"
    outputs: ClassVar[tuple[OutputSpec, ...]]
    needs: ClassVar[Needs] = Needs()
    # Reads the samples into large analysis arrays of its own and no large shared ones (the
    # context's spectrograms): the worker runs it first among the mix-only extractors, when
    # those shared arrays are let go, so its peak does not stack on theirs.
    own_analysis: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, config: Config | None = None):
        self.config = config if config is not None else self.Config()

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> Extractor:
        from sat_mir.settings import options_to_dataclass

        return cls(options_to_dataclass(cls.Config, options, f"extractors.{cls.name}", ignore=("enabled",)))

    @property
    def config_hash(self) -> str:
        """Hash of the options that change the values (not where weights live, the device or
        batch sizes), so moving the models folder or the GPU does not redo finished work."""
        opts = {k: v for k, v in dataclasses.asdict(self.config).items() if k not in RUNTIME_OPTIONS}
        if self.needs.any:  # what the values need decides whether they exist
            opts["__needs__"] = dataclasses.asdict(self.needs)
        blob = json.dumps(opts, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    def prepare(self, ctx: TrackContext, stem: str) -> None:
        """Compute and memoise on ``ctx.stem(stem)`` what :meth:`compute` will read of that stem.

        The worker calls it for each stem in turn before the extractors that read stems run,
        so a long track's stems can be let go one after the other (``signals_mb``) and each is
        decoded once: what is measured on a stem is done while it is held.  Optional: without
        it a stem let go is decoded again when :meth:`compute` asks for it.  Errors are left to
        :meth:`compute`, which meets them again and records them."""

    def gate(self, ctx: TrackContext) -> ExtractorResult | None:
        """Every key absent with the reason when the mix does not meet :attr:`needs`, else None
        (also None when the mix cannot be measured: :meth:`compute` then reports why)."""
        if not self.needs.any:
            return None
        from sat_mir.audio.content import content_of

        try:
            reason = self.needs.unmet(content_of(ctx.mix))
        except Exception:  # noqa: BLE001 - compute() meets the same problem and records it
            return None
        if reason is None:
            return None
        keys = [k for s in self.outputs for k in s.expand(ctx.stem_names)]
        return ExtractorResult(absent={k: reason for k in keys})

    def spec(self, key: str) -> OutputSpec | None:
        for s in self.outputs:
            if s.per_stem:
                prefix, _, suffix = s.key.partition("{stem}")
                if key.startswith(prefix) and key.endswith(suffix) and len(key) > len(prefix) + len(suffix):
                    return s
            elif s.key == key:
                return s
        return None

    def check(self, result: ExtractorResult) -> dict[str, str]:
        """Validate ``result`` against the specs.

        Returns flags (key → message) for values outside their declared range; such
        values are kept, not clamped.  Raises ``ValueError`` for undeclared keys and
        non-finite numbers: an extractor bug, never data.
        """
        flags = {}
        for key, value in result.values.items():
            spec = self.spec(key)
            if spec is None:
                raise ValueError(f"extractor {self.name} returned undeclared key {key!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"extractor {self.name} returned non-finite {key}={value!r}")
            msg = spec.out_of_range(value)
            if msg:
                flags[key] = msg
        return flags

    @classmethod
    def warmup(cls) -> None:
        """Compile just-in-time code (numba) on a tiny signal, so that the compiled-code
        cache is complete before workers run (see :mod:`sat_mir.run.jit`)."""

    @property
    def reads_features(self) -> list[str]:
        """Feature keys of the item this extractor's values depend on (e.g. measured values put
        into a prompt); their values join its skip key, so it is redone when they change."""
        return []

    def preflight(self) -> None:
        """Check, cheaply and once per run, that everything :meth:`compute` needs is present
        (model files, optional packages).  Raise :class:`~sat_mir.errors.WeightsError` or
        :class:`~sat_mir.errors.ConfigError` naming the missing file and how to fetch it; the
        runner then records that one error for every item instead of computing."""

    def compute_batch(self, ctxs: list[TrackContext]) -> list[ExtractorResult | Exception]:
        """Measure several items at once (model extractors override this to batch on the
        device).  One entry per context, in order: a result, or the exception that item
        raised, so one bad item never fails the others."""
        out: list[ExtractorResult | Exception] = []
        for ctx in ctxs:
            try:
                out.append(self.compute(ctx))
            except Exception as exc:  # noqa: BLE001 - returned to the runner, which records it
                out.append(exc)
        return out

    @abstractmethod
    def compute(self, ctx: TrackContext) -> ExtractorResult:
        """Measure one track.  Raise :class:`~sat_mir.errors.ExtractorError` when no
        meaningful value exists; never return a made-up stand-in value."""


class ModelExtractor(Extractor):
    """Base of the extractors that run a neural network: they implement :meth:`compute_batch`
    (a batch of items on the device) and :meth:`preflight`; one item is a batch of one."""

    device: ClassVar[str] = "model"

    @abstractmethod
    def compute_batch(self, ctxs: list[TrackContext]) -> list[ExtractorResult | Exception]:
        """One result or exception per context, in order (see :meth:`Extractor.compute_batch`)."""

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        (result,) = self.compute_batch([ctx])
        if isinstance(result, Exception):
            raise result
        return result


REGISTRY: dict[str, type[Extractor]] = {}
log = logging.getLogger("sat_mir.features")


def register(cls: type[Extractor]) -> type[Extractor]:
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"extractor name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def confidence_keys() -> dict[str, str]:
    """``{value key: its confidence key}`` over every registered extractor's specs."""
    import sat_mir.features  # noqa: F401  - importing registers the built-in extractors

    return {s.key: s.confidence for cls in REGISTRY.values() for s in cls.outputs if s.confidence and not s.per_stem}


def track_wide_keys() -> tuple[str, ...]:
    """Keys whose values hold for any part of a track (``holds="track"``), in registry order."""
    import sat_mir.features  # noqa: F401  - importing registers the built-in extractors

    return tuple(s.key for cls in REGISTRY.values() for s in cls.outputs if s.holds == "track" and not s.per_stem)


def build_extractors(options: Mapping[str, Mapping[str, Any]]) -> list[Extractor]:
    """Instantiate the enabled extractors from ``{name: {enabled: bool, **config}}``."""
    import sat_mir.features  # noqa: F401  - importing registers the built-in extractors

    out = []
    for name, opts in options.items():
        if name not in REGISTRY:
            raise ConfigError(f"unknown extractor {name!r}; available: {sorted(REGISTRY)}")
        opts = dict(opts or {})
        enabled = opts.get("enabled", True)
        if enabled not in (True, False, "auto"):
            raise ConfigError(f"extractors.{name}.enabled must be true, false or auto, got {enabled!r}")
        if not enabled:
            continue
        ex = REGISTRY[name].from_mapping(opts)
        if enabled == "auto":
            # "auto": run when the weights are here, else say so once and leave it out
            # (with enabled=true, missing weights are an error recorded on every item)
            try:
                ex.preflight()
            except SatMirError as exc:
                log.info("extractor %s is off this run (enabled=auto): %s", name, exc)
                continue
        out.append(ex)
    return out
