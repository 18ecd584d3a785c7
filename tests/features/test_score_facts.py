"""The fact scorer's bookkeeping (tools/score_facts.py), on made-up estimates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import load_tool

score = load_tool("score_facts")


def truth(beats_per_bar: int) -> dict:
    beats = np.arange(0.0, 30.0, 0.5)
    return {"id": "t", "style": "x", "meter": f"{beats_per_bar}/4", "bpm": 120.0, "beats": beats.tolist(),
            "beats_per_bar": beats_per_bar}


def test_the_beat_error_is_how_far_the_hits_land_from_their_true_beats():
    t = truth(4)
    late = [b + 0.012 for b in t["beats"]]
    row = score.score_song(t, {"bpm": 120.0, "beats": late}, Path("unused.flac"))
    assert row["beat_err_ms"] == pytest.approx(12.0, abs=0.01)
    # Cemgil's accuracy pays for the 12 ms that beat F's window hides: exp(-12^2 / (2 * 40^2))
    assert row["beat_f"] == 1.0 and row["beat_cemgil"] == pytest.approx(np.exp(-0.045), abs=1e-3)
    # beats beyond the 70-ms window are misses, not errors: half the beats a quarter beat off
    half = [b + (0.125 if i % 2 else 0.004) for i, b in enumerate(t["beats"])]
    row = score.score_song(t, {"bpm": 120.0, "beats": half}, Path("unused.flac"))
    assert row["beat_err_ms"] == pytest.approx(4.0, abs=0.01) and row["beat_f"] == pytest.approx(0.5, abs=0.02)
    assert score.score_song(t, {"bpm": 120.0, "beats": []}, Path("unused.flac"))["beat_err_ms"] is None
    s = score.summarise([dict(row, beat_err_ms=4.0), dict(row, beat_err_ms=12.0), dict(row, beat_err_ms=None)])
    assert s["beat error of the hits, median of songs (ms)"] == "8.0"


@pytest.mark.parametrize("said, true, strict, notation", [
    (4, 4, True, True), (4, 2, False, True), (2, 4, False, True), (12, 6, False, True), (6, 12, False, True),
    (3, 6, False, False), (4, 3, False, False), (8, 4, False, False),
])
def test_meter_is_scored_strictly_and_up_to_notation(said, true, strict, notation):
    t = truth(true)
    row = score.score_song(t, {"bpm": 120.0, "beats": t["beats"], "beats_per_bar": said}, Path("unused.flac"))
    assert row["meter_ok"] is strict
    assert row["meter_notation_ok"] is notation
    assert row["acc1"] and row["beat_f"] == pytest.approx(1.0)
    summary = score.summarise([row])
    assert summary["meter"] == float(strict) and summary["meter up to notation"] == float(notation)


def test_the_last_bar_ends_a_crop_only_where_the_truth_holds_all_its_beats():
    beats = np.arange(0.0, 16.0, 0.5)  # 8 bars of 4 beats; the last bar's beats all there
    t = {"beats": beats.tolist(), "downbeats": beats[::4].tolist(), "pulses_per_bar": 4}
    np.testing.assert_allclose(score.bar_lines(t), np.arange(0.0, 16.5, 2.0))
    short = dict(t, beats=beats[:-1].tolist())  # the last bar lacks its fourth beat
    np.testing.assert_allclose(score.bar_lines(short), beats[::4])
    assert score.bar_lines(dict(t, pulses_per_bar=None)).size == 8


@pytest.mark.parametrize("late_s, late", [(0.015, True), (-0.004, False)])
def test_crops_starting_after_their_downbeats_notes_are_counted(tmp_path, late_s, late):
    import soundfile as sf

    sr = 44100
    t = np.arange(64 * sr) / sr
    sf.write(tmp_path / "mix.flac", (0.3 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32), sr)
    beats = np.arange(0.5, 63.0, 0.5)  # 4/4 at 120 BPM: a bar every 2 s from 0.5 s
    truth = {"id": "t", "style": "x", "meter": "4/4", "bpm": 120.0, "beats": beats.tolist(),
             "downbeats": beats[::4].tolist(), "beats_per_bar": 4, "pulses_per_bar": 4}
    est = {"bpm": 120.0, "beats": (beats + late_s).tolist(), "downbeats": (beats[::4] + late_s).tolist(),
           "beats_per_bar": 4, "values": {"tempo_confidence": 0.99, "meter_confidence": 0.99,
                                          "time_signature": "4/4"}}
    row = score.score_song(truth, est, tmp_path / "mix.flac")
    assert row["crops_good"] == row["crops"] >= 5  # 8-s crops of 4 bars, every one right
    # each cut lies on the zero crossing nearest the estimated downbeat (a 1 kHz tone: within 0.3 ms)
    assert row["crops_start_ms"] == pytest.approx(1000 * late_s, abs=0.3)
    assert row["crops_late"] == (row["crops"] if late else 0)
    summary = score.summarise([row])
    assert summary["div4 crops starting > 10 ms after their downbeat's notes"] == float(late)
    assert float(summary["div4 crop start from its downbeat, median of songs (ms)"]) == pytest.approx(
        1000 * late_s, abs=0.3)


def test_compare_scores_reads_back_what_the_scorer_wrote_and_names_the_songs_that_moved(tmp_path):
    import csv

    compare = load_tool("compare_scores")
    t = truth(4)
    right = score.score_song(t, {"bpm": 120.0, "beats": t["beats"], "beats_per_bar": 4}, Path("unused.flac"))
    wrong = score.score_song(t, {"bpm": 60.0, "beats": t["beats"][::2], "beats_per_bar": 3}, Path("unused.flac"))

    def write(path, rows):  # as score_facts --per-song writes them
        keys = sorted({k for r in rows for k in r})
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)

    rows = {"a": dict(right, id="a", engine="sat-mir"), "b": dict(right, id="b", engine="sat-mir")}
    write(tmp_path / "before.csv", [rows["a"], rows["b"], dict(wrong, id="a", engine="librosa")])
    write(tmp_path / "after.csv", [rows["a"], dict(wrong, id="b", engine="sat-mir")])
    before = compare.read_rows(tmp_path / "before.csv", "sat-mir")
    after = compare.read_rows(tmp_path / "after.csv", "sat-mir")
    assert sorted(before) == ["a", "b"] and before["a"]["meter_ok"] is True and before["a"]["acc1"] is True
    moved = compare.changed_songs(before, after)
    assert [m[0] for m in moved] == ["b"]
    assert "meter_ok True -> False" in moved[0][2] and "acc1 True -> False" in moved[0][2]
    s_before = score.summarise(list(before.values()))
    s_after = score.summarise(list(after.values()))
    assert s_before["meter"] == 1.0 and s_after["meter"] == 0.5
    assert s_before["tempo Acc1"] == 1.0 and s_after["tempo Acc1"] == 0.5
    assert s_after["beat F"] == pytest.approx((1.0 + wrong["beat_f"]) / 2)
