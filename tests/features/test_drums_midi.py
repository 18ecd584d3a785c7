"""Drum transcription to MIDI: ADTOF's front end, network loading, peak picking and the MIDI file."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from conftest import load_tool

from sat_mir.audio.context import TrackContext
from sat_mir.audio.decode import Audio, load_audio
from sat_mir.errors import ConfigError, WeightsError
from sat_mir.features.drums_midi import DrumHit, DrumsMidi, drum_midi_bytes
from sat_mir.features.metrical import tempo_from_beats
from sat_mir.models import adtof, adtof_net, default_models_dir
from sat_mir.models.cache import ModelCache

SR = adtof.SAMPLE_RATE


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("models")
    load_tool("make_tiny_adtof").make_tiny_adtof(root, seed=0)
    return root


@pytest.fixture(scope="module")
def transcriber(models_dir) -> adtof.Transcriber:
    return adtof.load_transcriber(models_dir, "cpu")


def _song(lib: Path, title: str, seconds: float = 12.0) -> TrackContext:
    """A demo song's mix and stems, cut to their first ``seconds`` to keep the tests fast."""
    folder = lib / title

    def first_seconds(path: Path) -> Audio:
        audio = load_audio(path)
        return Audio(np.ascontiguousarray(audio.samples[:, : int(seconds * audio.sr)]), audio.sr)

    return TrackContext({"mix": folder / "full_mix.flac",
                         **{s: folder / f"{s}.flac" for s in ("drums", "bass", "other", "vocals")}},
                        loader=first_seconds)


def _read_midi(data: bytes) -> tuple[mido.MidiFile, int, list[tuple[float, int, int, int]]]:
    """(file, tempo, [(time_s, note, velocity, channel) of each note_on])."""
    mid = mido.MidiFile(file=io.BytesIO(data))
    tempo, now, notes = None, 0.0, []
    for msg in mido.merge_tracks(mid.tracks):
        now += mido.tick2second(msg.time, mid.ticks_per_beat, tempo or 500000)
        if msg.type == "set_tempo":
            assert now == 0.0 and tempo is None  # one tempo, at the start
            tempo = msg.tempo
        elif msg.type == "note_on" and msg.velocity > 0:
            notes.append((now, msg.note, msg.velocity, msg.channel))
    return mid, tempo, notes


# --------------------------------------------------------------------------- front end


def test_front_end_has_84_bands_at_100_fps():
    bank = adtof.log_filterbank()
    assert bank.shape == (adtof.N_BINS, 1024) == (84, 1024)
    np.testing.assert_allclose(bank.sum(axis=1), 1.0, rtol=1e-5)  # area-normalised triangles
    assert np.all(np.diff(bank.argmax(axis=1)) > 0)  # band centres rise with the band index
    front = adtof.LogFilteredSpectrogram()
    for seconds in (1.0, 2.345):
        n = int(seconds * SR)
        spec, frames = front(torch.zeros(1, n), torch.tensor([n]))
        assert spec.shape == (1, int(np.ceil(n / 441)), 84) and int(frames[0]) == spec.shape[1]
    assert spec.shape[1] / seconds == pytest.approx(adtof.FPS, abs=0.5)


def test_front_end_puts_a_tone_in_its_band_and_an_impulse_at_its_frame():
    front = adtof.LogFilteredSpectrogram()
    bank = adtof.log_filterbank()
    t = np.arange(SR) / SR
    tone = torch.from_numpy((0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32))[None]
    spec, _ = front(tone, torch.tensor([SR]))
    band = int(spec[0, 50].argmax())
    centre_hz = bank[band].argmax() * SR / 2048
    assert abs(np.log2(centre_hz / 1000.0)) < 1 / 12  # within a semitone
    click = np.zeros(SR, np.float32)
    click[int(0.503 * SR)] = 1.0  # frame centres every 10 ms: 0.503 s lies nearest frame 50
    spec, _ = front(torch.from_numpy(click)[None], torch.tensor([SR]))
    energy = spec[0].sum(dim=1).numpy()
    assert {int(np.argmax(energy))} <= {50, 51} and energy[:20].max() == 0.0


# --------------------------------------------------------------------------- peak picking + MIDI


