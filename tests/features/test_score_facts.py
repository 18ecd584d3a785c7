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
