"""Rhythm against synthesised ground truth: tempo over 70–180 BPM, downbeats, onsets, and the seed's bugs."""

from pathlib import Path

import numpy as np
import pytest

from sat_mir.audio import TrackContext
from conftest import MIN_CONFIDENCE
from sat_mir.audio.decode import Audio
from sat_mir.demo import SongSpec, render_song
from sat_mir.features.rhythm import DOWNBEATS_FILE, ONSETS_FILE, Rhythm, StemRhythm, onset_statistics

SR = 22050


def ctx_of(stems: dict[str, np.ndarray], sr: int = SR) -> TrackContext:
    signals = {"mix": sum(stems.values()), **stems}
    return TrackContext({k: Path(f"<{k}>") for k in signals},
                        loader=lambda p: Audio(np.atleast_2d(signals[p.name.strip("<>")]).astype(np.float32), sr))


def song(bpm: float, beats_per_bar: int, i: int, seconds: float = 16.0):
    bars = max(4, int(round(seconds / (beats_per_bar * 60.0 / bpm))))
    spec = SongSpec(f"s{i}", bpm=bpm, beats_per_bar=beats_per_bar, tonic=i % 12,
                    mode="major" if i % 2 else "minor", bars=bars, seed=100 + i)
    return render_song(spec, sr=SR)


TEMPI = [70, 76, 82, 88, 94, 100, 106, 112, 118, 124, 130, 136, 142, 148, 154, 160, 166, 172, 180]


@pytest.fixture(scope="module")
def tempo_set():
    out = []
    for i, bpm in enumerate(TEMPI):
        stems, truth = song(float(bpm), 4 if i % 3 else 3, i)
        out.append((truth, Rhythm().compute(ctx_of(stems))))
    return out


def stated(result, confidence_key: str) -> bool:
    """Whether the build states the fact: its confidence reaches conf/build.yaml's minimum."""
    return result.values[confidence_key] >= MIN_CONFIDENCE[confidence_key]


def test_tempo_within_2_percent_on_at_least_95_percent_of_70_to_180_bpm(tempo_set):
    ok = [abs(r.values["bpm"] / t.bpm - 1) <= 0.02 for t, r in tempo_set]
    said = [stated(r, "tempo_confidence") for _, r in tempo_set]
    misses = [(t.bpm, r.values["bpm"], r.values["tempo_confidence"]) for (t, r), good in zip(tempo_set, ok)
              if not good]
    # what reaches a prompt must be right; a fast song's half-time reading may be measured but not stated
    assert all(good for good, s in zip(ok, said) if s), misses
    # measured: 17 of 19 within 2 %, 15 stated; the misses are the 166 and 172 BPM backbeats read
    # at half tempo (a half-time feel), neither stated.  (Before the kick band joined the beat
    # level's evidence, 18 of 19 and 16; it gained 2.5 points of Acc1 on held-out renders.)
    assert np.mean(said) >= 0.75 and np.mean(ok) >= 0.85, misses


def test_downbeat_f_measure_on_4_4_songs(tempo_set):
    fs, recalls = [], []
    for truth, result in tempo_set:
        # bar lines are only as good as the beats under them: a meter stated over a half-time
        # beat (tempo not stated) is still the right time signature, but its bars are twice as long
        if truth.beats_per_bar != 4 or not (stated(result, "meter_confidence") and stated(result, "tempo_confidence")):
            continue
        # a stated meter is right up to notation (2/4 for 4/4 halves each bar: every true bar
        # line is still found)
        assert result.values["beats_per_bar"] in (2, 4), truth.bpm
        found = np.array([float(x) for x in result.artifacts[DOWNBEATS_FILE].split()])
        true = np.array(truth.downbeats)
        recall = np.mean(np.min(np.abs(true[:, None] - found[None, :]), axis=1) <= 0.07)
        recalls.append(recall)
        if result.values["beats_per_bar"] == 4:
            precision = np.mean(np.min(np.abs(found[:, None] - true[None, :]), axis=1) <= 0.07)
            fs.append(2 * precision * recall / max(precision + recall, 1e-9))
    # these songs come from the demo's synthesiser, which the metrical model never saw, and it is
    # under-confident there: facts are left out rather than stated wrong.  Measured since the
    # bar models read the kick's place in the bar (stop 46): 1 of the 13 4/4 songs stated (meter
    # and tempo confidence at least 0.8), the 76 BPM one, read 2/4 at 0.84 with every true bar
    # line found; 8 of the 13 read 2/4, the others below the minimum: the demo's kick strikes 1
    # and 3 alike (docs/eval.md: the same kick on 1 and 3 in rendered songs).  Before, 2 stated,
    # both 4/4 with F = 1, and all 13 read 4/4.  On the rendered and human-composed corpora the
    # meters stated are right more often than before (the mix alone: 92.3 -> 97.6 % of sel's,
    # 66.7 -> 90.3 % of human's).
    assert recalls and min(recalls) >= 0.95, recalls
    assert not fs or (np.mean(fs) >= 0.9 and min(fs) >= 0.8), fs


def test_meter_of_3_4_songs(tempo_set):
    three = [r.values["beats_per_bar"] for t, r in tempo_set if t.beats_per_bar == 3]
    assert np.mean(np.array(three) == 3) >= 0.8


