"""The Ray executor on a real local cluster (2 CPUs): the same outputs as the local pool, a
worker that dies fails only its item, and a re-run finishes it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import load_tool, run_extract
from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec

ray = pytest.importorskip("ray", reason="the Ray tests need the ray extra: pip install 'sat-mir[ray]'")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local cluster whose workers see SAT_MIR_TEST_DIE_MARKER (set before it starts)."""
    from sat_mir.run.executor import ExecutorSettings, connect

    marker = tmp_path_factory.mktemp("ray") / "die"
    os.environ["SAT_MIR_TEST_DIE_MARKER"] = str(marker)
    # this module's test extractor travels by value: Ray's workers cannot import tests/
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    settings = ExecutorSettings(kind="ray")
    assert connect(settings).cluster_resources()["CPU"] >= 1
    yield settings, marker
    ray.shutdown()
    os.environ.pop("SAT_MIR_TEST_DIE_MARKER", None)


class DiesOn(Extractor):
    """Measures the mix's peak, and kills its worker process outright (no exception: the process
    is gone, as after an out-of-memory kill) on a track whose name holds a marked word."""

    name = "test_dies_on"
    version = "1"
    outputs = (OutputSpec("test_peak", "linear", "peak of the mix", (0.0, 10.0)),)

    def compute(self, ctx) -> ExtractorResult:
        marker = Path(os.environ["SAT_MIR_TEST_DIE_MARKER"])
        if marker.exists() and marker.read_text() in str(ctx.sources["mix"]):
            os._exit(13)
        return ExtractorResult(values={"test_peak": round(float(np.max(np.abs(ctx.mix.samples))), 6)})


class ModelDiesOn(DiesOn):
    """The same measurement as a model extractor: it runs in the model stage, on Ray's actors."""

    name = "test_model_dies_on"
    device = "model"
    outputs = (OutputSpec("test_model_peak", "linear", "peak of the mix", (0.0, 10.0)),)

    def compute(self, ctx) -> ExtractorResult:
        result = super().compute(ctx)
        return ExtractorResult(values={"test_model_peak": result.values["test_peak"]})


def test_a_dead_model_actor_fails_only_its_batch_and_a_rerun_finishes_it(cluster, demo_library, tmp_path):
    from dataclasses import replace

    from sat_mir.catalog import scan_library
    from sat_mir.run import run_extraction
    from sat_mir.store import read_sidecar, sidecar_path

    cluster, marker = cluster
    actors = replace(cluster, model_actors=2)
    marker.write_text("Waltz")
    tracks = scan_library(demo_library)
    out = tmp_path / "out"
    # batches of one track: the actor that dies takes the Waltz with it, and only the Waltz
    summary = run_extraction(tracks, [ModelDiesOn()], root=demo_library, output=out, progress=False,
                             batch_size=1, executor=actors)
    assert summary.failed == 1 and summary.done == len(tracks) - 1
    (label,) = summary.failed_tracks
    assert "Waltz" in label and "Ray model actor died" in summary.failed_tracks[label]
    marker.unlink()
    again = run_extraction(tracks, [ModelDiesOn()], root=demo_library, output=out, progress=False,
                           batch_size=1, executor=actors)
    assert again.failed == 0 and again.done == 1 and again.skipped == len(tracks) - 1
    waltz = next(t for t in tracks if "Waltz" in t.name)
    assert read_sidecar(sidecar_path(out, waltz.id))["features"]["test_model_peak"] > 0.1


def test_the_model_stage_on_ray_actors_gives_the_local_values(cluster, demo_library, tmp_path):
    """A real model (Basic Pitch's bass and other transcription, whose weights ship in its wheel)
    on two actors, batches of two, against the same run in this process: every value and MIDI file."""
    pytest.importorskip("basic_pitch", reason="notes_midi needs basic-pitch (--no-deps, see the README)")
    from dataclasses import replace

    from sat_mir.catalog import scan_library
    from sat_mir.features import build_extractors
    from sat_mir.run import run_extraction
    from sat_mir.run.executor import LOCAL
    from sat_mir.store import read_sidecar, sidecar_path

    cluster, _ = cluster
    tracks = scan_library(demo_library)
    outs = {}
    for kind, executor in (("local", LOCAL), ("ray", replace(cluster, model_actors=2))):
        outs[kind] = tmp_path / kind
        summary = run_extraction(tracks, build_extractors({"notes_midi": {}}), root=demo_library,
                                 output=outs[kind], progress=False, batch_size=2, executor=executor)
        assert summary.failed == 0 and summary.done == len(tracks), summary.failed_tracks
    for track in tracks:
        local = read_sidecar(sidecar_path(outs["local"], track.id))
        ray_ = read_sidecar(sidecar_path(outs["ray"], track.id))
        assert local["features"] == ray_["features"] and "bass_note_count" in local["features"]
        for midi in ("bass.mid", "other.mid"):
            a = (sidecar_path(outs["local"], track.id).parent / midi).read_bytes()
            assert a == (sidecar_path(outs["ray"], track.id).parent / midi).read_bytes()


