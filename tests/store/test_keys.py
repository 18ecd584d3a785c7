"""The build refuses a configuration that names a feature key no extractor declares."""

import pytest
import yaml
from conftest import REPO

from sat_mir.store.keys import check_feature_keys, known_keys
from sat_mir.errors import ConfigError

PROMPTS = yaml.safe_load((REPO / "conf" / "prompts" / "default.yaml").read_text())
CONDITIONING = yaml.safe_load((REPO / "conf" / "conditioning" / "default.yaml").read_text())


def test_the_shipped_configuration_names_only_declared_keys():
    check_feature_keys(PROMPTS, CONDITIONING)
    assert {"bpm", "key", "chord_progression", "lufs_drums", "beat_count", "track_bpm"} <= known_keys()


@pytest.mark.parametrize("prompts,conditioning,where,near", [
    ({}, {"numbers": ["bpm", "bmp"]}, r"conditioning.numbers\[1\] names the feature key 'bmp'", "bpm"),
    ({"controls": {"chords": "chord_sequence"}}, {}, "prompts.controls.chords", "chord_progression"),
    ({"bins": {"lfus": {"words": ["quiet", "loud"]}}}, {}, "prompts.bins.lfus", "lufs"),
    ({"tags": {"genre": "genre"}}, {}, "prompts.tags.genre", "essentia_genre"),
    ({"descriptions": ["flamingo_all"]}, {}, r"prompts.descriptions\[0\]", "flamingo_full"),
])
def test_an_unknown_key_is_named_with_the_nearest_known_ones(prompts, conditioning, where, near):
    with pytest.raises(ConfigError, match=where) as err:
        check_feature_keys(prompts, conditioning)
    assert "nearest known keys" in str(err.value) and near in str(err.value)


def test_extraction_refuses_an_extractor_reading_an_unknown_key_and_warns_of_one_switched_off():
    from sat_mir.features import build_extractors
    from sat_mir.store.keys import check_read_keys

    hint = {"hints": ["This track plays at {bpm} BPM.", "Its key is {key}."], "enabled": True}
    on = build_extractors({"rhythm": {}, "tonal": {}, "flamingo": hint})
    assert check_read_keys(on) == []
    # rhythm off this run: its bpm may still be in the sidecars of an earlier run, so a warning
    assert check_read_keys(build_extractors({"tonal": {}, "flamingo": hint})) == ["extractors.flamingo reads bpm"]
    typo = build_extractors({"flamingo": {"hints": ["At {bmp} BPM."]}})
    with pytest.raises(ConfigError, match=r"extractors.flamingo names the feature key 'bmp'.*nearest known keys: bpm"):
        check_read_keys(typo)
