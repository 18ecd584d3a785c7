"""The extractor contract: declared outputs, range flags (not clamps), config validation."""

from dataclasses import dataclass

import pytest

from conftest import REPO
from sat_mir.errors import ConfigError
from sat_mir.features import REGISTRY, Extractor, ExtractorResult, OutputSpec, build_extractors


class Probe(Extractor):
    name = "probe"
    version = "1"
    outputs = (
        OutputSpec("level", "dB", "a level", (-60.0, 0.0)),
        OutputSpec("peak_{stem}", "dB", "per-stem peak", (-60.0, 0.0)),
    )

    @dataclass(frozen=True)
    class Config:
        gain: float = 1.0

    def compute(self, ctx):  # pragma: no cover - not run here
        raise NotImplementedError


def test_out_of_range_values_are_flagged_and_kept():
    result = ExtractorResult(values={"level": 3.5, "peak_drums": -10.0})
    flags = Probe().check(result)
    assert set(flags) == {"level"} and "outside the declared range [-60.0, 0.0]" in flags["level"]
    assert result.values["level"] == 3.5


def test_undeclared_keys_and_non_finite_values_are_extractor_bugs():
    with pytest.raises(ValueError, match="undeclared key 'loudness'"):
        Probe().check(ExtractorResult(values={"loudness": 1.0}))
    with pytest.raises(ValueError, match="non-finite"):
        Probe().check(ExtractorResult(values={"peak_bass": float("-inf")}))


def test_per_stem_specs_expand():
    assert Probe.outputs[1].expand(["drums", "bass"]) == ["peak_drums", "peak_bass"]
    assert Probe().spec("peak_vocals") is Probe.outputs[1]
    assert Probe().spec("peak_") is None


def test_config_hash_follows_the_options():
    assert Probe.from_mapping({"gain": 1.0}).config_hash == Probe().config_hash
    assert Probe.from_mapping({"gain": 2.0}).config_hash != Probe().config_hash
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['gian'\]"):
        Probe.from_mapping({"gian": 2.0})


def test_build_extractors_honours_enabled_and_rejects_unknown_names():
    names = [e.name for e in build_extractors({"loudness": {"enabled": True}, "rhythm": {"enabled": False}})]
    assert names == ["loudness"]
    with pytest.raises(ConfigError, match="unknown extractor 'timbre'"):
        build_extractors({"timbre": {}})
    assert {"loudness", "rhythm", "stem_rhythm"} <= set(REGISTRY)


def test_every_registered_extractor_declares_units_and_descriptions():
    for cls in REGISTRY.values():
        assert cls.outputs and cls.version
        for spec in cls.outputs:
            assert spec.unit and spec.description, (cls.name, spec.key)


def test_the_features_doc_is_generated_from_the_specs():

    from sat_mir.features.docs import features_markdown

    doc = REPO / "docs" / "features.md"
    assert doc.read_text() == features_markdown(), "run: python tools/gen_features_doc.py"
    for cls in REGISTRY.values():
        for spec in cls.outputs:
            assert f"`{spec.key}`" in doc.read_text()
