"""Prompt sampling (custom_metadata/prompts.py) and corpus-binned words."""

import random
import re

import numpy as np
import pytest

from conftest import REPO
from sat_mir.build.manifest import prompts_module

estimate_t5_tokens, italian_tempo, sample_prompt = (prompts_module().estimate_t5_tokens, prompts_module().italian_tempo,
                                                    prompts_module().sample_prompt)
from sat_mir.build.bins import fit_bins, fixed_bins, words_for
from sat_mir.build.material import item_material, top_labels

MATERIAL = {
    "fields": {"genre": ["Techno", "Acid", "Electronic"], "mood": ["dark", "driving"]},
    "controls": {"bpm": 128.0, "key": "A minor", "meter": 4},
    "words": {"loudness": "loud"},
    "descriptions": ["A hypnotic acid techno track with a squelchy bass line."],
}


def draws(n, material=MATERIAL, recipe=None, seed=0):
    rng = random.Random(seed)
    return [sample_prompt(material, rng, recipe) for _ in range(n)]


def test_same_seed_same_prompts_and_prompts_vary():
    a, b = draws(50), draws(50)
    assert a == b
    assert len(set(a)) > 30


def test_stable_audio_recipe_pairs_case_and_shuffles():
    out = draws(2000, recipe={"case_p": {"as_is": 1.0}, "description_p": 0.0, "description_only_p": 0.0,
                              "control_keep_p": {}, "field_keep_p": 1.0})
    with_pairs = sum("Genre:" in p for p in out) / len(out)
    assert with_pairs == pytest.approx(0.5, abs=0.05)  # half "Key: value", half values only
    genre_orders = {re.search(r"(Techno|Acid|Electronic).*?(Techno|Acid|Electronic)", p).groups() for p in out}
    assert len(genre_orders) == 6  # list values are shuffled: every order of two appears
    cased = draws(2000, recipe={"case_p": {"as_is": 0.5, "lower": 0.3, "upper": 0.2}, "description_only_p": 0.0})
    assert sum(p == p.upper() for p in cased) / 2000 == pytest.approx(0.2, abs=0.04)
    assert sum(p == p.lower() for p in cased) / 2000 == pytest.approx(0.3, abs=0.04)


def test_control_sentences_are_dropped_at_their_rates():
    out = draws(3000, recipe={"control_keep_p": {"bpm": 0.5, "key": 0.2}, "italian_tempo_p": 0.0,
                              "case_p": {"as_is": 1.0}, "description_only_p": 0.0})
    assert sum("128 beats per minute" in p for p in out) / 3000 == pytest.approx(0.5, abs=0.04)
    assert sum("key of A minor" in p for p in out) / 3000 == pytest.approx(0.2, abs=0.03)
    assert not any("beat counts" in p for p in out)  # meter not in control_keep_p: never


@pytest.mark.parametrize("bpm,word", [(30, "Grave"), (50, "Largo"), (70, "Adagio"), (90, "Andante"),
                                      (112, "Moderato"), (128, "Allegro"), (160, "Vivace"), (190, "Presto"),
                                      (220, "Prestissimo")])
def test_italian_tempo_words(bpm, word):
    assert italian_tempo(bpm) == word


def test_token_budget_is_kept_and_prompts_are_never_empty():
    long = {**MATERIAL, "descriptions": ["word " * 400], "fields": {f"f{i}": "value " * 5 for i in range(40)}}
    for p in draws(200, long, recipe={"description_p": 1.0, "field_keep_p": 1.0}):
        assert 0 < estimate_t5_tokens(p) <= 128
    only_bpm = {"controls": {"bpm": 100.0}}
    assert all(p.strip() for p in draws(100, only_bpm))


def test_token_estimate_is_conservative_for_plain_english():
    # T5 (sentencepiece) encodes "This song goes at 128 beats per minute." in about 11 tokens
    assert estimate_t5_tokens("This song goes at 128 beats per minute.") >= 11


def test_quantile_bins_spread_words_evenly_and_are_monotonic():
    values = np.random.default_rng(0).normal(-14, 4, 1000)
    bins = fit_bins("lufs", "loudness", ["very quiet", "quiet", "moderate", "loud", "very loud"], values)
    counts = {w: 0 for w in bins.words}
    for v in values:
        counts[bins.word(v)] += 1
    assert all(abs(c - 200) <= 2 for c in counts.values())
    order = [bins.words.index(bins.word(v)) for v in np.sort(values)]
    assert order == sorted(order)
    assert words_for({"lufs": -40.0}, [bins]) == {"loudness": "very quiet"}
    assert words_for({"lufs": None}, [bins]) == {}
    assert fit_bins("x", "x", ["a", "b"], []) is None


