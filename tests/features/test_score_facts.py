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
