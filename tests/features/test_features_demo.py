"""Loudness and rhythm extractors against the demo songs' ground truth."""

import numpy as np
import pytest

from sat_mir.audio import TrackContext
from sat_mir.catalog import scan_library
from sat_mir.demo import DEMO_SONGS, render_song
from sat_mir.features.bs1770 import integrated_loudness
from sat_mir.features.loudness import Loudness
from sat_mir.features.rhythm import BEATS_FILE, DOWNBEATS_FILE, Rhythm

SONGS = [s.title for s in DEMO_SONGS]


@pytest.fixture(scope="module")
def contexts(demo_library):
    return {t.name: TrackContext(t.sources) for t in scan_library(demo_library)}


@pytest.mark.parametrize("title", SONGS)
def test_stem_loudness_is_the_loudness_of_the_stem_rendered_alone(contexts, title):
    result = Loudness().compute(contexts[title])
    spec = next(s for s in DEMO_SONGS if s.title == title)
    stems, _ = render_song(spec)
    for name, audio in stems.items():
        alone = integrated_loudness(audio, 44100)
        assert result.values[f"lufs_{name}"] == pytest.approx(alone, abs=0.1), name
        assert result.values[f"lufs_{name}"] < result.values["lufs"]
    assert all(np.isfinite(v) for v in result.values.values())
    assert set(result.values) >= {"lufs", "lra"} | {f"lra_{s}" for s in stems}


def test_a_silent_stem_has_no_loudness_and_says_why(tmp_path, contexts):
    from sat_mir.audio import write_audio

    mix = contexts[SONGS[0]].mix
    write_audio(tmp_path / "mix.flac", mix.samples, sr=mix.sr)
    write_audio(tmp_path / "vocals.flac", np.zeros_like(mix.samples), sr=mix.sr)
    result = Loudness().compute(TrackContext({"mix": tmp_path / "mix.flac", "vocals": tmp_path / "vocals.flac"}))
    assert "lufs_vocals" not in result.values
    assert "silent" in result.absent["lufs_vocals"]


@pytest.mark.parametrize("title", SONGS)
def test_tempo_within_2_percent_and_beats_on_the_true_grid(contexts, demo_truth, title):
    truth = demo_truth[title]
    result = Rhythm().compute(contexts[title])
    assert result.values["bpm"] == pytest.approx(truth["bpm"], rel=0.02)
    beats = np.array([float(x) for x in result.artifacts[BEATS_FILE].split()])
    assert result.values["beat_count"] == beats.size
    true_beats = np.array(truth["beats"])
    # beat F-measure style check: true beats (after 5 s, as mir_eval does) found within 70 ms
    scored = true_beats[true_beats > 5.0]
    hits = np.min(np.abs(scored[:, None] - beats[None, :]), axis=1) <= 0.07
    assert hits.mean() >= 0.9


@pytest.mark.parametrize("title", SONGS)
def test_meter_and_downbeats_of_the_demo_songs(contexts, demo_truth, title):
    truth = demo_truth[title]
    result = Rhythm().compute(contexts[title])
    found = np.array([float(x) for x in result.artifacts[DOWNBEATS_FILE].split()])
    true = np.array(truth["downbeats"])
    hits = np.min(np.abs(true[:, None] - found[None, :]), axis=1) <= 0.07
    precision = np.mean(np.min(np.abs(found[:, None] - true[None, :]), axis=1) <= 0.07)
    assert hits.mean() >= 0.9  # every bar line found
    said = result.values["beats_per_bar"]
    if said == truth["beats_per_bar"]:
        assert precision >= 0.9
    else:
        # the same music in another notation (a 4/4 backbeat is two bars of 2/4), every bar line
        # found.  Since the bar models read the kick's place in the bar (stop 46) the demo's 4/4
        # songs, whose kick strikes 1 and 3 alike, read 2/4, one of them at 0.83, above the
        # meter's minimum (before: 0.50-0.54, none stated; docs/eval.md, "The kick's place in the
        # bar", measures what a kick on 1 and 3 alike costs on rendered songs)
        assert (said, truth["beats_per_bar"]) == (2, 4), said
        assert result.values["meter_confidence"] < 0.9
        assert precision >= 0.45  # half the bar lines of 2/4 are 4/4's


def test_every_cpu_extractor_on_every_demo_song_is_finite_and_in_range(contexts):
    from sat_mir.features import REGISTRY

    for name, cls in sorted(REGISTRY.items()):
        if cls.device != "cpu":
            continue
        for title, ctx in contexts.items():
            result = cls().compute(ctx)
            assert cls().check(result) == {}, (name, title)  # check() also refuses NaN and undeclared keys
            assert result.values, (name, title)


def test_a_quiet_stem_reads_below_the_seeds_minus_40_lufs_floor(tmp_path, contexts):
    from sat_mir.audio import write_audio

    mix = contexts[SONGS[1]].mix
    write_audio(tmp_path / "mix.flac", mix.samples, sr=mix.sr)
    write_audio(tmp_path / "vocals.flac", mix.samples * 10 ** (-40 / 20), sr=mix.sr)  # 40 dB under the mix
    result = Loudness().compute(TrackContext({"mix": tmp_path / "mix.flac", "vocals": tmp_path / "vocals.flac"}))
    assert result.values["lufs_vocals"] == pytest.approx(result.values["lufs"] - 40.0, abs=0.1)
    assert result.values["lufs_vocals"] < -50.0  # the seed clamped stem LUFS at -40
