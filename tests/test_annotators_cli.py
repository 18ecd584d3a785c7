"""Model-backed annotators inside `python -m sat_mir.extract`: stand-in weights of the real
formats in a models folder, one model load per run, batched after the CPU extractors; missing
weights reported once per run (enabled=true) or the extractor left out (enabled=auto)."""

from __future__ import annotations

import re

import mido
import pytest

from conftest import load_strict_json, load_tool, run_extract, sidecars  # noqa: E402

ANNOTATORS = ("essentia", "aesthetics", "drums_midi", "flamingo")


@pytest.fixture(scope="module")
def stand_in_models(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    load_tool("make_tiny_essentia").make_tiny_essentia(base)
    load_tool("make_tiny_audiobox").make_tiny_audiobox(base)
    load_tool("make_tiny_adtof").make_tiny_adtof(base)
    load_tool("make_tiny_flamingo").make_tiny_flamingo(base)
    return base


@pytest.mark.slow
def test_annotators_run_once_per_run_on_every_track(tmp_path, demo_library, stand_in_models):
    out = tmp_path / "out"
    args = ["+dataset=mine", f"dataset.root={demo_library}", f"dataset.output={out}",
            f"models_dir={stand_in_models}", "extractors=[info,rhythm,essentia,aesthetics,drums_midi,flamingo]",
            "extractors.flamingo.enabled=true", "extractors.flamingo.max_new_tokens=4", "model_batch=2",
            "progress=false", "jobs=1"]
    proc = run_extract(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 4 tracks in batches of 2, yet each model is loaded once
    for pattern in (r"loaded discogs-effnet", r"loaded audiobox", r"loaded adtof", r"loaded music-flamingo"):
        assert len(re.findall(pattern, proc.stderr)) == 1, (pattern, proc.stderr[-3000:])
    assert "WavLM Config" not in proc.stderr and "Loading weights" not in proc.stderr  # no package noise
    found = sidecars(out)
    assert len(found) == 4
    for data in found.values():
        f, prov = data["features"], data["provenance"]
        assert all(prov[a]["error"] is None for a in ANNOTATORS), {a: prov[a]["error"] for a in ANNOTATORS}
        assert isinstance(f["essentia_genre"], dict) and isinstance(f["essentia_genre_top"], str)
        assert all(1.0 <= v <= 10.0 or k in prov["aesthetics"]["flags"]
                   for k, v in f.items() if k.startswith("aes_"))
        assert isinstance(f["flamingo_full"], str)
        assert isinstance(f["drum_onsets_kick"], int)
        midi = mido.MidiFile(out / "tracks" / data["track"]["id"] / "drums.mid")
        assert any(m.type == "set_tempo" for m in midi.tracks[0])
    # the flamingo prompt could use the bpm the rhythm extractor measured before it
    rerun = run_extract(*args, cwd=tmp_path)
    assert rerun.returncode == 0
    assert re.search(r"0 extractor runs done, \d+ skipped", rerun.stderr)
    assert "loaded" not in rerun.stderr.lower()  # nothing to do: no model is loaded


def test_missing_weights_are_one_error_per_run_and_auto_leaves_the_extractor_out(tmp_path, demo_library):
    out = tmp_path / "out"
    empty = tmp_path / "no-models"
    base = ["+dataset=mine", f"dataset.root={demo_library}", f"dataset.output={out}", f"models_dir={empty}",
            "progress=false", "jobs=1"]
    proc = run_extract(*base, "extractors=[info,essentia,aesthetics,drums_midi]",
                       "extractors.essentia.enabled=true", "extractors.aesthetics.enabled=true",
                       "extractors.drums_midi.enabled=true", cwd=tmp_path, env={"HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 1
    for name, model in (("essentia", "essentia"), ("aesthetics", "audiobox"), ("drums_midi", "adtof")):
        lines = [ln for ln in proc.stderr.splitlines() if f"extractor {name} cannot run" in ln]
        assert len(lines) == 1, (name, proc.stderr[-2000:])
        assert str(empty) in lines[0] and f"python -m sat_mir.models download {model}" in lines[0]
    assert "FAILED" not in proc.stderr  # not once per file
    for data in sidecars(out).values():
        assert isinstance(data["features"]["duration_s"], float)  # the other extractors ran
        for name in ("essentia", "aesthetics", "drums_midi"):
            assert data["provenance"][name]["error"] and not data["provenance"][name]["keys"]
        assert not any(k.startswith(("essentia_", "aes_", "drum_")) for k in data["features"])

    auto = run_extract(*base, "extractors=[info,essentia,aesthetics,drums_midi]", cwd=tmp_path / "..",
                       env={"HF_HOME": str(tmp_path / "hf")})
    assert auto.returncode == 0, auto.stderr[-2000:]
    assert len(re.findall(r"extractor (essentia|aesthetics|drums_midi) is off this run", auto.stderr)) == 3
    data = load_strict_json(next((out / "tracks").iterdir()) / "features.json")
    assert isinstance(data["features"]["duration_s"], float)
