"""Sources over full scale: normalised, rejected or clipped as peak_policy says, never
clipped silently, in crops and in training items alike."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from sat_mir.audio.headroom import CEILING, fit_full_scale, sample_peak
from sat_mir.build.chunks import write_item_audio
from sat_mir.build.corpus import BuildItem, CorpusTrack
from sat_mir.errors import AudioRangeError, ConfigError

SR = 44100


def _loud(seconds: float = 4.0, peak: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = np.sin(2 * np.pi * 220 * t) * peak
    return np.stack([x, 0.5 * x]).astype(np.float32)


def test_one_gain_for_a_mix_and_its_stems_and_in_range_audio_is_untouched():
    mix = _loud(peak=4.0)
    drums = mix * 0.25
    out, h = fit_full_scale({"mix": mix, "drums": drums}, "normalize")
    assert h.peak == pytest.approx(4.0, rel=1e-4)
    assert h.gain_db == pytest.approx(20 * np.log10(CEILING / 4.0), abs=1e-3)  # -12.14 dB
    assert np.max(np.abs(out["mix"])) == pytest.approx(CEILING, rel=1e-5)
    assert np.allclose(out["drums"], out["mix"] * 0.25, atol=1e-6)  # proportions kept
    quiet = {"mix": mix / 8}
    same, h0 = fit_full_scale(quiet, "normalize")
    assert same["mix"] is quiet["mix"] and h0.gain_db == 0.0 and not h0.changed
    clipped, hc = fit_full_scale({"mix": mix}, "clip")
    assert np.max(np.abs(clipped["mix"])) == 1.0 and hc.clipped == int(np.count_nonzero(np.abs(mix) > 1))
    with pytest.raises(AudioRangeError, match=r"peak 4\.000 \(\+12\.0 dBFS\).*peak_policy=reject"):
        fit_full_scale({"mix": mix}, "reject")
    with pytest.raises(ConfigError, match="peak_policy"):
        fit_full_scale({"mix": mix}, "limit")
    with pytest.raises(AudioRangeError, match="non-finite"):
        fit_full_scale({"mix": np.array([0.0, np.nan], np.float32)}, "normalize")


def _items(tmp_path):
    src = tmp_path / "loud.wav"
    sf.write(src, _loud().T, SR, subtype="FLOAT")  # a float WAV peaking at 4.0 (+12 dBFS)
    track = CorpusTrack(id="loud", name="loud", mix=src, features={}, errors={})
    return [BuildItem(id=f"loud-c{i}", track=track, index=i, start_s=2.0 * i, duration_s=2.0) for i in range(2)]


def test_training_items_from_a_source_over_full_scale(tmp_path, caplog):
    items = _items(tmp_path)
    with caplog.at_level(logging.WARNING, logger="sat_mir.build"):
        s = write_item_audio(items, tmp_path / "norm", sample_rate=SR, channels=2, progress=False)
    assert s.written == 2 and not s.failed and not s.left_out
    assert s.gains == {"loud-c0": pytest.approx(-12.14, abs=0.01), "loud-c1": pytest.approx(-12.14, abs=0.01)}
    assert sum("scaled by -12.14 dB (peak_policy=normalize)" in r.message for r in caplog.records) == 1
    for it in items:
        y, _ = sf.read(tmp_path / "norm" / f"{it.id}.flac", always_2d=True)
        assert np.max(np.abs(y)) == pytest.approx(CEILING, abs=1e-3)  # not clipped: scaled
        assert np.count_nonzero(np.abs(y) >= 0.9999) == 0
    rejected = write_item_audio(items, tmp_path / "rej", sample_rate=SR, channels=2, peak_policy="reject",
                                progress=False)
    assert rejected.written == 0 and set(rejected.left_out) == {"loud-c0", "loud-c1"}
    assert "over full scale" in rejected.left_out["loud-c0"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sat_mir.build"):
        clipped = write_item_audio(items, tmp_path / "clip", sample_rate=SR, channels=2, peak_policy="clip",
                                   progress=False)
    assert clipped.written == 2 and clipped.gains["loud-c0"] == 0.0
    assert any("samples clipped (peak_policy=clip)" in r.message for r in caplog.records)


def test_crops_of_a_source_over_full_scale_are_scaled_not_clipped(tmp_path):
    from sat_mir.catalog import scan_library
    from sat_mir.crops import CropSettings, cut_track
    from sat_mir.features import build_extractors
    from sat_mir.run import run_extraction
    from sat_mir.store.sidecar import read_sidecar, sidecar_path

    lib, out = tmp_path / "lib", tmp_path / "out"
    lib.mkdir()
    sf.write(lib / "loud.wav", _loud(seconds=12.0).T, SR, subtype="FLOAT")
    tracks = scan_library(lib)
    run_extraction(tracks, build_extractors({"info": {}}), root=lib, output=out, jobs=1, progress=False)
    cut = cut_track(tracks[0], out, CropSettings(mode="sequential", length=SR * 5, fade_ms=0.0))
    assert cut.error is None and len(cut.crops) == 2
    for crop in cut.crops:
        y, _ = sf.read(crop.mix, always_2d=True)
        assert np.max(np.abs(y)) == pytest.approx(CEILING, abs=1e-3)
        assert read_sidecar(sidecar_path(out, crop.id))["crop"]["gain_db"] == pytest.approx(-12.14, abs=0.01)
    rejected = cut_track(tracks[0], out, CropSettings(mode="sequential", length=SR * 5, peak_policy="reject"))
    assert rejected.error is None and rejected.crops == [] and "over full scale" in rejected.no_crops
    assert not list((out / "crops" / tracks[0].id).glob("*.flac"))  # the earlier crops are gone


def test_sample_peak_is_the_largest_absolute_sample():
    x = np.array([[0.25, -0.75, 0.5], [0.1, 0.2, -0.3]], dtype=np.float32)
    assert sample_peak(x) == 0.75
    assert sample_peak(-x) == 0.75
    assert sample_peak(np.zeros((2, 0), dtype=np.float32)) == 0.0
    assert np.isnan(sample_peak(np.array([0.5, np.nan, -0.9])))