def _synthetic_hits() -> list[tuple[float, int]]:
    """(time_s, class index) of a two-bar kick/snare/hi-hat pattern at 100 BPM, off the frame grid."""
    beat = 0.6
    hits = []
    for i in range(8):
        t = 0.253 + i * beat
        hits.append((t, 0 if i % 2 == 0 else 1))  # kick on 1 and 3, snare on 2 and 4
        hits += [(t, 3), (t + beat / 2 + 0.004, 3)]  # eighth-note hats
    return hits


def _activations_for(hits, frames: int) -> np.ndarray:
    """Smoothed impulses at each hit's frame, like a network's output, over a low noise floor."""
    act = 0.02 * np.random.default_rng(3).random((frames, 5))
    shape = np.array([0.15, 0.9, 0.45, 0.2, 0.08])  # peak one frame after the rise
    for t, c in hits:
        f = round(t * adtof.FPS)
        act[f - 1: f + 4, c] = np.maximum(act[f - 1: f + 4, c], shape)
    return act


def test_peak_picking_matches_the_madmom_definition():
    """Brute force over the documented windows equals the vectorised picker."""
    rng = np.random.default_rng(7)
    act = np.clip(rng.random((400, 5)) ** 3 + 0.3 * (rng.random((400, 5)) > 0.97), 0, 1)
    act[90:112, 2] = 0.0
    act[100:102, 2] = 0.9  # a two-frame plateau: both frames peak, the combine step keeps the first
    got = adtof.pick_onsets(act)
    for c, thr in enumerate(adtof.THRESHOLDS):
        x = np.concatenate([np.zeros(10), act[:, c], np.zeros(1)])
        avg = np.array([x[i: i + 12].mean() for i in range(400)])
        det = act[:, c] * (act[:, c] >= avg + thr)
        d = np.concatenate([np.zeros(2), det, np.zeros(1)])
        peak = np.array([det[i] > 0 and det[i] == d[i: i + 4].max() for i in range(400)])
        kept = []
        for f in np.flatnonzero(peak):
            if not kept or f - kept[-1] > 2:
                kept.append(f)
        np.testing.assert_array_equal(got[c][0], kept)
        np.testing.assert_allclose(got[c][1], act[kept, c])
    assert 101 not in got[2][0] and 100 in got[2][0]


def test_known_hits_come_back_from_the_midi_file():
    hits = _synthetic_hits()
    act = _activations_for(hits, frames=600)
    picked = adtof.pick_onsets(act)
    beats = 0.253 + 0.6 * np.arange(12) + np.random.default_rng(0).normal(0, 0.004, 12)
    tempo_bpm = tempo_from_beats(beats)
    assert tempo_bpm == pytest.approx(100.0, abs=1.5)
    notes = [DrumHit(f / adtof.FPS, adtof.GM_NOTES[c], 100) for c, (frames, _) in enumerate(picked) for f in frames]
    mid, tempo, got = _read_midi(drum_midi_bytes(notes, tempo_bpm=tempo_bpm, ticks_per_beat=480))
    assert mid.type == 0 and mid.ticks_per_beat == 480
    assert tempo == round(mido.bpm2tempo(tempo_bpm))
    assert len(got) == len(hits)
    assert {ch for *_, ch in got} == {9}  # MIDI channel 10
    for c, note in enumerate(adtof.GM_NOTES):
        truth = sorted(t for t, k in hits if k == c)
        est = sorted(t for t, n, _, _ in got if n == note)
        assert len(est) == len(truth), (note, est, truth)
        assert np.max(np.abs(np.subtract(est, truth)), initial=0.0) <= 0.010
    assert {n for _, n, _, _ in got} == {35, 38, 42}


def test_midi_notes_are_short_and_never_overlap_on_one_key():
    hits = [DrumHit(1.0, 42, 90), DrumHit(1.03, 42, 70), DrumHit(2.0, 36, 127)]
    data = drum_midi_bytes(hits, tempo_bpm=137.0, note_s=0.05)
    mid = mido.MidiFile(file=io.BytesIO(data))
    tempo = round(mido.bpm2tempo(137.0))
    now, open_at, spans = 0, {}, []
    for msg in mido.merge_tracks(mid.tracks):
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            assert msg.note not in open_at  # the previous note of this key has ended
            open_at[msg.note] = now
        elif msg.type in ("note_off", "note_on"):
            spans.append((msg.note, mido.tick2second(now - open_at.pop(msg.note), 480, tempo)))
    assert not open_at
    assert sorted(round(s, 3) for _, s in spans) == [0.03, 0.05, 0.05]
    with pytest.raises(ValueError, match="hit"):
        drum_midi_bytes([DrumHit(-1.0, 36, 100)])