@pytest.mark.parametrize("rate_hz,seconds", [(2.0, 20.0), (4.0, 15.0), (6.5, 12.0)])
def test_onset_count_on_click_tracks_within_5_percent(rate_hz, seconds):
    x = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.01 * SR)) / SR
    click = np.sin(2 * np.pi * 2000 * t) * np.exp(-t / 0.002)
    starts = (np.arange(0.25, seconds - 0.1, 1.0 / rate_hz) * SR).astype(int)
    for s in starts:
        x[s : s + click.size] += click
    result = Rhythm().compute(ctx_of({"mix": x})) if False else Rhythm().compute(
        TrackContext({"mix": Path("<m>")}, loader=lambda _: Audio(x[None, :], SR)))
    assert result.values["onset_count"] == pytest.approx(starts.size, rel=0.05)
    found = np.array([float(v) for v in result.artifacts[ONSETS_FILE].split()])
    assert np.median(np.min(np.abs(found[:, None] - starts[None, :] / SR), axis=1)) < 0.03


def test_syncopation_is_strength_weighted_not_one_minus_on_beat_ratio():
    beats = np.arange(0.0, 8.0, 0.5)
    onsets = np.concatenate([beats, beats[:-1] + 0.25])  # every beat, plus every off-beat
    strong_off = np.concatenate([np.full(beats.size, 1.0), np.full(beats.size - 1, 3.0)])
    weak_off = np.concatenate([np.full(beats.size, 1.0), np.full(beats.size - 1, 0.2)])
    a = onset_statistics(onsets, strong_off, beats)
    b = onset_statistics(onsets, weak_off, beats)
    assert a["on_beat_ratio"] == b["on_beat_ratio"]  # the same onsets on the beat
    assert a["syncopation"] > 0.7 and b["syncopation"] < 0.2  # but very different syncopation
    assert a["syncopation"] != pytest.approx(1 - a["on_beat_ratio"], abs=0.05)


def test_complexity_reaches_its_whole_range():
    # maximally spread inter-onset intervals: entropy term near 1 (the seed's never passed 0.78)
    rng = np.random.default_rng(0)
    onsets = np.cumsum(rng.uniform(0.05, 1.0, 2000))
    stats = onset_statistics(onsets, np.ones(onsets.size), np.array([]))
    assert stats["rhythmic_complexity"] > 0.55
    entropy_term = 2 * stats["rhythmic_complexity"] - min(np.std(np.diff(onsets)) / np.mean(np.diff(onsets)) / 2, 1)
    assert entropy_term > 0.9


def test_beat_regularity_is_a_score_and_the_grid_files_exist(tempo_set):
    for _, result in tempo_set:
        assert 0.9 <= result.values["beat_regularity"] <= 1.0  # synthetic songs: perfectly even
        assert result.values["bpm_is_defined"] == 1
        assert Rhythm().check(result) == {}


def test_stem_rhythm_keys_and_missing_stems():
    stems, truth = song(120.0, 4, 3)
    result = StemRhythm().compute(ctx_of({k: v for k, v in stems.items() if k != "other"}))
    assert "the track has no other stem" in result.absent["syncopation_other"]
    for s in ("drums", "bass"):
        for key in ("onset_density_average", "onset_density_variance", "syncopation", "rhythmic_complexity",
                    "rhythmic_evenness"):
            assert np.isfinite(result.values[f"{key}_{s}"]), (key, s)
    # the bass plays on every beat: about bpm / 60 onsets per second, all on the beat
    assert result.values["onset_density_average_bass"] == pytest.approx(2.0, rel=0.2)
    assert result.values["syncopation_bass"] < 0.1
    assert StemRhythm().check(result) == {}


def test_a_track_without_drums_is_known_to_have_none_with_stems_and_on_the_mix_alone():
    from sat_mir.features.rhythm import rhythm_inputs

    stems, _ = song(120.0, 4, 1)
    no_kit = {k: v for k, v in stems.items() if k != "drums"}
    # separated: whether a drums stem sounds; the mix alone: whether its highs strike as noise
    assert not rhythm_inputs(ctx_of(stems)).no_drums
    assert rhythm_inputs(ctx_of(no_kit)).no_drums
    assert not rhythm_inputs(ctx_of(stems), use_stems=False).no_drums
    assert rhythm_inputs(ctx_of(no_kit), use_stems=False).no_drums


def test_highs_that_strike_half_as_noise_are_not_sure_drums(monkeypatch):
    """A harpsichord's plucks strike as noise in the highs (0.42-0.46 on the `classical` pieces):
    the mix alone is then neither known to have no drums nor sure to have them, so its bass notes
    cannot move the grid as a kick would (metrical.kick_shift)."""
    from sat_mir.features import rhythm

    stems, _ = song(120.0, 4, 1)
    no_kit = {k: v for k, v in stems.items() if k != "drums"}
    for flatness, sure in ((0.42, False), (0.455, False), (rhythm.DRUMS_FLATNESS, True), (0.52, True)):
        monkeypatch.setattr(rhythm, "_highs_flatness", lambda sig, f=flatness: f)
        inp = rhythm.rhythm_inputs(ctx_of(no_kit), use_stems=False)
        assert inp.drums is sure and not inp.no_drums, flatness
