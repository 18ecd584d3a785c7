"""`python -m sat_mir.models`: every model listed with its folder, files and licence; presence and
checksums verified; locate() never downloads and names the fetch command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sat_mir.errors import WeightsError
from sat_mir.extras import missing_modules
from sat_mir.models.catalog import all_models, find_model
from sat_mir.models.spec import locate, verify

from conftest import load_tool  # noqa: E402


def _models(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sat_mir.models", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_every_model_family_is_listed_with_licence_and_non_commercial_flag(tmp_path):
    names = {m.name for m in all_models()}
    assert {"demucs", "demucs-htdemucs_ft", "demucs-htdemucs_6s", "essentia", "audiobox", "adtof",
            "music-flamingo-2601-hf", "music-flamingo-hf", "stable-audio-open-1.0"} <= names
    proc = _models("--models-dir", str(tmp_path), "list")
    assert proc.returncode == 0, proc.stderr
    shipped = {"basic_pitch"}  # its weights are a file of its installed package, not of the models folder
    for name in names - shipped:
        assert f"\n{name}  (missing)" in proc.stdout
    if not missing_modules(["basic_pitch"]):
        assert "\nbasic_pitch  (present: " in proc.stdout and "site-packages" in proc.stdout
    # the non-commercial ones say so; the MIT / CC-BY ones do not
    blocks = {b.split("  (")[0]: b for b in proc.stdout.split("\n\n")[1:]}
    for name in ("essentia", "adtof", "music-flamingo-2601-hf"):
        assert "NOT for commercial use" in blocks[name]
    for name in ("demucs", "audiobox", "basic_pitch"):
        assert "NOT for commercial use" not in blocks[name]


def test_stand_ins_are_found_and_checksums_verified(tmp_path):
    load_tool("make_tiny_adtof").make_tiny_adtof(tmp_path)
    load_tool("make_tiny_essentia").make_tiny_essentia(tmp_path)
    assert locate(find_model("essentia"), tmp_path) == tmp_path / "essentia"
    assert verify(find_model("essentia"), tmp_path) == []  # MTG publishes no checksums: presence only
    # the stand-in is not the published ADTOF file, and verify says so
    problems = verify(find_model("adtof"), tmp_path)
    assert len(problems) == 1 and "sha256 differs" in problems[0]
    proc = _models("--models-dir", str(tmp_path), "verify")
    assert proc.returncode == 1
    assert "essentia: ok" in proc.stdout and "adtof: " in proc.stdout and "sha256 differs" in proc.stdout


def test_locate_names_the_missing_file_and_the_download_command(tmp_path):
    spec = find_model("audiobox")
    with pytest.raises(WeightsError, match=r"audiobox/checkpoint\.pt.*python -m sat_mir\.models download audiobox"):
        locate(spec, tmp_path)
    proc = _models("--models-dir", str(tmp_path), "verify", "audiobox")
    assert proc.returncode == 1 and "download audiobox" in proc.stdout
    assert _models("download", "no-such-model").returncode == 2
