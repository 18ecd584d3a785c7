"""The build refuses a configuration that names a feature key no extractor declares."""

import pytest
import yaml
from conftest import REPO

from sat_mir.build.keys import check_feature_keys, known_keys
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