# --------------------------------------------------------------------------- model path


def test_stand_in_checkpoint_has_the_converted_layout(models_dir, tmp_path):
    path = models_dir / "adtof" / adtof.WEIGHTS_FILE
    assert path.stat().st_size < 5_000_000
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert set(ckpt) == {"model_weights", "model_info"} and ckpt["model_info"]["n_bins"] == 84
    w = ckpt["model_weights"]
    assert len(w) == 50 and all(v.dtype == torch.float64 for v in w.values())
    assert w["cnn_blocks.0.2.running_var"].shape == (32,) and w["gru_layers.0.weight_ih_l0"].shape == (180, 640)
    assert w["gru_layers.2.bias_hh_l0_reverse"].shape == (180,) and w["output_layer.weight"].shape == (5, 120)
    again = load_tool("make_tiny_adtof").make_tiny_adtof(tmp_path, seed=0)
    assert again.read_bytes() == path.read_bytes()  # same seed, same bytes


def test_extractor_end_to_end_on_a_demo_drum_stem(models_dir, demo_library, caplog, monkeypatch):
    ex = DrumsMidi(DrumsMidi.Config(models_dir=str(models_dir), device="cpu"))
    ex.preflight()
    monkeypatch.setattr(adtof_net, "_CACHE", ModelCache())
    first = _song(demo_library, "Demo 01 - Sunrise")
    with caplog.at_level(logging.INFO, logger="sat_mir.models.adtof"):
        res = ex.compute(first)
        again = ex.compute(first)
    loads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loaded adtof")]
    assert loads == [f"loaded adtof from {models_dir / 'adtof'} on cpu"]  # once per process
    assert again.values == res.values and again.artifacts == res.artifacts  # same input, same output
    assert set(res.values) == {s.key for s in ex.outputs} and not res.absent
    assert ex.check(res) == {}
    assert all(isinstance(res.values[f"drum_onsets_{c}"], int) for c in adtof.CLASSES)
    _mid, tempo, notes = _read_midi(res.artifacts["drums.mid"])
    assert 100 <= mido.tempo2bpm(tempo) <= 140  # the mix's beat grid (120 BPM song)
    assert len(notes) == sum(res.values[f"drum_onsets_{c}"] for c in adtof.CLASSES)
    assert all(n in adtof.GM_NOTES and ch == 9 for _, n, _, ch in notes)

    # velocity from the activation at each onset, on synthetic activations (reuses the mix's beats)
    hits = _synthetic_hits()
    act = _activations_for(hits, frames=1200)
    by_act = DrumsMidi(DrumsMidi.Config(velocity="activation"))._result(first, act, 12.0)
    assert by_act.values["drum_onsets_kick"] == 4 and by_act.values["drum_onsets_per_min_kick"] == 20.0
    _, _, vel_notes = _read_midi(by_act.artifacts["drums.mid"])
    assert {v for *_, v, _ in vel_notes} == {round(1 + 126 * 0.9)}

    # batching two items of different lengths changes neither result
    second = _song(demo_library, "Demo 02 - Night Drive")
    alone = ex.compute(second)
    batch = ex.compute_batch([first, second])
    assert batch[0].values == res.values and batch[0].artifacts == res.artifacts
    assert batch[1].values == alone.values and batch[1].artifacts == alone.artifacts
    assert alone.artifacts != res.artifacts  # another song: other tempo and note times


def test_activations_follow_the_input_and_batching_is_exact(transcriber, demo_library):
    drums = _song(demo_library, "Demo 01 - Sunrise").stem("drums").mono_at(SR)[: 6 * SR]
    other = _song(demo_library, "Demo 03 - Waltz").stem("drums").mono_at(SR)[: 4 * SR + 123]
    a, b = transcriber.activations([drums, other])
    assert a.shape == (600, 5) and b.shape == (int(np.ceil((4 * SR + 123) / 441)), 5)
    assert a.dtype == np.float32 and 0.0 <= a.min() and a.max() <= 1.0
    (alone,) = transcriber.activations([other])
    np.testing.assert_allclose(b, alone, atol=2e-6)  # padding to the longer item changes nothing
    np.testing.assert_array_equal(transcriber.activations([drums])[0], transcriber.activations([drums])[0])
    assert np.abs(a[:400] - transcriber.activations([other[: 4 * SR]])[0]).max() > 1e-3
    quieter = transcriber.activations([0.25 * drums])[0]
    assert np.abs(quieter - a).max() > 1e-3  # the log spectrogram sees the level


