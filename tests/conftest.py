"""Shared fixtures: offline model hubs, a rendered demo library, and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
# conf/build.yaml's confidence minimums: a fact below its minimum is not stated in prompts
MIN_CONFIDENCE = OmegaConf.load(REPO / "conf" / "build.yaml").min_confidence


def load_tool(name: str):
    """Import ``tools/<name>.py`` (tools/ is not a package) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"tools_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that its functions pickle into worker processes
    spec.loader.exec_module(module)
    return module


def stand_in_fixtures(tool_name: str, make):
    """Module-scoped fixtures ``tool`` (``tools/<tool_name>.py``) and ``models_dir`` (a folder
    ``make(tool, folder)`` filled with stand-in weights of the real architecture), e.g.
    ``tool, models_dir = stand_in_fixtures("make_tiny_audiobox", lambda t, d: t.make_tiny_audiobox(d))``."""

    @pytest.fixture(scope="module", name="tool")
    def _tool():
        return load_tool(tool_name)

    @pytest.fixture(scope="module", name="models_dir")
    def _models_dir(tool, tmp_path_factory) -> Path:
        folder = tmp_path_factory.mktemp(tool_name)
        make(tool, folder)
        return folder

    return _tool, _models_dir


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection (or to download from the Hugging Face hub,
    which may answer from a local mirror) fails the test."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    try:
        import huggingface_hub
    except ImportError:
        return
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


def extract_demo(output: Path, library: Path, extractors: dict) -> tuple[list, list]:
    """The demo library catalogued into ``output`` and measured by ``extractors`` (``{name: options}``),
    in this process; returns (tracks, the extractor objects)."""
    from sat_mir.catalog import scan_library
    from sat_mir.features import build_extractors
    from sat_mir.run import run_extraction
    from sat_mir.store import write_catalog

    output.mkdir(parents=True, exist_ok=True)
    tracks = scan_library(library)
    write_catalog(output, library, tracks)
    measured = build_extractors(extractors)
    assert run_extraction(tracks, measured, root=library, output=output, jobs=1, progress=False).failed == 0
    return tracks, measured


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory) -> Path:
    """The bundled demo songs rendered once per test session (about 3 s)."""
    from sat_mir.demo import ensure_demo_library

    return ensure_demo_library(tmp_path_factory.mktemp("demo") / "library")


@pytest.fixture(scope="session")
def demo_truth(demo_library) -> dict[str, dict]:
    from sat_mir.demo import load_truth

    return load_truth(demo_library)


def run_extract(*overrides: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m sat_mir.extract`` with Hydra overrides, as a user would.

    ``env`` adds variables to this process's environment; a value of None removes one.
    """
    full_env = {**os.environ, **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "sat_mir.extract", *overrides],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
    )


def built_items(sat: Path) -> dict[str, dict]:
    """``{item id: manifest entry}`` of a build, read straight from its item store."""
    from sat_mir.build.manifest import read_items_store

    return read_items_store(sat / "custom_metadata" / "items.sqlite")


def load_strict_json(path: Path):
    """json.load that refuses NaN/Infinity (which Python's json would accept)."""

    def refuse(name):
        raise ValueError(f"{path}: non-finite constant {name} in JSON")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def sidecars(output: Path) -> dict[str, dict]:
    """{track name: sidecar} for every sidecar under ``output``."""
    out = {}
    for p in sorted((output / "tracks").glob("*/features.json")):
        data = load_strict_json(p)
        out[data["track"]["name"]] = data
    return out


def plucked_music(seconds: float, sr: int = 44100, seed: int = 0):
    """Mono music by every measure: plucked triads on a 120 BPM pulse with a kick on every
    other beat and a little hiss (pitched, with a pulse, not a steady sound)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    for k, start in enumerate(np.arange(0, seconds - 0.5, 0.5)):
        root = (220.0, 174.6, 261.6, 196.0)[(k // 4) % 4]
        seg = (t >= start) & (t < start + 0.5)
        tt = t[seg] - start
        x[seg] += sum(np.sin(2 * np.pi * root * r * tt) for r in (1, 1.26, 1.5)) * np.exp(-tt * 6) * 0.15
        x[seg] += np.sin(2 * np.pi * 55 * tt) * np.exp(-tt * 25) * 0.3 * (k % 2 == 0)
    return x + rng.standard_normal(x.size) * 1e-3