def test_a_dead_worker_fails_only_its_track_and_a_rerun_finishes_it(cluster, demo_library, tmp_path):
    from sat_mir.catalog import scan_library
    from sat_mir.run import run_extraction
    from sat_mir.store import read_sidecar, sidecar_path

    cluster, marker = cluster
    marker.write_text("Waltz")
    tracks = scan_library(demo_library)
    out = tmp_path / "out"
    summary = run_extraction(tracks, [DiesOn()], root=demo_library, output=out, jobs=2, progress=False,
                             executor=cluster)
    assert summary.failed == 1 and summary.done == len(tracks) - 1
    (label,) = summary.failed_tracks
    assert "Waltz" in label and "Ray worker died" in summary.failed_tracks[label]
    waltz = next(t for t in tracks if "Waltz" in t.name)
    rec = read_sidecar(sidecar_path(out, waltz.id))["provenance"]["test_dies_on"]
    assert "Ray worker died" in rec["error"]  # said in the sidecar too, so the next run retries it
    marker.unlink()
    again = run_extraction(tracks, [DiesOn()], root=demo_library, output=out, jobs=2, progress=False,
                           executor=cluster)
    assert again.failed == 0 and again.done == 1 and again.skipped == len(tracks) - 1
    assert read_sidecar(sidecar_path(out, waltz.id))["features"]["test_peak"] > 0.1


@pytest.mark.slow
def test_ray_and_the_local_pool_give_the_same_dataset(cluster, tmp_path):
    """The demo through extract (features, crops, crop features) and build (latents on Ray actors),
    once with each executor: every feature value, crop, item, latent and the manifest compared by value."""
    ray.shutdown()  # the command starts its own local cluster
    compare = load_tool("compare_outputs").compare
    models = load_tool("make_tiny_sat_model").make_tiny_sat_model(tmp_path / "models", sample_size=524288)
    env = {"SAT_MIR_CACHE": str(tmp_path / "cache")}
    outs = {}
    for kind in ("local", "ray"):
        out = tmp_path / kind
        args = ["+dataset=demo", f"dataset.output={out}", "extractors=[info,loudness,rhythm,tonal]",
                "separation=none", "crops=div4", f"executor={kind}", "jobs=2", "progress=false"]
        done = run_extract(*args, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert (kind == "ray") == ("executor: Ray cluster" in done.stderr)
        import subprocess

        built = subprocess.run([sys.executable, "-m", "sat_mir.build", "+dataset=demo", f"dataset.output={out}",
                                f"model.dir={models}", "formats=[audio_dir,pre_encoded]", "progress=false",
                                f"executor={kind}"],
                               cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True)
        assert built.returncode == 0, built.stderr[-2000:]
        outs[kind] = out
    assert len(list(outs["ray"].glob("crops/*/*/features.json"))) >= 4
    assert len(list(outs["ray"].glob("sat/latents/*.npy"))) >= 4
    assert compare(outs["local"], outs["ray"]) == []


def test_separation_on_ray_actors_writes_the_local_stems(cluster, tmp_path):
    """The tiny Demucs stand-in on two actors against the same separation in this process: the
    same stems (to a few 24-bit steps: an actor's torch uses one thread, this process two, and
    sums in another order), and a missing model said once, not per track."""
    from dataclasses import replace

    from sat_mir.audio import load_audio, write_audio
    from sat_mir.catalog import scan_library
    from sat_mir.separation.stage import SeparationSettings, separate_tracks, stems_folder

    cluster, _ = cluster
    models = tmp_path / "models"
    load_tool("make_tiny_demucs").make_tiny_demucs(models / "demucs", name="tiny_htdemucs", seed=0)
    lib = tmp_path / "lib"
    t = np.arange(3 * 44100) / 44100
    for i, f in enumerate((110.0, 165.0, 220.0)):
        x = (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)
        write_audio(lib / f"song{i}.flac", np.stack([x, 0.8 * x]), sr=44100)
    tracks = scan_library(lib)
    settings = SeparationSettings(model="tiny_htdemucs", models_dir=str(models), device="cpu")
    actors = replace(cluster, model_actors=2)
    runs = {}
    for kind, executor in (("local", None), ("ray", actors)):
        extra = {} if executor is None else {"executor": executor}
        out, summary = separate_tracks(tracks, tmp_path / kind, settings, progress=False, **extra)
        assert summary.separated == len(tracks) and not summary.failed
        runs[kind] = {t.name: {s: load_audio(p).samples for s, p in t.stems.items()} for t in out}
        assert all(p.parent == stems_folder(tmp_path / kind, t.id) for t in out for p in t.stems.values())
    assert runs["local"].keys() == runs["ray"].keys()
    for name, stems in runs["local"].items():
        assert stems.keys() == runs["ray"][name].keys() == {"drums", "bass", "other", "vocals"}
        for stem, x in stems.items():
            assert np.abs(x).max() > 1e-3  # not silence on both sides
            np.testing.assert_allclose(runs["ray"][name][stem], x, rtol=0, atol=1e-5)
    missing = replace(settings, model="not_a_model")
    _, summary = separate_tracks(tracks, tmp_path / "missing", missing, progress=False, executor=actors)
    assert summary.separated == 0 and summary.unavailable and not summary.failed


def test_model_actors_the_cluster_cannot_place_are_said_at_once(cluster):
    from dataclasses import replace

    from sat_mir.errors import ConfigError
    from sat_mir.run.executor import actor_room, connect

    cluster, _ = cluster
    ray_ = connect(cluster)
    cpus = int(ray_.cluster_resources()["CPU"])
    assert actor_room(ray_, cluster) == cpus
    with pytest.raises(ConfigError, match="no room for one model actor"):
        actor_room(ray_, replace(cluster, num_gpus=1.0))  # this cluster has no GPU
