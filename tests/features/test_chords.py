"""Chord recognition on chroma whose chords are known, per-bar chords, the progression, and the extractor."""

from pathlib import Path

import numpy as np
import pytest

from sat_mir.audio import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.errors import ConfigError
from sat_mir.features.chords import (
    QUALITIES,
    ChordSegment,
    Chords,
    most_common_progression,
    per_bar,
    phrase_tonics,
    recognise,
    short_name,
)

HOP = 0.1


def chroma_of(chords: list[tuple[int, str]], beats_per_chord: int, beat_s: float = 0.5, noise: float = 0.05,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames of a chord sequence (chord tones at 1, the rest at noise) and its beat times."""
    rng = np.random.default_rng(seed)
    frames_per_beat = int(round(beat_s / HOP))
    cols = []
    for root, quality in chords:
        v = np.full(12, noise)
        v[[(root + i) % 12 for i in QUALITIES[quality]]] = 1.0
        for _ in range(beats_per_chord * frames_per_beat):
            cols.append(v * (1 + 0.1 * rng.standard_normal(12)).clip(0.5))
    chroma = np.stack(cols, axis=1)
    beats = np.arange(len(chords) * beats_per_chord) * beat_s
    return chroma, beats


@pytest.mark.parametrize("quality", list(QUALITIES))
def test_every_quality_on_every_root_is_named(quality):
    chords = [(r, quality) for r in range(12)]
    chroma, beats = chroma_of(chords, 4)
    segs = recognise(chroma, np.zeros_like(chroma), np.ones(chroma.shape[1], bool), HOP, beats, beats[::4],
                     seventh_penalty=0.0)
    names = ('C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B')
    for r, seg in enumerate(segs):
        if quality == "sus2":  # C:sus2 has G:sus4's notes: without a bass either name is right
            assert seg.label in (f"{names[r]}:sus2", f"{names[(r + 7) % 12]}:sus4")
        else:
            assert seg.label == f"{names[r]}:{quality}"
    assert len(segs) == 12


def test_segments_tile_the_beats_and_silence_is_no_chord():
    chroma, beats = chroma_of([(9, "min"), (5, "maj"), (0, "maj"), (7, "maj")], 4)
    active = np.ones(chroma.shape[1], bool)
    active[:20] = False  # the first two chords' frames are silent
    segs = recognise(chroma, np.zeros_like(chroma), active, HOP, beats, beats[::4], end_s=8.0)
    assert segs[0].label == "N" and segs[0].start == 0.0
    assert [s.label for s in segs[1:]] == ["F:maj", "C:maj", "G:maj"]
    assert all(a.end == b.start for a, b in zip(segs[:-1], segs[1:]))
    assert segs[-1].end == 8.0


def test_a_passing_note_does_not_flicker_the_chord_but_a_one_beat_chord_is_kept():
    chroma, beats = chroma_of([(0, "maj")] * 4, 1)
    chroma[:, 10:15] *= 0.5
    chroma[2, 10:15] = 1.0  # one beat with a D twice as loud as the C major under it
    segs = recognise(chroma, np.zeros_like(chroma), np.ones(chroma.shape[1], bool), HOP, beats, beats[::4])
    assert [s.label for s in segs] == ["C:maj"]
    # chorales change chords on every beat: a whole chord for one beat is a change, not noise
    chroma, beats = chroma_of([(0, "maj"), (0, "maj"), (7, "maj"), (0, "maj")], 1)
    segs = recognise(chroma, np.zeros_like(chroma), np.ones(chroma.shape[1], bool), HOP, beats, beats[::4])
    assert [s.label for s in segs] == ["C:maj", "G:maj", "C:maj"]


def test_the_bass_names_an_inversion():
    chroma, beats = chroma_of([(0, "maj")], 4)
    bass = np.zeros_like(chroma)
    bass[4] = 1.0  # E in the bass
    segs = recognise(chroma, bass, np.ones(chroma.shape[1], bool), HOP, beats, beats[:1])
    assert [s.label for s in segs] == ["C:maj/3"]


def test_per_bar_chords_and_the_most_common_progression():
    seq = [(9, "min"), (5, "maj"), (0, "maj"), (7, "maj")] * 3 + [(9, "min")]
    chroma, beats = chroma_of(seq, 4)
    segs = recognise(chroma, np.zeros_like(chroma), np.ones(chroma.shape[1], bool), HOP, beats, beats[::4])
    bars = per_bar(segs, beats[::4], segs[-1].end)
    assert [b["chords"] for b in bars[:4]] == [["Am"], ["F"], ["C"], ["G"]]
    assert most_common_progression(bars) == ["Am", "F", "C", "G"]
    assert short_name(10, "min7") == "A#m7"


def test_the_extractor_on_a_rendered_progression():
    sr = 22050
    beat = 0.5
    t = np.arange(int(sr * beat * 4)) / sr
    prog = [(57, "min"), (53, "maj"), (48, "maj"), (55, "maj")] * 3  # Am F C G, root MIDI notes

    def bar(root, quality):
        x = np.zeros_like(t)
        for k, i in enumerate(QUALITIES[quality]):
            f = 440.0 * 2 ** ((root + i - 69) / 12)
            x += np.sin(2 * np.pi * f * t) * np.exp(-t * 0.5) / (1 + k)
        env = np.zeros_like(t)
        for b in range(4):  # a click on every beat, so there is a grid to find
            s = int(b * beat * sr)
            env[s:s + 200] = np.hanning(400)[200:]
        return 0.3 * x + 0.5 * env * np.random.default_rng(root).standard_normal(t.size)

    mix = np.concatenate([bar(*c) for c in prog]).astype(np.float32)[None]
    ctx = TrackContext({"mix": Path("<mix>")}, loader=lambda _: Audio(mix, sr))
    result = Chords(Chords.Config(tracker="dsp")).compute(ctx)
    assert result.values["chord_progression"] in (["Am", "F", "C", "G"], ["F", "C", "G", "Am"],
                                                  ["C", "G", "Am", "F"], ["G", "Am", "F", "C"])
    assert result.values["chord_vocabulary_size"] >= 4
    assert 0.4 <= result.values["chord_changes_per_bar"] <= 1.5  # one change per 4 beats: per bar of 2 or 4
    assert result.values["chord_confidence"] >= 0.95  # sine triads: measured 1.0
    assert Chords().check(result) == {}
    assert "Am" in result.artifacts["chords.json"] and "A:min" in result.artifacts["chords.lab"]


def test_unknown_quality_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown"):
        Chords.Config(qualities=("maj", "power"))


def test_a_soft_third_beside_a_passing_second_is_the_triad_not_a_sus_chord():
    # C, G loud, E soft, D (a passing note or an overtone) as loud as E: the notes of G:sus4 and
    # C:sus2 fit a little better than C:maj's; only the sus penalty (sus chords are rarer) says C.
    v = np.full(12, 0.02)
    v[[0, 7]], v[4], v[2] = 1.0, 0.4, 0.5
    n = 8 * int(round(0.5 / HOP))
    chroma = np.repeat(v[:, None], n, axis=1)
    beats = np.arange(8) * 0.5
    args = (chroma, np.zeros_like(chroma), np.ones(n, bool), HOP, beats, beats[::4])
    plain = recognise(*args, sus_penalty=0.0)
    assert [s.label for s in plain] in (["G:sus4"], ["C:sus2"])
    assert [s.label for s in recognise(*args, sus_penalty=0.1)] == ["C:maj"]


def test_covering_beats_continue_the_grid_to_both_ends_of_the_track():
    from sat_mir.features.chords import covering_beats

    out = covering_beats(np.array([1.3, 1.8, 2.3, 2.8]), end_s=4.0)
    # back to 0.3 and a clipped beat at 0 (-0.2 is within half a period); on to 3.3 (3.8 is
    # within half a period of the end)
    np.testing.assert_allclose(out, [0.0, 0.3, 0.8, 1.3, 1.8, 2.3, 2.8, 3.3])
    np.testing.assert_allclose(covering_beats(np.array([0.0, 0.5, 1.0]), end_s=1.2), [0.0, 0.5, 1.0])


def test_segment_confidence_is_high_on_clear_chords_and_lower_on_ambiguous_ones():
    clear, beats = chroma_of([(9, "min"), (5, "maj"), (0, "maj"), (7, "maj")], 4, noise=0.02)
    n = clear.shape[1]
    args = (np.zeros_like(clear), np.ones(n, bool), HOP, beats, beats[::4])
    segs = recognise(clear, *args)
    assert [s.label for s in segs] == ["A:min", "F:maj", "C:maj", "G:maj"]
    assert all(0.85 <= s.confidence <= 1.0 for s in segs), [s.confidence for s in segs]
    # every other pitch class half as loud: a chord is still named, with far less certainty
    blurred = np.maximum(clear, 0.5 * clear.max(axis=0, keepdims=True))
    unsure = recognise(blurred, *args)
    assert len(unsure) >= 3 and all(0.2 < u.confidence < 0.7 for u in unsure), [u.confidence for u in unsure]
    silent = recognise(clear, np.zeros_like(clear), np.zeros(n, bool), HOP, beats, beats[::4])
    assert [s.confidence for s in silent] == [None]


def test_phrase_tonics_count_the_chord_at_every_fourth_downbeat_from_the_first_chorded_bar():
    # a bar of silence, then Am7 F Cmaj7 G7 (one chord per 2-s bar) twice
    loop = [(9, "min7"), (5, "maj"), (0, "maj7"), (7, "7")] * 2
    segs = [ChordSegment(0.0, 2.0, None, None)]
    segs += [ChordSegment(2.0 + 2 * i, 4.0 + 2 * i, r, q) for i, (r, q) in enumerate(loop)]
    downbeats = np.arange(0.0, 18.0, 2.0)
    share = phrase_tonics(segs, downbeats, beat_s=0.5)
    expected = np.zeros((2, 12))
    expected[1, 9] = 1.0  # both phrases start on Am (a min7 counts as its minor triad)
    np.testing.assert_allclose(share, expected)
    # phrases of 2 bars start on Am and C: half each, C counted for C major
    share2 = phrase_tonics(segs, downbeats, beat_s=0.5, every=2)
    assert share2[1, 9] == pytest.approx(0.5) and share2[0, 0] == pytest.approx(0.5)
    assert share2.sum() == pytest.approx(1.0)
    # a sus chord or a diminished triad is no key's tonic triad: it counts as a phrase start, for no key
    segs[1] = ChordSegment(2.0, 4.0, 9, "sus4")
    assert phrase_tonics(segs, downbeats, beat_s=0.5)[1, 9] == pytest.approx(0.5)
    assert phrase_tonics([ChordSegment(0.0, 18.0, None, None)], downbeats, beat_s=0.5) is None
    assert phrase_tonics(segs, np.zeros(0), beat_s=0.5) is None


def test_a_bass_shorter_than_the_harmonic_content_is_silent_past_its_end():
    chroma, beats = chroma_of([(9, "min"), (5, "maj")], beats_per_chord=4)
    bass = np.zeros((12, chroma.shape[1] // 2))
    bass[9] = 1.0  # A under the Am only: the stem ends with it
    segs = recognise(chroma, bass, np.ones(chroma.shape[1], bool), HOP, beats, beats[::4], bass_weight=0.04)
    assert [s.label for s in segs] == ["A:min", "F:maj"]
    long_bass = np.zeros((12, chroma.shape[1] + 7))  # ... or longer: cut
    long_bass[9, :bass.shape[1]] = 1.0
    assert [s.label for s in recognise(chroma, long_bass, np.ones(chroma.shape[1], bool), HOP, beats, beats[::4])] \
        == ["A:min", "F:maj"]
