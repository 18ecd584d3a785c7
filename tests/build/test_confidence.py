"""Facts below their confidence are left out of prompts and numbers, and only those."""

import pytest

from sat_mir.build.conditioning import fit_numbers, numbers_for
from sat_mir.build.confidence import trusted_facts
from sat_mir.build.material import item_material
from sat_mir.errors import ConfigError
from sat_mir.features.registry import confidence_keys

MIN = {"tempo_confidence": 0.5, "meter_confidence": 0.5, "key_confidence": 0.5}
CONTROLS = {"bpm": "bpm", "key": "key", "meter": "time_signature"}


def test_the_specs_name_their_confidences():
    conf = confidence_keys()
    assert conf["bpm"] == "tempo_confidence"
    assert conf["time_signature"] == conf["beats_per_bar"] == "meter_confidence"
    assert conf["key"] == conf["key_tonic"] == conf["key_mode"] == "key_confidence"
    assert conf["chord_progression"] == "chord_confidence"


def test_an_unsure_chord_progression_is_not_stated():
    controls = {**CONTROLS, "chords": "chord_progression"}
    feats = {"chord_progression": ["Am", "F", "C", "G"], "chord_confidence": 0.62, "key": "A minor",
             "key_confidence": 0.9}
    facts, dropped = trusted_facts(feats, {**MIN, "chord_confidence": 0.75}, confidence_keys())
    assert set(dropped) == {"chord_progression"}
    assert item_material(facts, bins=[], controls=controls, tags={}, descriptions=[])["controls"] == {"key": "A minor"}
    facts, dropped = trusted_facts({**feats, "chord_confidence": 0.8}, {**MIN, "chord_confidence": 0.75},
                                   confidence_keys())
    assert not dropped and facts["chord_progression"] == ["Am", "F", "C", "G"]


def test_unsure_facts_are_dropped_and_sure_ones_kept():
    feats = {"bpm": 174.0, "tempo_confidence": 0.31, "time_signature": "4/4", "meter_confidence": 0.9,
             "key": "A minor", "key_confidence": 0.7, "lufs": -9.0}
    facts, dropped = trusted_facts(feats, MIN, confidence_keys())
    assert "bpm" not in facts and set(dropped) == {"bpm"} and "0.31 < 0.50" in dropped["bpm"]
    assert facts["time_signature"] == "4/4" and facts["key"] == "A minor" and facts["lufs"] == -9.0
    assert feats["bpm"] == 174.0  # the item's own features are untouched
    material = item_material(facts, bins=[], controls=CONTROLS, tags={}, descriptions=[])
    assert material["controls"] == {"key": "A minor", "meter": "4/4"}


def test_a_dropped_number_is_filled_or_rejects_its_item():
    specs = fit_numbers(["bpm"], {"bpm": [100.0, 120.0, 140.0]})
    facts, _ = trusted_facts({"bpm": 300.0, "tempo_confidence": 0.1}, MIN, confidence_keys())
    assert numbers_for(facts, specs, policy="fill") == {"bpm": 120.0}
    assert numbers_for(facts, specs, policy="reject") is None


def test_no_threshold_or_no_recorded_confidence_keeps_the_value():
    facts, dropped = trusted_facts({"bpm": 90.0, "tempo_confidence": 0.1}, {}, confidence_keys())
    assert facts["bpm"] == 90.0 and not dropped
    facts, dropped = trusted_facts({"bpm": 90.0}, MIN, confidence_keys())  # an older sidecar
    assert facts["bpm"] == 90.0 and not dropped


def test_a_bad_threshold_is_a_config_error():
    with pytest.raises(ConfigError, match="min_confidence.tempo_confidence"):
        trusted_facts({}, {"tempo_confidence": 1.5}, confidence_keys())
