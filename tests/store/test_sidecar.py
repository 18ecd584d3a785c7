"""Sidecars: merges keep other extractors' keys, reruns drop stale keys, concurrency loses nothing."""

import json
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from sat_mir.errors import SidecarError
from sat_mir.store import ExtractorRecord, merge_extractor, read_sidecar


def rec(error=None, **kw):
    return ExtractorRecord(version="1", config_hash="c", inputs={"mix": "h"}, seconds=0.1, error=error, **kw)


def test_merge_keeps_other_extractors_and_replaces_own_keys(tmp_path):
    path = tmp_path / "features.json"
    merge_extractor(path, extractor="a", record=rec(), values={"x": 1.0, "y": 2.0}, track={"id": "t"})
    merge_extractor(path, extractor="b", record=rec(), values={"z": 3.0}, track={"id": "t"})
    merge_extractor(path, extractor="a", record=rec(), values={"x": 5.0}, track={"id": "t"})
    data = read_sidecar(path)
    assert data["features"] == {"x": 5.0, "z": 3.0}  # y was a's and a no longer writes it
    assert data["provenance"]["a"]["keys"] == ["x"] and data["provenance"]["b"]["keys"] == ["z"]


def test_a_failed_rerun_leaves_an_error_and_no_value(tmp_path):
    path = tmp_path / "features.json"
    merge_extractor(path, extractor="a", record=rec(), values={"x": 1.0}, track={})
    merge_extractor(path, extractor="a", record=rec(error="boom"), values={}, track={})
    data = read_sidecar(path)
    assert "x" not in data["features"]
    assert data["provenance"]["a"]["error"] == "boom"


def test_non_finite_values_are_refused(tmp_path):
    with pytest.raises(ValueError):
        merge_extractor(tmp_path / "f.json", extractor="a", record=rec(), values={"x": float("nan")}, track={})


def test_currency_depends_on_version_config_inputs_and_error():
    r = rec()
    assert r.is_current(version="1", config_hash="c", inputs={"mix": "h"})
    assert not r.is_current(version="2", config_hash="c", inputs={"mix": "h"})
    assert not r.is_current(version="1", config_hash="d", inputs={"mix": "h"})
    assert not r.is_current(version="1", config_hash="c", inputs={"mix": "other"})
    assert not rec(error="x").is_current(version="1", config_hash="c", inputs={"mix": "h"})


def test_corrupt_sidecar_is_a_sidecar_error(tmp_path):
    path = tmp_path / "features.json"
    path.write_text("{not json")
    with pytest.raises(SidecarError, match="not valid JSON"):
        read_sidecar(path)
    path.write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(SidecarError, match="schema_version 99"):
        read_sidecar(path)


def _writer(args):
    path, worker = args
    for i in range(25):
        merge_extractor(path, extractor=f"w{worker}_{i}", record=rec(), values={f"k{worker}_{i}": float(i)}, track={})


def test_concurrent_merges_lose_no_key(tmp_path):
    path = tmp_path / "features.json"
    with ProcessPoolExecutor(4, mp_context=get_context("spawn")) as pool:
        list(pool.map(_writer, [(path, w) for w in range(4)]))
    data = read_sidecar(path)
    assert len(data["features"]) == 100 and len(data["provenance"]) == 100
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind
