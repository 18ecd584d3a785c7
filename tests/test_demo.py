"""The demo songs: ground truth that is internally consistent, stems that sum to the mix."""

import numpy as np
import pytest

from sat_mir.audio import load_audio
from sat_mir.demo import DEMO_SONGS, render_song


@pytest.mark.parametrize("spec", DEMO_SONGS, ids=lambda s: s.title)
def test_truth_is_consistent(spec, demo_truth):
    truth = demo_truth[spec.title]
    assert 20.0 <= truth["duration_s"] <= 40.0
    beats = np.array(truth["beats"])
    np.testing.assert_allclose(np.diff(beats), 60.0 / spec.bpm)
    assert truth["downbeats"] == truth["beats"][:: spec.beats_per_bar]
    assert truth["beats"][0] == pytest.approx(spec.lead_in_s)


def test_the_mix_file_is_the_sum_of_the_stem_files(demo_library):
    folder = demo_library / DEMO_SONGS[0].title
    mix = load_audio(folder / "full_mix.flac").samples
    stems = sum(load_audio(folder / f"{s}.flac").samples for s in ("drums", "bass", "other", "vocals"))
    assert np.max(np.abs(mix - stems)) < 1e-5  # 24-bit quantisation only
    assert 0.85 < np.max(np.abs(mix)) <= 0.9 + 1e-6


def test_rendering_is_deterministic():
    a, _ = render_song(DEMO_SONGS[1])
    b, _ = render_song(DEMO_SONGS[1])
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_lead_in_is_silent_and_music_starts_on_the_first_downbeat(demo_library, demo_truth):
    spec = DEMO_SONGS[2]
    audio = load_audio(demo_library / spec.title / "full_mix.flac")
    lead = int(spec.lead_in_s * audio.sr)
    assert np.max(np.abs(audio.samples[:, :lead])) == 0.0
    assert np.max(np.abs(audio.samples[:, lead : lead + 2000])) > 0.1