def test_chunked_cnn_equals_one_pass(transcriber):
    rng = np.random.default_rng(1)
    spec = torch.from_numpy(rng.random((2, 230, 84)).astype(np.float32))
    n = torch.tensor([230, 171])
    with torch.inference_mode():
        whole = transcriber.net(spec, n, chunk=10_000)
        pieces = transcriber.net(spec, n, chunk=37)
    torch.testing.assert_close(pieces, whole, atol=1e-5, rtol=0)


def test_track_without_drums_is_absent_not_an_error(models_dir, demo_library):
    folder = demo_library / "Demo 04 - Steps"
    ctx = TrackContext({"mix": folder / "full_mix.flac", "bass": folder / "bass.flac"})
    res = DrumsMidi(DrumsMidi.Config(models_dir=str(models_dir), device="cpu")).compute(ctx)
    assert not res.values and not res.artifacts
    assert set(res.absent) == {s.key for s in DrumsMidi.outputs}
    assert "no drums stem" in res.absent["drum_onsets_kick"]


# --------------------------------------------------------------------------- weights and config


def test_missing_weights_name_the_file_and_the_download_command(tmp_path, demo_library, no_network):
    ex = DrumsMidi(DrumsMidi.Config(models_dir=str(tmp_path), device="cpu"))
    with pytest.raises(WeightsError, match=r"adtof_frame_rnn_pytorch_weights\.pth.*python -m sat_mir\.models "
                                           r"download adtof"):
        ex.preflight()
    (result,) = ex.compute_batch([_song(demo_library, "Demo 02 - Night Drive")])
    assert isinstance(result, WeightsError)


def test_a_checkpoint_of_another_shape_is_refused(tmp_path, models_dir):
    ckpt = torch.load(models_dir / "adtof" / adtof.WEIGHTS_FILE, map_location="cpu", weights_only=True)
    ckpt["model_weights"]["gru_layers.0.weight_ih_l0"] = torch.zeros(180, 1216, dtype=torch.float64)  # 168 bins
    del ckpt["model_weights"]["output_layer.bias"]
    (tmp_path / "adtof").mkdir()
    torch.save(ckpt, tmp_path / "adtof" / adtof.WEIGHTS_FILE)
    with pytest.raises(WeightsError, match=r"missing \['head\.bias'\].*rnn\.0\.weight_ih_l0 \(180, 1216\)"):
        adtof.load_transcriber(tmp_path, "cpu")
    (tmp_path / "adtof" / adtof.WEIGHTS_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        adtof.load_transcriber(tmp_path, "cpu")


def test_config_is_validated():
    with pytest.raises(ConfigError, match="thresholds"):
        DrumsMidi.from_mapping({"thresholds": [0.2, 0.3]})
    with pytest.raises(ConfigError, match="velocity"):
        DrumsMidi.from_mapping({"velocity": "loud"})
    ex = DrumsMidi.from_mapping({"thresholds": [0.1, 0.2, 0.3, 0.4, 0.5], "velocity": "activation"})
    assert ex.config.thresholds == (0.1, 0.2, 0.3, 0.4, 0.5)


# --------------------------------------------------------------------------- real weights


@pytest.mark.skipif(not (default_models_dir() / "adtof" / adtof.WEIGHTS_FILE).is_file(),
                    reason="needs the real ADTOF weights: python -m sat_mir.models download adtof")
def test_real_weights_transcribe_the_demo_drums(demo_library, demo_truth):
    title = "Demo 02 - Night Drive"
    res = DrumsMidi(DrumsMidi.Config(device="auto")).compute(_song(demo_library, title, seconds=60.0))
    truth = demo_truth[title]
    beats = np.asarray(truth["beats"])
    pos = np.arange(beats.size) % truth["beats_per_bar"]
    expected = {35: beats[pos % 2 == 0], 38: beats[pos % 2 == 1],
                42: np.sort(np.concatenate([beats, beats + 30.0 / truth["bpm"]]))}
    _, _, notes = _read_midi(res.artifacts["drums.mid"])
    for note, ref in expected.items():
        est = np.array(sorted(t for t, n, _, _ in notes if n == note))
        assert est.size == ref.size
        assert np.max(np.abs(est - ref)) <= 0.03
    assert res.values["drum_onsets_toms"] == 0 and res.values["drum_onsets_cymbal"] == 0
