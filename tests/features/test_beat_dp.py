"""sat-mir's beat-tracking dynamic program gives librosa's beats (``beat_track`` at a given tempo),
without librosa.beat's per-process numba compilation."""

from pathlib import Path

import numpy as np
import pytest

from sat_mir.audio import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.demo import SongSpec, render_song
from sat_mir.features.beat_dp import track_beats

FPS = 22050 / 512


def _librosa(env, bpm, tightness):
    import librosa

    _, frames = librosa.beat.beat_track(onset_envelope=env, sr=22050, hop_length=512, bpm=bpm,
                                        tightness=tightness, trim=True)
    return frames


def _noisy_pulse(rng, n, bpm):
    t = np.arange(n) / FPS
    pulse = 2.0 * (np.cos(2 * np.pi * t * bpm / 60.0) > 0.95)
    return np.maximum(0.0, rng.standard_normal(n) * 0.3 + pulse).astype(np.float32)


def test_the_beats_are_librosas_on_noisy_pulses():
    # noise makes near-ties between paths: a difference in the order of any float operation
    # shows up as beats one frame apart
    rng = np.random.default_rng(1)
    for trial in range(60):
        n = int(rng.integers(300, 8000))
        true_bpm = rng.uniform(50, 200)
        env = _noisy_pulse(rng, n, true_bpm)
        if trial % 5 == 0:
            env[:50] = 0.0  # a silent intro: the first beat waits for 1 % of the peak score
        bpm = true_bpm * rng.choice([0.5, 1.0, 2.0, 2 / 3, 1.5])
        tightness = float(rng.choice([30.0, 100.0, 400.0]))
        np.testing.assert_array_equal(track_beats(env, FPS, bpm, tightness=tightness),
                                      _librosa(env, bpm, tightness), err_msg=f"trial {trial}")


@pytest.mark.parametrize("bpm", [72.0, 128.0, 174.0])
def test_the_beats_are_librosas_on_a_song(bpm):
    stems, _ = render_song(SongSpec("b", bpm=bpm, beats_per_bar=4, tonic=2, mode="major", bars=12, seed=3))
    mix = np.sum(list(stems.values()), axis=0)
    ctx = TrackContext({"mix": Path("<song>")}, loader=lambda _: Audio(mix, 44100))
    env = ctx.mix.onset_envelope()
    for target in (bpm, bpm / 2, bpm * 2 / 3):
        mine = track_beats(env, FPS, target)
        assert mine.size > 8
        np.testing.assert_array_equal(mine, _librosa(env, target, 100.0))


def test_a_silent_envelope_has_no_beats():
    assert track_beats(np.zeros(500, np.float32), FPS, 120.0).size == 0


def _stepped_pulse(rng, bpms, seconds):
    """A noisy pulse train whose tempo steps from one of ``bpms`` to the next every ``seconds``;
    the true beat times with it."""
    beats, t = [], 0.0
    for bpm in bpms:
        end = t + seconds
        while t < end:
            beats.append(t)
            t += 60.0 / bpm
    n = int((t + 1.0) * FPS)
    env = np.maximum(0.0, rng.standard_normal(n) * 0.3).astype(np.float32)
    for b in beats:
        env[int(round(b * FPS))] += 2.0
    return env, np.asarray(beats)


def _hits(found_frames, truth_s, tol=0.07):
    found = np.asarray(found_frames) / FPS
    return float(np.mean([np.min(np.abs(found - b)) <= tol for b in truth_s]))


def test_a_tempo_that_steps_is_followed():
    from sat_mir.features.metrical import local_tempo

    rng = np.random.default_rng(4)
    env, truth = _stepped_pulse(rng, [100.0, 120.0], 20.0)
    period = 60.0 * FPS / 100.0
    rel = local_tempo(env, FPS, period)
    assert rel is not None
    # the first section at the tracked period, the second at 100/120 of it
    assert abs(np.median(rel[: int(8 * FPS)]) - 1.0) < 0.02
    assert abs(np.median(rel[-int(8 * FPS):]) - 100.0 / 120.0) < 0.02
    inside = truth[(truth > 3.0) & (truth < 37.0)]  # (the tracker trims weak beats at the ends)
    second = truth[truth > 22.0]
    one_period = track_beats(env, FPS, 100.0)
    followed = track_beats(env, FPS, 100.0, rel=rel)
    assert _hits(followed, inside) > 0.97 and _hits(followed, second) > 0.95  # 1.0 and 0.97 measured
    assert _hits(one_period, second) < 0.7  # what the one period made of it: 0.61


def test_a_steady_tempo_keeps_the_one_period():
    from sat_mir.features.metrical import local_tempo

    rng = np.random.default_rng(5)
    for bpm in (62.0, 97.0, 143.0, 188.0):
        env, _ = _stepped_pulse(rng, [bpm], 40.0)
        assert local_tempo(env, FPS, 60.0 * FPS / bpm) is None, bpm
