"""The separation stage inside `extract`: tracks without stems get Demucs stems in their work
folder, the stem features use them, reruns do not separate again, missing weights fail once."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sat_mir.audio import write_audio
from sat_mir.catalog import scan_library
from sat_mir.separation.stage import SeparationSettings, separate_tracks, stems_folder

from conftest import load_strict_json, load_tool, run_extract  # noqa: E402

SR = 44100


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    load_tool("make_tiny_demucs").make_tiny_demucs(base / "demucs", name="tiny_htdemucs", seed=0)
    return base


@pytest.fixture(scope="module")
def plain_library(tmp_path_factory, demo_library):
    """Two plain mixes (no stems) and one track with its own stems."""
    from sat_mir.audio import load_audio

    lib = tmp_path_factory.mktemp("plain")
    rng = np.random.default_rng(0)
    t = np.arange(4 * SR) / SR
    for i, f in enumerate((110.0, 165.0)):
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.1 * rng.standard_normal(t.size) * (np.mod(t, 0.5) < 0.05)
        write_audio(lib / f"song{i}.flac", np.stack([x, 0.9 * x]).astype(np.float32), sr=SR)
    own = demo_library / "Demo 01 - Sunrise"
    write_audio(lib / "own.flac", load_audio(own / "full_mix.flac").samples[:, : 4 * SR], sr=SR)
    write_audio(lib / "own_drums.flac", load_audio(own / "drums.flac").samples[:, : 4 * SR], sr=SR)
    return lib


def test_stage_separates_only_tracks_without_stems_and_resumes(tmp_path, plain_library, models_dir):
    settings = SeparationSettings(model="tiny_htdemucs", models_dir=str(models_dir), device="cpu")
    tracks = scan_library(plain_library)
    out, summary = separate_tracks(tracks, tmp_path, settings, progress=False)
    assert (summary.separated, summary.provided, summary.current) == (2, 1, 0)
    by_name = {t.name: t for t in out}
    assert set(by_name["own"].stems) == {"drums"}  # the user's stem, untouched, nothing generated
    assert not stems_folder(tmp_path, by_name["own"].id).exists()
    for name in ("song0", "song1"):
        t = by_name[name]
        assert set(t.stems) == {"drums", "bass", "other", "vocals"}
        assert all(p.parent == stems_folder(tmp_path, t.id) and p.suffix == ".flac" for p in t.stems.values())
        manifest = json.loads((stems_folder(tmp_path, t.id) / "separation.json").read_text())
        assert manifest["model"] == "tiny_htdemucs" and manifest["config_hash"] == settings.config_hash
    # a second pass finds every stem current; a different setting separates again
    _, again = separate_tracks(tracks, tmp_path, settings, progress=False)
    assert (again.separated, again.current) == (0, 2)
    changed = SeparationSettings(model="tiny_htdemucs", models_dir=str(models_dir), device="cpu", overlap=0.5)
    _, redo = separate_tracks(tracks, tmp_path, changed, progress=False)
    assert redo.separated == 2


def test_extract_separates_then_measures_the_generated_stems(tmp_path, plain_library, models_dir):
    out = tmp_path / "out"
    args = ("+dataset=mine", f"dataset.root={plain_library}", f"dataset.output={out}", f"models_dir={models_dir}",
            "separation.model=tiny_htdemucs", "separation.device=cpu", "extractors=[info,loudness]",
            "progress=false", "jobs=1")
    first = run_extract(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "separation: 2 separated, 0 already separated, 1 with their own stems" in first.stderr
    for track in scan_library(plain_library):
        data = load_strict_json(out / "tracks" / track.id / "features.json")
        stems = data["track"]["stems"]
        if track.name == "own":
            assert list(stems) == ["drums"]
        else:
            assert list(stems) == ["drums", "bass", "other", "vocals"]
            assert all(isinstance(data["features"].get(f"lufs_{s}"), float) or f"lufs_{s}" in
                       data["provenance"]["loudness"]["absent"] for s in stems)
            assert any(isinstance(data["features"].get(f"lufs_{s}"), float) for s in stems)
    second = run_extract(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "separated" not in second.stderr  # nothing to do: no separation line, no model load
    assert re.search(r"0 extractor runs done, \d+ skipped", second.stderr)


def test_missing_demucs_weights_fail_once_and_mix_features_still_run(tmp_path, plain_library):
    out = tmp_path / "out"
    proc = run_extract("+dataset=mine", f"dataset.root={plain_library}", f"dataset.output={out}",
                       f"models_dir={tmp_path / 'no-models'}", "extractors=[info]", "progress=false", "jobs=1",
                       cwd=tmp_path, env={"HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch")})
    assert proc.returncode == 3  # the separation stage could not run
    assert proc.stderr.count("separation cannot run") == 1
    assert "python -m sat_mir.models download demucs" in proc.stderr
    for track in scan_library(plain_library):
        data = load_strict_json(out / "tracks" / track.id / "features.json")
        assert isinstance(data["features"]["duration_s"], float)
