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
    assert proc.returncode == 3  # models missing: a requested stage could not run
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


def test_an_extractor_that_reads_measured_values_is_redone_when_they_change(tmp_path, demo_library):
    """Flamingo puts measured values (bpm, key, tags) into its prompts: they are part of its skip key."""
    from sat_mir.catalog import scan_library
    from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec
    from sat_mir.run import run_extraction
    from sat_mir.store.sidecar import ExtractorRecord, merge_extractor, read_sidecar, sidecar_path

    calls = []

    class EchoBpm(Extractor):
        name, version, device = "echo_bpm", "1", "model"
        outputs = (OutputSpec("echo_bpm", "BPM", "the bpm it was given"),)

        @property
        def reads_features(self):
            return ["bpm"]

        def compute(self, ctx):
            calls.append(ctx.track_id)
            return ExtractorResult(values={"echo_bpm": float(ctx.features["bpm"])})

    track = scan_library(demo_library)[0]
    path = sidecar_path(tmp_path, track.id)

    def set_bpm(bpm):
        merge_extractor(path, extractor="rhythm", values={"bpm": bpm}, track={},
                        record=ExtractorRecord(version="t", config_hash="t", inputs={}, seconds=0.0))

    def run():
        return run_extraction([track], [EchoBpm()], root=demo_library, output=tmp_path, jobs=1, progress=False)

    set_bpm(120.0)
    assert run().done == 1 and calls == [track.id]
    assert run().skipped == 1 and len(calls) == 1  # same value: current
    set_bpm(96.0)
    assert run().done == 1 and len(calls) == 2
    assert read_sidecar(path)["features"]["echo_bpm"] == 96.0
