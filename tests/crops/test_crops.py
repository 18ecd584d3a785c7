"""Training crops: cut points on synthetic grids and on demo songs with known downbeats,
sample alignment of mix and stems, crop sidecars, resumability."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sat_mir.audio import load_audio
from sat_mir.catalog import scan_library
from sat_mir.crops import CropSettings, cut_track, plan_crops, snap_to_zero_crossing
from sat_mir.crops.plan import bar_multiple_for, no_crops_reason, pulses_per_bar
from sat_mir.errors import ConfigError
from sat_mir.store.sidecar import read_sidecar, sidecar_path

SR = 44100


def _noise(seconds: float, *, lead_in: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * SR)).astype(np.float32) * 0.1
    x[: int(lead_in * SR)] = 0.0
    return x


def _grid(bar_s: float, start: float, end: float) -> np.ndarray:
    return np.arange(start, end, bar_s)


# ------------------------------------------------------------------ planning on synthetic grids


def test_zero_crossing_snap_lands_on_a_sign_change_within_the_window():
    x = np.sin(2 * np.pi * 50 * np.arange(SR) / SR + 0.3).astype(np.float32)
    for pos in (1000, 12345, 30001):
        k = snap_to_zero_crossing(x, pos, 441)
        assert abs(k - pos) <= 441
        assert np.signbit(x[k]) != np.signbit(x[k - 1])
        b = snap_to_zero_crossing(x, pos, 441, before=True)  # a downbeat's cut: never after it
        assert pos - 441 <= b <= pos and np.signbit(x[b]) != np.signbit(x[b - 1])
    # this sine crosses at 840 and 1281: from 1200 the nearest is after, a downbeat's cut takes 840
    assert snap_to_zero_crossing(x, 1200, 441) == 1281 and snap_to_zero_crossing(x, 1200, 441, before=True) == 840
    dc = np.full(SR, 0.5, dtype=np.float32)
    assert snap_to_zero_crossing(dc, 1000, 441) == 1000  # nothing to snap to: stays


def test_div4_crops_hold_whole_multiples_of_four_bars():
    bar = 2.0  # 120 BPM 4/4
    grid = _grid(bar, 0.5, 60.0)
    x = _noise(60.0, lead_in=0.5)
    length = int(19.0 * SR)  # room for 9 bars: div4 must take 8, not 9 and not the seed's 7
    spans = plan_crops("div4", x, sr=SR, length=length, min_length=length // 2, downbeats_s=grid, snap=441)
    assert len(spans) == 3
    for s in spans:
        assert s.bars == 8
        assert s.frames <= length
        # cut points within the snap window of a grid downbeat
        assert min(abs(s.start - grid * SR)) <= 441 and min(abs(s.end - grid * SR)) <= 441
        assert round((s.grid_end - s.grid_start) / bar) == 8
    # consecutive crops: the next starts where the last ended
    assert all(a.grid_end == b.grid_start for a, b in zip(spans, spans[1:]))


def test_bars_of_two_beats_are_counted_in_pairs():
    assert [pulses_per_bar(b, t) for b, t in ((2, "2/4"), (4, "4/4"), (6, "6/8"), (12, "12/8"), (3, "3/4"),
                                               (9, "9/8"), (6, "6/4"), (None, None))] == [2, 4, 2, 4, 3, 3, 6, None]
    assert [bar_multiple_for(4, p) for p in (2, 3, 4, 5, None)] == [8, 4, 4, 4, 4]
    # a 4/4 song at 120 BPM read as 2/4: 8 of its half bars are 4 of its bars
    grid = _grid(1.0, 0.5, 60.0)
    x = _noise(60.0, lead_in=0.5)
    length = int(19.0 * SR)
    spans = plan_crops("div4", x, sr=SR, length=length, min_length=length // 2, downbeats_s=grid, snap=441,
                       bar_multiple=bar_multiple_for(4, 2))
    assert spans and all(s.bars == 16 and round(s.grid_end - s.grid_start) == 16 for s in spans)
    # the same song opening with a two-beat pickup: the pairs start on the second downbeat
    paired = plan_crops("div4", x, sr=SR, length=length, min_length=length // 2, downbeats_s=grid, snap=441,
                        bar_multiple=bar_multiple_for(4, 2), pair_phase=1)
    assert [s.grid_start for s in paired] == [s.grid_start + 1.0 for s in spans][: len(paired)]
    assert paired and all(s.bars == 16 for s in paired)


def test_beat_aligned_takes_every_whole_bar_that_fits_and_overlap_hops_half_a_crop():
    grid = _grid(2.0, 0.5, 60.0)
    x = _noise(60.0, lead_in=0.5, seed=1)
    length = int(19.0 * SR)
    aligned = plan_crops("beat_aligned", x, sr=SR, length=length, min_length=length // 2, downbeats_s=grid)
    assert [s.bars for s in aligned] == [9, 9, 9]
    over = plan_crops("overlap", x, sr=SR, length=length, min_length=length // 2, downbeats_s=grid)
    starts = [s.grid_start for s in over]
    # half a crop is 9.5 s: the nearest downbeat is 5 bars (10 s) on, never the same crop twice
    assert np.allclose(np.diff(starts), 10.0)
    assert len(over) > len(aligned)


def test_sequential_crops_are_exactly_length_from_the_first_sound():
    x = _noise(50.0, lead_in=3.0, seed=2)
    length = 10 * SR
    spans = plan_crops("sequential", x, sr=SR, length=length, min_length=length * 3 // 4, snap=0)
    # 47 s of sound: 4 full crops, the last 7 s are shorter than 7.5 s and dropped
    assert [s.frames for s in spans] == [length] * 4
    assert abs(spans[0].start - 3 * SR) <= int(0.1 * SR)
    assert all(b.start - a.start == length for a, b in zip(spans, spans[1:]))
    padded = plan_crops("sequential", x, sr=SR, length=length, min_length=length * 3 // 4, snap=0, short="pad")
    assert len(padded) == 5 and padded[-1].frames == length and padded[-1].pad > 0


def test_downbeat_modes_need_a_grid_and_bad_settings_are_refused():
    x = _noise(10.0)
    with pytest.raises(ConfigError, match="downbeat grid"):
        plan_crops("div4", x, sr=SR, length=SR * 4, min_length=SR, downbeats_s=np.array([1.0]))
    with pytest.raises(ConfigError, match="crops.mode"):
        plan_crops("bars", x, sr=SR, length=SR, min_length=SR)
    with pytest.raises(ConfigError, match="min_length"):
        plan_crops("sequential", x, sr=SR, length=SR, min_length=2 * SR)
    with pytest.raises(ConfigError, match="crops.fmt"):
        CropSettings(fmt="mp3")
    assert plan_crops("sequential", np.zeros(SR * 5, np.float32), sr=SR, length=SR, min_length=SR) == []


def test_a_plan_with_no_crop_says_why():
    length = int(11.9 * SR)
    half = length // 2
    # 25 s at 40 BPM 4/4 (6 s bars): four bars are 24 s, more than an 11.9 s crop
    x, grid = _noise(25.0), _grid(6.0, 0.0, 25.0)
    assert plan_crops("div4", x, sr=SR, length=length, min_length=half, downbeats_s=grid) == []
    why = no_crops_reason("div4", x, sr=SR, length=length, min_length=half, downbeats_s=grid)
    assert "4 bars of 6.00 s (24.0 s) do not fit in a crop of 11.9 s" in why
    # 5 s of sound: shorter than length × min_fraction
    short = _noise(5.0)
    assert plan_crops("sequential", short, sr=SR, length=length, min_length=half) == []
    assert "5.0 s of audio from its first sound is shorter than length × min_fraction = 6.0 s" in \
        no_crops_reason("sequential", short, sr=SR, length=length, min_length=half)
    # silence
    assert "louder than -72 dBFS" in no_crops_reason("div4", np.zeros(SR * 20, np.float32), sr=SR, length=length,
                                                      min_length=half, downbeats_s=grid)
    # a grid that stops early: 2 downbeats after the first sound
    assert "fewer than the 5 that 4 bars need" in no_crops_reason(
        "div4", _noise(20.0), sr=SR, length=length, min_length=half, downbeats_s=np.array([0.0, 2.0]))


# ------------------------------------------------------------------ demo songs with known downbeats


@pytest.fixture(scope="module")
def cut_demo(tmp_path_factory, demo_library):
    """Demo songs with features, then div4 crops in float WAV (no quantisation in the sum test)."""
    from sat_mir.features import build_extractors
    from sat_mir.run import run_extraction

    output = tmp_path_factory.mktemp("crops") / "out"
    tracks = scan_library(demo_library)
    extractors = build_extractors({"info": {}, "rhythm": {}})
    assert run_extraction(tracks, extractors, root=demo_library, output=output, jobs=1, progress=False).failed == 0
    settings = CropSettings(mode="div4", length=524288, min_fraction=0.5, fmt="wav", fade_ms=10.0)
    outcomes = {t.name: cut_track(t, output, settings) for t in tracks}
    assert all(o.error is None for o in outcomes.values()), {k: o.error for k, o in outcomes.items()}
    return output, tracks, settings, outcomes


def test_div4_crops_of_demo_songs_hold_multiples_of_four_true_bars(cut_demo, demo_truth):
    output, tracks, settings, outcomes = cut_demo
    n_crops = 0
    for t in tracks:
        truth = np.asarray(demo_truth[t.name]["downbeats"])
        snap_s = settings.snap_ms / 1000
        for crop in outcomes[t.name].crops:
            info = read_sidecar(sidecar_path(output, crop.id))["crop"]
            if outcomes[t.name].doubt:  # a grid below its confidence: no bar claimed (next test)
                assert info["mode"] == "sequential" and info["bars"] is None and info["grid_doubt"]
                continue
            n_crops += 1
            # every cut lies within the snap window of a true downbeat, plus 25 ms for the tracker
            # (its frame is 23 ms; the demo downbeats come out 15 to 3 ms early)
            for cut in (info["start_s"], info["end_s"]):
                assert np.min(np.abs(truth - cut)) <= snap_s + 0.025, (crop.id, cut)
            true_bars = int(np.sum((truth >= info["start_s"] - 0.05) & (truth < info["end_s"] - 0.05)))
            assert true_bars % 4 == 0 and true_bars >= 4, crop.id
            # the crop's bars are the meter read: a 4/4 song read as 2/4 (the same music) has
            # twice as many bars, which div4 counts in pairs
            said = read_sidecar(sidecar_path(output, crop.id))["inherited"]["beats_per_bar"]
            assert info["bars"] * said == true_bars * demo_truth[t.name]["beats_per_bar"], crop.id
            assert info["bars"] % (8 if said == 2 else 4) == 0
            assert info["samples"] <= settings.length
    assert n_crops >= 8  # every demo song whose grid is trusted gets crops (2-3 each)


def test_a_grid_below_its_confidence_is_not_cut_on(cut_demo):
    """The demo's 4/4 songs read as 2/4 have a meter confidence near 0.5: above the crops' default
    minimum (they cut the same crops either way), below 0.9, where they are cut in sequence
    unless crops.doubtful_grid says otherwise."""
    from dataclasses import replace

    from sat_mir.crops.plan import grid_doubt

    assert grid_doubt({"tempo_confidence": 0.95, "meter_confidence": 0.79}, {"tempo_confidence": 0.8,
                      "meter_confidence": 0.8}) == "meter_confidence 0.79 < 0.80"
    assert grid_doubt({"tempo_confidence": 0.8, "meter_confidence": 0.8}, {"tempo_confidence": 0.8}) is None
    assert grid_doubt({}, {"tempo_confidence": 0.8}) is None  # an older sidecar: nothing to doubt
    # a sure meter whose bar lines are a guess (a pickup taken for a downbeat) is not cut on either
    assert grid_doubt({"tempo_confidence": 0.95, "meter_confidence": 0.97, "downbeat_confidence": 0.55},
                      {"tempo_confidence": 0.8, "meter_confidence": 0.5, "downbeat_confidence": 0.7}) == \
        "downbeat_confidence 0.55 < 0.70"
    output, tracks, default, outcomes = cut_demo
    settings = replace(default, min_meter_confidence=0.9)
    strict = {t.name: cut_track(t, output, settings) for t in tracks}
    doubted = [t for t in tracks if strict[t.name].doubt]
    assert doubted and len(doubted) < len(tracks)
    for t in tracks:
        feats = read_sidecar(sidecar_path(output, t.id))["features"]
        low = (feats["tempo_confidence"] < 0.8 or feats["meter_confidence"] < 0.9
               or feats["downbeat_confidence"] < default.min_downbeat_confidence)
        assert bool(strict[t.name].doubt) == low, t.name
        if outcomes[t.name].doubt is None:  # the default minimums: the trusted grids are the same
            assert feats["tempo_confidence"] >= 0.8 and feats["meter_confidence"] >= 0.5
            assert feats["downbeat_confidence"] >= 0.7
    t = doubted[0]
    crops = strict[t.name].crops
    assert crops and all(read_sidecar(sidecar_path(output, c.id))["crop"]["mode"] == "sequential" for c in crops)
    # sequential: consecutive crops of exactly `length` samples
    assert all(read_sidecar(sidecar_path(output, c.id))["crop"]["samples"] == settings.length for c in crops)
    manifest = json.loads((output / "crops" / t.id / "crops.json").read_text())
    assert manifest["doubt"] == strict[t.name].doubt
    on_grid = cut_track(t, output, replace(settings, doubtful_grid="grid"))
    assert on_grid.cut and on_grid.doubt is None and on_grid.crops
    assert all(read_sidecar(sidecar_path(output, c.id))["crop"]["mode"] == "div4" for c in on_grid.crops)
    none = cut_track(t, output, replace(settings, doubtful_grid="none"))
    assert none.crops == [] and "beat grid is not trusted" in none.no_crops and "meter_confidence" in none.no_crops
    with pytest.raises(ConfigError, match="doubtful_grid"):
        replace(settings, doubtful_grid="maybe")
    with pytest.raises(ConfigError, match="min_meter_confidence"):
        replace(settings, min_meter_confidence=1.5)
    for t in tracks:  # back to the module's crops for the other tests
        cut_track(t, output, default)


def test_mix_and_stem_crops_stay_sample_aligned(cut_demo):
    output, tracks, settings, outcomes = cut_demo
    fade = int(settings.fade_ms / 1000 * SR)
    for t in tracks:
        mix = load_audio(t.mix).samples
        stem_sum = sum(load_audio(p).samples for p in t.stems.values())
        source_err = float(np.max(np.abs(mix - stem_sum)))  # the library's own FLAC rounding
        for crop in outcomes[t.name].crops:
            info = read_sidecar(sidecar_path(output, crop.id))["crop"]
            m = load_audio(crop.mix).samples
            s = sum(load_audio(p).samples for p in crop.stems.values())
            assert m.shape[1] == info["samples"] == info["end_sample"] - info["start_sample"]
            assert np.max(np.abs(m - s)) <= source_err + 1e-6
            # the crop is the track's samples at exactly [start, end), faded only at the ends
            inner = slice(fade, m.shape[1] - fade)
            ref = mix[:, info["start_sample"]:info["end_sample"]]
            np.testing.assert_allclose(m[:, inner], ref[:, inner], atol=1e-7)
            assert np.max(np.abs(m[:, 0])) <= np.max(np.abs(ref[:, 0])) / fade * 1.01 + 1e-7


def test_crop_sidecars_are_one_per_crop_with_local_tempo_and_inherited_values(cut_demo, demo_truth):
    output, tracks, settings, outcomes = cut_demo
    for t in tracks:
        crops = outcomes[t.name].crops
        ids = [c.id for c in crops]
        assert ids == [f"{t.id}_{i:03d}" for i in range(len(crops))]
        positions = []
        for crop in crops:
            data = read_sidecar(sidecar_path(output, crop.id))
            info, inherited = data["crop"], data["inherited"]
            assert info["source_track"] == t.id and info["mode"] == "div4"
            assert abs(info["bpm"] - demo_truth[t.name]["bpm"]) / demo_truth[t.name]["bpm"] < 0.02
            beats_per_bar = inherited["beats_per_bar"]  # 2/4 for a 4/4 song read in the other notation
            assert beats_per_bar == demo_truth[t.name]["beats_per_bar"] or (
                beats_per_bar, demo_truth[t.name]["beats_per_bar"]) == (2, 4)
            assert info["beat_count"] == info["bars"] * beats_per_bar and "track_duration_s" in inherited
            assert "bpm" not in inherited  # the track's bpm never stands in for the crop's own
            positions.append(info["position"])
        assert positions == sorted(positions) and 0 <= positions[0] < 0.1


def test_recut_is_skipped_until_settings_change_and_stale_crops_go(cut_demo):
    output, tracks, settings, outcomes = cut_demo
    t = tracks[0]
    again = cut_track(t, output, settings)
    assert not again.cut and [c.id for c in again.crops] == [c.id for c in outcomes[t.name].crops]
    longer = CropSettings(mode="beat_aligned", length=SR * 20, min_fraction=0.5, fmt="wav")
    changed = cut_track(t, output, longer)
    assert changed.cut and changed.error is None
    folder = output / "crops" / t.id
    kept = {c.id for c in changed.crops}
    on_disk = {p.name.split(".")[0].split("_")[0] + "_" + p.name.split("_")[1][:3]
               for p in folder.iterdir() if p.name.startswith(t.id + "_")}
    assert on_disk == kept
    manifest = json.loads((folder / "crops.json").read_text())
    assert manifest["config_hash"] == longer.config_hash
    cut_track(t, output, settings)  # back to the module's crops for the other tests


def test_a_downbeat_mode_without_rhythm_fails_with_a_clear_reason(tmp_path, demo_library):
    from sat_mir.features import build_extractors
    from sat_mir.run import run_extraction

    tracks = scan_library(demo_library)[:1]
    run_extraction(tracks, build_extractors({"info": {}}), root=demo_library, output=tmp_path, jobs=1,
                   progress=False)
    outcome = cut_track(tracks[0], tmp_path, CropSettings(mode="div4"))
    assert outcome.error and "rhythm extractor has not run" in outcome.error
    seq = cut_track(tracks[0], tmp_path, CropSettings(mode="sequential", length=SR * 8))
    assert seq.error is None and len(seq.crops) == 3  # 29.5 s, 0.5 s lead-in: 3 × 8 s, 5 s dropped
    assert seq.no_crops is None
    none = cut_track(tracks[0], tmp_path, CropSettings(mode="sequential", length=SR * 70))
    assert none.error is None and none.crops == [] and "29.0 s of audio from its first sound is shorter than length × min_fraction = 52.5 s" in none.no_crops
    again = cut_track(tracks[0], tmp_path, CropSettings(mode="sequential", length=SR * 70))
    assert not again.cut and again.no_crops == none.no_crops  # said again by every run, from crops.json


def test_a_track_with_no_beat_grid_is_cut_in_sequence(tmp_path, demo_library):
    """The rhythm extractor found no beat (a drone): with crops.doubtful_grid=sequential the
    track's audio is still cut, in sequence and with the reason; otherwise it is an error, as
    before."""
    from dataclasses import replace

    from sat_mir.features import build_extractors
    from sat_mir.run import run_extraction
    from sat_mir.store.sidecar import ExtractorRecord, merge_extractor

    tracks = scan_library(demo_library)[:1]
    run_extraction(tracks, build_extractors({"info": {}}), root=demo_library, output=tmp_path, jobs=1,
                   progress=False)
    merge_extractor(sidecar_path(tmp_path, tracks[0].id), extractor="rhythm", values={}, track={},
                    record=ExtractorRecord(version="1", config_hash="x", inputs={}, seconds=0.0,
                                           error="only 5 beats found (need at least 8)"))
    settings = CropSettings(mode="div4", length=SR * 8)
    cut = cut_track(tracks[0], tmp_path, settings)
    assert cut.error is None and cut.doubt == "no beat grid: only 5 beats found (need at least 8)"
    assert len(cut.crops) == 3  # as crops.mode=sequential cuts it (see the test above)
    info = read_sidecar(sidecar_path(tmp_path, cut.crops[0].id))["crop"]
    assert info["mode"] == "sequential" and info["bars"] is None and info["grid_doubt"] == cut.doubt
    assert "bpm" not in info  # no beats to count
    for policy in ("grid", "none"):
        failed = cut_track(tracks[0], tmp_path, replace(settings, doubtful_grid=policy))
        assert failed.error and "the rhythm extractor failed: only 5 beats" in failed.error


def test_target_crops_measures_only_the_crops(tmp_path, demo_library):
    """`target=crops` with a downbeat mode: the tracks get only the rhythm the cut needs."""
    from conftest import load_strict_json, run_extract

    out = tmp_path / "out"
    proc = run_extract("+dataset=mine", f"dataset.root={demo_library}", f"dataset.output={out}",
                       "extractors=[info,rhythm,loudness]", "crops=beat_aligned", "crops.length=441000",
                       "target=crops", "progress=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    track = load_strict_json(next((out / "tracks").iterdir()) / "features.json")
    assert set(track["provenance"]) == {"rhythm"}
    crops = sorted((out / "crops").glob("*/*/features.json"))
    assert len(crops) >= 8
    for path in crops:
        data = load_strict_json(path)
        assert set(data["provenance"]) == {"info", "rhythm", "loudness"}
        assert data["crop"]["mode"] == "beat_aligned" and data["crop"]["samples"] <= 441000
