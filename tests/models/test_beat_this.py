"""Beat This!: the stand-in checkpoint loads through the package's own loader, the rhythm extractor
takes it when its weights are there (tracker=auto) and the DSP analysis otherwise, and its
beats and downbeats become bars the same way."""

from pathlib import Path

import numpy as np
import pytest

from conftest import load_tool
from sat_mir.audio import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.errors import WeightsError
from sat_mir.features.metrical import RhythmInputs, from_beats_and_downbeats
from sat_mir.features.rhythm import Rhythm, resolve_tracker
from sat_mir.models.catalog import find_model


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("models")
    load_tool("make_tiny_beat_this").make_tiny_beat_this(base)
    return base


def clicks(bpm=120.0, seconds=12.0, sr=22050):
    x = np.zeros(int(sr * seconds), np.float32)
    for k, s in enumerate(np.arange(0.1, seconds, 60.0 / bpm)):
        i = int(s * sr)
        x[i:i + 300] += (1.0 if k % 4 == 0 else 0.5) * np.hanning(600)[300:]
    return x[None], sr


def test_the_stand_in_has_the_release_layout_and_loads(models_dir):
    import torch

    from sat_mir.models.beat_this import FPS, load_tracker

    ckpt = torch.load(models_dir / "beat_this" / "final0.ckpt", weights_only=True)
    assert set(ckpt) == {"hyper_parameters", "state_dict"}
    assert all(k.startswith("model.") for k in ckpt["state_dict"])
    tracker = load_tracker(models_dir, "cpu")
    assert load_tracker(models_dir, "cpu") is tracker  # loaded once per process
    x, sr = clicks()
    beat, down = tracker.activations(x[0])
    assert beat.shape == down.shape == (int(round(x.shape[1] / sr * FPS)) + 1,)
    assert np.all(np.isfinite(beat))


def test_auto_takes_beat_this_when_its_weights_are_there(models_dir, tmp_path):
    assert resolve_tracker("auto", str(models_dir)) == "beat_this"
    assert resolve_tracker("auto", str(tmp_path)) == "dsp"
    assert resolve_tracker("dsp", str(models_dir)) == "dsp"
    with pytest.raises(WeightsError, match="download beat_this"):
        resolve_tracker("beat_this", str(tmp_path))
    with pytest.raises(WeightsError, match="download beat_this"):
        Rhythm.Config(tracker="beat_this", models_dir=str(tmp_path))
    # the skip key follows what auto resolved to: weights that appear later redo the grid
    with_weights = Rhythm(Rhythm.Config(tracker="auto", models_dir=str(models_dir)))
    without = Rhythm(Rhythm.Config(tracker="auto", models_dir=str(tmp_path)))
    assert with_weights.config_hash != without.config_hash


def test_the_rhythm_extractor_runs_the_model(models_dir, tmp_path):
    x, sr = clicks()
    ctx = TrackContext({"mix": Path("<m>")}, loader=lambda _: Audio(x, sr))
    try:
        result = Rhythm(Rhythm.Config(tracker="auto", models_dir=str(models_dir))).compute(ctx)
    except Exception as exc:  # random weights may mark too few beats to make bars
        assert "beat tracker found" in str(exc) or "beats found" in str(exc) or "bars hold" in str(exc), exc
    else:
        assert result.values["beat_tracker"] == "beat_this"
    dsp = Rhythm(Rhythm.Config(tracker="auto", models_dir=str(tmp_path))).compute(
        TrackContext({"mix": Path("<m>")}, loader=lambda _: Audio(x, sr)))
    assert dsp.values["beat_tracker"] == "dsp"
    assert abs(dsp.values["bpm"] - 120.0) < 2.0


def _inputs(n_frames=2000, fps=43.07):
    return RhythmInputs(env=np.ones(n_frames, np.float32), bands={k: np.ones(n_frames, np.float32) for k in
                        ("low", "mid", "high")}, fps=fps, latency=1.0, chroma=np.ones((12, 10)),
                        bass_chroma=np.ones((12, 10)), chroma_hop_s=0.1)


def test_beats_and_downbeats_become_bars():
    beats = np.arange(0.5, 40.0, 0.5)
    downbeats = beats[1::3]  # 3/4, the first bar a pickup
    m = from_beats_and_downbeats(_inputs(), beats, downbeats)
    assert m.pulses_per_bar == 3 and m.beats_per_bar == 3 and not m.compound
    assert m.meter_confidence == 1.0
    assert m.tempo_confidence == 1.0  # perfectly even beats, no probabilities given
    assert m.downbeat_confidence == 1.0  # no downbeat probability: every bar as long as the others
    assert m.engine == "beat_this"
    prob = np.full(2000, 0.2)
    prob[np.round(beats * 50).astype(int)] = 0.9
    assert from_beats_and_downbeats(_inputs(), beats, downbeats, prob).tempo_confidence == pytest.approx(0.9)
    down = np.full(2000, 0.05)
    down[np.round(downbeats * 50).astype(int)] = np.where(np.arange(downbeats.size) % 2, 0.9, 0.5)
    assert from_beats_and_downbeats(_inputs(), beats, downbeats, prob, down).downbeat_confidence == \
        pytest.approx(0.7, abs=0.01)  # its own probability at its downbeats, half of them unsure
    odd = np.concatenate([beats[0:40:4], beats[40::3]])  # half the bars of 4, half of 3
    assert from_beats_and_downbeats(_inputs(), beats, odd).meter_confidence < 0.7


def test_the_model_is_listed():
    spec = find_model("beat_this")
    assert spec.files[0].path == "final0.ckpt" and spec.commercial_use
