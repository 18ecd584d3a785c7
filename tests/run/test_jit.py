"""The JIT-cache guard: a crashing cache is wiped and rebuilt, other failures are reported."""

import os
import subprocess
import sys

import pytest

from sat_mir.run import jit


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("SAT_MIR_CACHE", str(tmp_path))
    monkeypatch.setattr(jit, "LOCK", tmp_path / "jit.lock")
    cache = tmp_path / "numba"
    (cache / "librosa_x").mkdir(parents=True)
    (cache / "librosa_x" / "f.nbi").write_text("stale")
    return cache


def fake_probe(codes):
    calls = []

    def probe(names):
        calls.append(list(names))
        return subprocess.CompletedProcess([], codes[len(calls) - 1], "", "boom")

    return probe, calls


def test_a_crashing_cache_is_wiped_and_rebuilt(own_cache, monkeypatch, caplog):
    probe, calls = fake_probe([-11, 0])
    monkeypatch.setattr(jit, "_probe", probe)
    jit.prepare_jit_cache(["tempo"])
    assert calls == [["tempo"], ["tempo"]]
    assert not (own_cache / "librosa_x").exists()  # wiped before the second, successful probe
    assert "crashed a process (signal 11)" in caplog.text


def test_an_ordinary_failure_is_reported_not_wiped(own_cache, monkeypatch, caplog):
    probe, calls = fake_probe([1])
    monkeypatch.setattr(jit, "_probe", probe)
    jit.prepare_jit_cache(["tempo"])
    assert len(calls) == 1 and (own_cache / "librosa_x" / "f.nbi").exists()
    assert "JIT warm-up failed (exit 1: boom)" in caplog.text


def test_a_user_cache_dir_is_never_wiped(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    (tmp_path / "mine").mkdir()
    monkeypatch.setattr(jit, "LOCK", tmp_path / "jit.lock")
    probe, calls = fake_probe([-11])
    monkeypatch.setattr(jit, "_probe", probe)
    jit.prepare_jit_cache(["tempo"])
    assert len(calls) == 1 and (tmp_path / "mine").exists()


def test_the_real_warm_up_runs_in_a_subprocess(tmp_path, monkeypatch):
    cache = tmp_path / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    proc = jit._probe(["info", "loudness", "rhythm", "timbral"])
    assert proc.returncode == 0, proc.stderr


def test_the_dsp_extractors_load_neither_librosa_nor_numba(tmp_path):
    """librosa's onset detection, filter banks and tempo estimate are done in numpy
    (sat_mir.features.onset_detect, sat_mir.audio.filterbanks): importing librosa loads numba,
    0.7 s and 60-100 MB in every worker.  Every DSP extractor on a short song, in a fresh process."""
    import subprocess
    import sys

    code = """
import sys
import numpy as np
from pathlib import Path
from sat_mir.audio.context import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.features import REGISTRY
sr = 44100
t = np.arange(sr * 8) / sr
rng = np.random.default_rng(0)
kick = np.sin(2 * np.pi * 60 * t) * np.exp(-((t * 2) % 1) * 30)
tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t)
y = np.stack([kick + tone, kick + 0.9 * tone]).astype(np.float32) * 0.5
stems = {n: Path(n) for n in ("drums", "bass", "other", "vocals")}
parts = {"mix": y, "drums": y * 0, "bass": y * 0.5, "other": y * 0.5, "vocals": y * 0}
ctx = TrackContext({"mix": Path("mix"), **stems}, loader=lambda p: Audio(parts[str(p)], sr))
for name in ("info", "loudness", "rhythm", "stem_rhythm", "spectral", "peaks", "tonal", "chords", "timbral",
             "series"):
    ex = REGISTRY[name]()
    result = ex.gate(ctx) or ex.compute(ctx)
    assert result.values or result.absent, name
print(sorted(m for m in ("numba", "librosa", "llvmlite") if m in sys.modules))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_probe_that_passed_is_not_repeated_until_something_changes(own_cache, monkeypatch):
    probe, calls = fake_probe([0, 0, 0])
    monkeypatch.setattr(jit, "_probe", probe)
    jit.prepare_jit_cache(["tempo"])
    jit.prepare_jit_cache(["tempo"])  # the stamp of the first probe stands
    assert calls == [["tempo"]]
    jit.prepare_jit_cache(["tempo", "rhythm"])  # another set of extractors: probe it
    assert len(calls) == 2
    monkeypatch.setattr(jit, "_stamp", lambda cache, names: cache / "sat-mir-ready-other-numba")
    jit.prepare_jit_cache(["tempo"])  # other software versions: probe again
    assert len(calls) == 3


def test_a_user_cache_dir_is_always_probed_and_never_stamped(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setattr(jit, "LOCK", tmp_path / "jit.lock")
    probe, calls = fake_probe([0, 0])
    monkeypatch.setattr(jit, "_probe", probe)
    jit.prepare_jit_cache(["tempo"])
    jit.prepare_jit_cache(["tempo"])
    assert len(calls) == 2 and not list((tmp_path / "mine").glob("sat-mir-ready-*"))


def test_the_command_points_numba_at_its_cache_before_numba_is_imported(tmp_path):
    # a run computing in its own process (jobs=1) must load the compiled code, not compile it
    code = ("import sys, os; from sat_mir.run.jit import use_own_cache; use_own_cache(); "
            "assert 'numba' not in sys.modules; import numba; "
            "print(numba.config.CACHE_DIR == os.environ['NUMBA_CACHE_DIR'])")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["SAT_MIR_CACHE"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "True", out.stderr
