"""Number conditioners: robust ranges, fill/reject policy, merging into a SAT model config."""

import copy

import pytest

from sat_mir.build.conditioning import fit_numbers, merge_model_config, numbers_for
from sat_mir.errors import ConfigError

BASE = {
    "model_type": "diffusion_cond",
    "model": {
        "conditioning": {"configs": [{"id": "prompt", "type": "t5", "config": {}},
                                     {"id": "seconds_total", "type": "number", "config": {"min_val": 0, "max_val": 512}}],
                         "cond_dim": 768},
        "diffusion": {"cross_attention_cond_ids": ["prompt", "seconds_total"], "global_cond_ids": ["seconds_total"]},
    },
    "training": {"demo": {"demo_cond": [{"prompt": "x", "seconds_total": 30}, {"prompt": "y", "seconds_total": 10}]}},
}


def test_robust_range_ignores_outliers_and_fill_is_the_median():
    values = list(range(60, 181)) + [1000.0]  # one absurd tempo
    (spec,) = fit_numbers(["bpm"], {"bpm": values}, lower_q=0.01, upper_q=0.99, margin=0.05)
    assert 50 < spec.min_val < 62 and 178 < spec.max_val < 200
    assert spec.fill == pytest.approx(120.5)


def test_missing_values_fill_or_reject():
    specs = fit_numbers(["bpm", "lufs"], {"bpm": [100.0, 120.0, 140.0], "lufs": [-20.0, -10.0]})
    assert numbers_for({"bpm": 90.0}, specs, policy="fill") == {"bpm": 90.0, "lufs": -15.0}
    assert numbers_for({"bpm": 90.0}, specs, policy="reject") is None
    assert numbers_for({"bpm": 90, "lufs": -9.5}, specs, policy="reject") == {"bpm": 90.0, "lufs": -9.5}
    with pytest.raises(ConfigError, match="missing must be"):
        numbers_for({}, specs, policy="skip")
    with pytest.raises(ConfigError, match="no item has a value for it"):
        fit_numbers(["brightness"], {"brightness": [None, float("nan")]})


def test_merge_adds_number_conditioners_cross_attention_and_demo_keys():
    specs = fit_numbers(["bpm"], {"bpm": [90.0, 120.0, 150.0]})
    base = copy.deepcopy(BASE)
    merged = merge_model_config(base, specs)
    assert base == BASE  # the input is not modified
    confs = {c["id"]: c for c in merged["model"]["conditioning"]["configs"]}
    assert confs["bpm"] == {"id": "bpm", "type": "number",
                            "config": {"min_val": specs[0].min_val, "max_val": specs[0].max_val}}
    assert merged["model"]["diffusion"]["cross_attention_cond_ids"] == ["prompt", "seconds_total", "bpm"]
    assert merged["model"]["diffusion"]["global_cond_ids"] == ["seconds_total"]  # widths unchanged
    assert [d["bpm"] for d in merged["training"]["demo"]["demo_cond"]] == [120.0, 120.0]
    again = merge_model_config(merged, specs)  # merging twice changes nothing
    assert again == merged


def test_merge_refuses_what_it_cannot_extend():
    specs = fit_numbers(["seconds_total"], {"seconds_total": [1.0, 2.0]})
    with pytest.raises(ConfigError, match="SAT's own timing"):
        merge_model_config(BASE, specs)
    with pytest.raises(ConfigError, match="diffusion_cond"):
        merge_model_config({"model_type": "autoencoder", "model": {}}, [])
