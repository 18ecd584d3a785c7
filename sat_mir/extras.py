"""The optional parts of sat-mir (``pip install 'sat-mir[<extra>]'``) and the packages each needs.

The core (DSP features, crops, the audio formats of the build, prompts) needs none of them.  A
part that is asked for without its packages stops with one line naming the extra to install,
never a traceback from deep inside an import.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from sat_mir.errors import MissingExtraError

__all__ = ["EXTRAS", "missing_modules", "require"]

# extra -> the importable modules it brings
EXTRAS: dict[str, tuple[str, ...]] = {
    "separation": ("torch", "demucs"),
    "models": ("torch", "essentia", "transformers", "audiobox_aesthetics", "beat_this", "mido", "huggingface_hub",
               "onnxruntime"),
    "sat": ("torch", "stable_audio_tools"),
    "ray": ("ray",),
}


def missing_modules(modules: Sequence[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here (found without importing them)."""
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(name)
    return out


def require(extra: str, what: str, modules: Sequence[str] | None = None) -> None:
    """Raise :class:`MissingExtraError` when a module ``what`` needs (by default every module of
    ``extra``) is not installed."""
    missing = missing_modules(modules if modules is not None else EXTRAS[extra])
    if missing:
        raise MissingExtraError(f"{what} needs {', '.join(missing)}, not installed here: "
                                f"pip install 'sat-mir[{extra}]'")
