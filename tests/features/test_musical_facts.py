"""Tempo, beats, downbeats, meter, key, chords and div4 crops on realistic renders with exact truth:
a slice of the evaluation corpus (tools/make_eval_corpus.py, fluidsynth + the FluidR3 GM
soundfont), scored by tools/score_facts.py as the benchmark scores the full corpus (docs/eval.md).

Twelve 20-s songs, one per style, rendered from a seed (11) that neither the evaluation corpus (0)
nor the corpora the metrical models were fitted on (1, 2, 7, 8, 9, 10, 13) nor the held-out corpora
the choices were made on (3, 5, 62) use.  The slice moved from seed 7 when the metrical models took in
the corpus rendered with it.  The thresholds sit below what this slice
measured when it was written (noted beside each) so that float differences between machines do
not flip them, and far above what the previous rhythm code reached on realistic audio.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import load_tool

corpus_tool = load_tool("make_eval_corpus")
score = load_tool("score_facts")

STYLES = ["rock", "four_floor", "swing", "waltz", "six_eight", "twelve_eight", "five_four", "ballad", "piano",
          "pop", "shuffle", "breakbeat"]
SEED = 11

pytestmark = pytest.mark.skipif(not corpus_tool.available(),
                                reason="needs fluidsynth and fluid-soundfont-gm (make setup installs them as root)")


def test_a_missing_soundfont_is_named_before_anything_is_rendered(tmp_path):
    missing = tmp_path / "other_gm.sf2"
    with pytest.raises(SystemExit, match="other_gm.sf2"):
        corpus_tool.make_corpus(tmp_path / "out", songs=1, seconds=8.0, seed=SEED, jobs=1, soundfont=missing)
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def slice_scores(tmp_path_factory):
    out = tmp_path_factory.mktemp("facts")
    corpus_tool.make_corpus(out, songs=len(STYLES), seconds=20.0, seed=SEED, jobs=1, styles=STYLES)
    import json

    rows: dict[str, list[dict]] = {"sat-mir": [], "sat-mir-mix": [], "librosa": []}
    for truth_path in sorted((out / "truth").glob("*.json")):
        truth = json.loads(truth_path.read_text())
        folder = out / "library" / truth["id"]
        for engine in rows:
            est = score.run_engine(engine, folder)
            rows[engine].append(score.score_song(truth, est, folder / "full_mix.flac"))
    return {engine: score.summarise(r) for engine, r in rows.items()}, rows


def test_tempo_and_beats_with_stems(slice_scores):
    s, _ = slice_scores
    ours = s["sat-mir"]
    assert ours["tempo Acc1"] >= 10 / 12  # measured 11/12
    assert ours["tempo Acc2"] == 1.0
    assert ours["beat F"] >= 0.9  # measured 0.951 (librosa 0.901)
    # the peer on the same audio: never better than us here
    assert ours["tempo Acc1"] >= s["librosa"]["tempo Acc1"]
    assert ours["beat F"] >= s["librosa"]["beat F"]


def test_tempo_and_beats_on_the_mix_alone(slice_scores):
    s, _ = slice_scores
    mix = s["sat-mir-mix"]
    # measured 11/12, 12/12 and 0.951
    assert mix["tempo Acc1"] >= 10 / 12
    assert mix["tempo Acc2"] >= 11 / 12
    assert mix["beat F"] >= 0.92


def test_downbeats_meter_and_crops(slice_scores):
    s, _ = slice_scores
    ours = s["sat-mir"]
    # measured 0.909, 10/12 and 0.94 with stems, 0.813 on the mix alone (seed 7, before the
    # grid reached back to the first sound, each input had its own bar model and the kick band
    # joined the beat level: 0.79 and 0.76)
    assert ours["downbeat F"] >= 0.85
    assert ours["meter"] >= 8 / 12
    assert ours["div4 crops with 4k true bars, every grid cut on"] >= 0.75  # measured 16/17
    # a grid below its confidence is cut in sequence (crops.min_*_confidence): measured 16/16
    # div4 crops right, 1 of the 12 songs (a 12/8 at tempo confidence 0.52) cut in sequence
    assert ours["div4 crops with 4k true bars"] >= 0.9
    assert ours["songs cut in sequence (grid below its confidence)"] <= 3 / 12
    assert s["sat-mir-mix"]["downbeat F"] >= 0.75


def test_crops_start_on_their_downbeats_notes_not_into_their_attack(slice_scores):
    s, _ = slice_scores
    for engine in ("sat-mir", "sat-mir-mix"):
        # measured 2 of 16 right crops more than 10 ms late, songs' median -0.1 ms (2 of 15, +0.5
        # on the mix alone; a waltz whose downbeats come 9 ms late); 0 of 16 and +1.2 ms before
        # the beats were moved onto the track's own attacks (attack.attack_shift: nearer the
        # notes on the whole, see the beat error below); 4 of 16 and +5.1 ms before the beats
        # were put on their local line (metrical.steady_beats), 13 of 16 and +20.7 ms before
        # they were moved onto the notes' starts (rhythm.ATTACK_LEAD_S)
        assert s[engine]["div4 crops starting > 10 ms after their downbeat's notes"] <= 0.5
        assert -10.0 <= float(s[engine]["div4 crop start from its downbeat, median of songs (ms)"]) <= 12.0


def test_the_beats_land_on_the_true_ones_not_only_within_the_window(slice_scores):
    s, _ = slice_scores
    key = "beat error of the hits, median of songs (ms)"
    for engine in ("sat-mir", "sat-mir-mix"):
        # measured 2.3 ms with stems and on the mix alone; 4.0 ms before the beats were moved
        # onto the track's own attacks (attack.attack_shift), 6.8 ms before they were put on
        # their local line (metrical.steady_beats); librosa 39.2 ms
        assert float(s[engine][key]) <= 3.5
        assert float(s[engine][key]) < float(s["librosa"][key])
        # Cemgil's accuracy pays for the same: measured 0.946 (librosa 0.538)
        assert s[engine]["beat Cemgil accuracy"] >= 0.92


def test_meters_other_than_3_and_4_are_reported(slice_scores):
    _, rows = slice_scores
    said = {r["beats_per_bar"] for r in rows["sat-mir"]}
    assert said & {5, 6, 12}, said  # the old tracker only ever said 3 or 4


def test_key_and_chords(slice_scores):
    s, _ = slice_scores
    ours = s["sat-mir"]
    assert ours["key exact"] >= 8 / 12
    assert ours["key MIREX weighted"] >= 0.8
    # measured 10/12, 0.892, and chords 0.734, 0.759 and 0.571 (seed 7, before sus chords were
    # penalised and the grid continued to the track's ends: 0.69, 0.74, 0.51)
    assert ours["chords majmin (WCSR)"] >= 0.70
    assert ours["chords root (WCSR)"] >= 0.72
    assert ours["chords sevenths (WCSR)"] >= 0.54


def test_confidence_ranks_right_above_wrong(slice_scores):
    """Across the slice, the stated tempo confidence is higher where the tempo is right."""
    _, rows = slice_scores
    conf = [(r["tempo_confidence"], r["acc1"]) for r in rows["sat-mir"] + rows["sat-mir-mix"]
            if r.get("tempo_confidence") is not None]
    right = [c for c, ok in conf if ok]
    wrong = [c for c, ok in conf if not ok]
    assert right and np.mean(right) >= 0.6
    if wrong:
        assert np.mean(wrong) < np.mean(right)


@pytest.mark.parametrize("index", [12, 23])
def test_a_tempo_that_steps_halfway_is_followed(tmp_path, index):
    # songs of the held-out step corpus (make_eval_corpus --step 0.12,0.20 --seed 43): a rock
    # song and a pop song whose tempo steps at the bar line nearest their middle.  Tracked with
    # one period, beat F was 0.72 and 0.68 and downbeat F 0.16 and 0.47 on the mix alone.
    song_id = corpus_tool.make_song(index, 43, 30.0, tmp_path, step=(0.12, 0.20))
    import json

    truth = json.loads((tmp_path / "truth" / f"{song_id}.json").read_text())
    assert abs(truth["spec"]["step"] - 1.0) >= 0.12
    folder = tmp_path / "library" / song_id
    row = score.score_song(truth, score.run_engine("sat-mir-mix", folder), folder / "full_mix.flac")
    assert row["beat_f"] >= 0.95 and row["downbeat_f"] >= 0.9, row  # 1.0 and 1.0 measured


def _kick_velocities(song, bars: int = 64) -> tuple[list[int], list[int], list[tuple]]:
    """The kicks' MIDI velocities on the bar's first beat and elsewhere over ``bars`` bars, and
    every other drum hit, from one seeded stream."""
    rng = np.random.default_rng(5)
    first, rest, others = [], [], []
    for bar in range(bars):
        for note in corpus_tool.drum_bar(song, bar, 0.0, rng, fill=False, crash=False):
            if note.pitch == corpus_tool.KICK:
                (first if note.q == 0.0 else rest).append(note.vel)
            else:
                others.append((note.q, note.pitch, note.vel))
    return first, rest, others


@pytest.mark.parametrize("style", ["rock", "twelve_eight"])
def test_a_flat_kick_strikes_the_first_beat_no_harder_than_the_others(style):
    # make_eval_corpus --flat-kick: a drum machine's kick, every one in the bar alike.  By
    # default the bar's first kick is the loudest (rock: 121 against 100, before the jitter).
    song = corpus_tool.draw_song(0, 10, 30.0, style)
    accented = _kick_velocities(song)
    song.flat_kick = True
    flat = _kick_velocities(song)
    assert np.mean(accented[0]) - np.mean(accented[1]) >= 15
    assert abs(np.mean(flat[0]) - np.mean(flat[1])) <= 3
    assert flat[2] == accented[2]  # the same stream: every other drum as it was


def test_the_share_of_flat_kicks_is_drawn_apart_from_the_song():
    songs = [corpus_tool.moving_tempo(corpus_tool.draw_song(i, 10, 30.0, None), i, 10, flat_kick=0.5)
             for i in range(40)]
    plain = [corpus_tool.draw_song(i, 10, 30.0, None) for i in range(40)]
    assert 10 <= sum(s.flat_kick for s in songs) <= 30
    assert not any(s.flat_kick for s in plain)
    for s, p in zip(songs, plain):
        s.flat_kick = False
        assert s == p  # nothing else drawn differently