def test_fixed_bins_for_probabilities_and_silent_words():
    import yaml

    spec = yaml.safe_load((REPO / "conf/prompts/default.yaml").read_text())["bins"]
    voice = fixed_bins("voice_probability", **spec["voice_probability"])
    said = {p: words_for({"voice_probability": p}, [voice]) for p in (0.0, 0.19, 0.2, 0.5, 0.79, 0.8, 1.0)}
    assert said == {0.0: {"vocals": "instrumental"}, 0.19: {"vocals": "instrumental"}, 0.2: {}, 0.5: {},
                    0.79: {}, 0.8: {"vocals": "with vocals"}, 1.0: {"vocals": "with vocals"}}
    assert words_for({"voice_probability": True}, [voice]) == {}  # a flag is not a probability
    with pytest.raises(ValueError, match="3 words need 2 edges"):
        fixed_bins("x", "x", ["a", None, "b"], [0.5])
    with pytest.raises(ValueError, match="ascending"):
        fixed_bins("x", "x", ["a", None, "b"], [0.8, 0.2])


def test_classifier_tags_top_k_above_threshold():
    probs = {"Electronic---Techno": 0.6, "Electronic---Acid": 0.3, "Rock---Punk": 0.05, "Jazz": 0.12}
    assert top_labels(probs, top_k=2, threshold=0.1) == ["Techno", "Acid", "Electronic"]
    assert top_labels(probs, top_k=5, threshold=0.1) == ["Techno", "Acid", "Jazz", "Electronic"]
    assert top_labels(probs, top_k=1, threshold=0.5) == ["Techno", "Electronic"]
    assert top_labels({"Rock---Rock": 0.9, "Pop---Rock": 0.2}, top_k=3, threshold=0.1) == ["Rock", "Pop"]
    material = item_material({"genre": probs, "bpm": 120.0, "desc": "A track."}, bins=[],
                             controls={"bpm": "bpm", "key": "key"}, tags={"genre": "genre"},
                             descriptions=["desc"], top_k=5, threshold=0.1)
    assert material["fields"] == {"genre": ["Techno", "Acid", "Jazz", "Electronic"]}
    assert material["controls"] == {"bpm": 120.0} and material["descriptions"] == ["A track."]


def test_user_metadata_from_tags_and_csv(tmp_path):
    import soundfile as sf

    from sat_mir.build.user_metadata import read_metadata_csv, read_tags, track_metadata

    path = tmp_path / "song.flac"
    with sf.SoundFile(str(path), "w", samplerate=8000, channels=1, format="FLAC") as f:
        f.title, f.artist, f.date = "Night Drive", "The Testers", "2019-05-01"
        f.write(np.zeros(800))
    assert read_tags(path) == {"title": "Night Drive", "artist": "The Testers", "date": "2019-05-01", "year": "2019"}
    csv_path = tmp_path / "meta.csv"
    csv_path.write_text("path,artist,album\nsong,Someone Else,First Album\n")
    rows = read_metadata_csv(csv_path)
    got = track_metadata(track_id="song-1234", name="song", rel_paths=["song"], mix=path,
                         fields=["artist", "title", "album", "year"], csv_rows=rows)
    assert got == {"artist": "Someone Else", "title": "Night Drive", "album": "First Album", "year": "2019"}


def test_a_description_alone_is_a_whole_prompt_cut_at_sentence_ends():
    sentences = [f"Sentence number {i} describes the synth line in some detail." for i in range(30)]
    material = {**MATERIAL, "descriptions": [" ".join(sentences)]}
    recipe = {"description_only_p": 0.3, "description_p": 0.0, "case_p": {"as_is": 1.0}}
    out = draws(2000, material, recipe=recipe)
    alone = [p for p in out if p.startswith("Sentence number 0")]
    assert len(alone) / len(out) == pytest.approx(0.3, abs=0.04)
    for p in alone:  # whole sentences, as many as fit the budget, and nothing else
        assert p.endswith("detail.") and 100 < estimate_t5_tokens(p) <= 128
        assert "Genre" not in p and "beats per minute" not in p


def test_a_long_description_with_nothing_else_is_cut_not_dropped():
    material = {"descriptions": ["word " * 400]}
    for p in draws(20, material):
        assert p.strip() and estimate_t5_tokens(p) <= 128


def test_a_style_under_two_genres_counts_once():
    probs = {"Electronic---Experimental": 0.5, "Rock---Experimental": 0.4, "Rock---Noise": 0.3}
    assert top_labels(probs, top_k=2, threshold=0.1) == ["Experimental", "Noise", "Electronic", "Rock"]
