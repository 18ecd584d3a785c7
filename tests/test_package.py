"""The package works installed from its wheel, away from this clone: the configs and fitted
weights ship inside it, and extract + build of the demo run from another directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO, load_tool

# what a clone holds that a source tree for the wheel does not
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                      "sat-mir-output", "outputs", ".cache")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCES)  # no stale build/ of an earlier in-tree build
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(base / "dist")], check=True, capture_output=True, text=True)
    (path,) = (base / "dist").glob("sat_mir-*.whl")
    return path


def test_the_wheel_carries_the_configs_and_the_fitted_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"sat_mir/conf/{p.relative_to(REPO / 'conf').as_posix()}" for p in (REPO / "conf").rglob("*.yaml")}
    assert shipped and shipped <= names
    assert {"sat_mir/features/metrical_weights.json", "sat_mir/custom_metadata/sat_mir_metadata.py",
            "sat_mir/custom_metadata/prompts.py"} <= names
    # nothing top-level but sat_mir: no generic "custom_metadata" package in site-packages
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"sat_mir"}


def test_installed_from_the_wheel_it_extracts_and_builds_the_demo_elsewhere(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    # the installed copy comes first; this clone is not on the path (the dependencies are the venv's)
    env = {**os.environ, "PYTHONPATH": str(site), "SAT_MIR_CACHE": str(tmp_path / "cache"),
           "SAT_MIR_OUTPUT": str(tmp_path / "out"), "HF_HUB_OFFLINE": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)

    where = run("-c", "import sat_mir, sat_mir.cli; print(sat_mir.__file__); print(sat_mir.cli.conf_dir())")
    assert where.returncode == 0, where.stderr
    module, conf = where.stdout.split()
    assert module.startswith(str(site)) and conf == str(site / "sat_mir" / "conf")
    assert "sat_mir.extract" in run("-m", "sat_mir.extract", "--help").stdout
    script = subprocess.run([str(site / "bin" / "sat-mir"), "build", "--help"], cwd=work, env=env,
                            capture_output=True, text=True)
    assert script.returncode == 0 and "sat_mir.build" in script.stdout, script.stderr
    ext = run("-m", "sat_mir.extract", "+dataset=demo", "extractors=[info,loudness]", "separation=none",
              "progress=false")
    assert ext.returncode == 0, ext.stderr[-2000:]
    # no model config: items as long as Stable Audio Open's window (one per demo song)
    built = run("-m", "sat_mir.build", "+dataset=demo", "formats=[audio_dir]", "dataset.models=null",
                "conditioning.numbers=[lufs]", "progress=false")
    assert built.returncode == 0, built.stderr[-2000:]
    out = tmp_path / "out" / "demo"
    assert len(list((out / "sat" / "audio").glob("*.flac"))) == 4
    assert (out / "sat" / "custom_metadata" / "sat_mir_metadata.py").is_file()
    # with every extra installed (this venv's packages), the latent formats too
    models = load_tool("make_tiny_sat_model").make_tiny_sat_model(tmp_path / "models", sample_size=262144)
    latents = run("-m", "sat_mir.build", "+dataset=demo", "formats=[audio_dir,pre_encoded]", f"model.dir={models}",
                  "conditioning.numbers=[lufs]", "progress=false")
    assert latents.returncode == 0, latents.stderr[-2000:]
    assert len(list((out / "sat" / "latents").glob("*.npy"))) >= 8  # 5.9 s chunks of 25-30 s songs
    assert not (work / "outputs").exists() and not list(work.iterdir())  # nothing written where it ran


def test_every_extractor_yaml_sets_exactly_its_config_fields():
    """conf/extractors/<name>.yaml is where a user reads and changes an extractor's settings:
    a field missing there is a setting nobody sees, an unknown key one that does nothing."""
    import dataclasses

    import yaml

    from sat_mir.features import REGISTRY

    conf = REPO / "conf" / "extractors"
    for path in sorted(conf.glob("*.yaml")):
        for name, options in yaml.safe_load(path.read_text()).items():
            fields = {f.name for f in dataclasses.fields(REGISTRY[name].Config)}
            assert set(options) - {"enabled"} == fields, path.name
