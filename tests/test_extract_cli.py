"""`python -m sat_mir.extract` end to end, as a user runs it: demo, bad files, resume, concurrency."""

from __future__ import annotations

import hashlib
import math
import re
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import load_strict_json, run_extract, sidecars

pytestmark = pytest.mark.slow

STEMS = ("drums", "bass", "other", "vocals")
# Runner tests count extractor runs: pin the set so new feature families do not change the counts.
FIXED_SET = "extractors=[info,loudness,rhythm]"


def checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def comparable(sidecar: dict) -> dict:
    """A sidecar without what legitimately differs between runs (timings, timestamps)."""
    prov = {name: {k: v for k, v in rec.items() if k not in ("seconds", "finished_at", "run_id")}
            for name, rec in sidecar["provenance"].items()}
    track = {k: v for k, v in sidecar["track"].items() if k != "inputs"}
    return {"features": sidecar["features"], "provenance": prov, "track": track}


def test_demo_dataset_end_to_end_and_rerun_skips_everything(tmp_path):
    env = {"SAT_MIR_CACHE": str(tmp_path / "cache")}
    first = run_extract("+dataset=demo", "crops=div4", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    output = tmp_path / "sat-mir-output" / "demo"
    found = sidecars(output)
    assert len(found) == 4
    for name, data in found.items():
        f = data["features"]
        for key in ["lufs", "lra", "bpm", "duration_s"] + [f"lufs_{s}" for s in STEMS]:
            assert isinstance(f.get(key), float) and math.isfinite(f[key]), (name, key)
        assert all(rec["error"] is None for rec in data["provenance"].values())
        assert (output / "tracks" / data["track"]["id"] / "beats.txt").exists()
    # Hydra's run folder lives under the output, not in the current directory
    assert (output / "logs" / "extract").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "sat-mir-output"]

    # crops: div4 crops of every song, each with its own sidecar and features
    crop_sidecars = sorted((output / "crops").glob("*/*/features.json"))
    assert len(crop_sidecars) >= 8
    assert {p.parent.parent.name for p in crop_sidecars} == {d["track"]["id"] for d in found.values()}
    for path in crop_sidecars:
        crop = load_strict_json(path)
        assert crop["crop"]["bars"] % 4 == 0 and crop["crop"]["source_track"] == path.parent.parent.name
        assert isinstance(crop["features"]["lufs"], float) and isinstance(crop["features"]["bpm"], float)
        assert all(rec["error"] is None for rec in crop["provenance"].values())
        assert (path.parent.parent / f"{path.parent.name}.flac").is_file()
    assert re.search(rf"crops \(div4\): 4 tracks cut, 0 already cut, 0 failed, 0 gave no crop \(see above\); {len(crop_sidecars)} crops",
                     first.stderr)

    second = run_extract("+dataset=demo", "crops=div4", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert re.search(r"4 tracks: 0 extractor runs done, \d+ skipped \(already current\), 0 failed", second.stderr)
    assert "crops (div4): 0 tracks cut, 4 already cut" in second.stderr
    assert re.search(r"crops: 0 extractor runs done, \d+ skipped \(already current\), 0 failed", second.stderr)
    assert {n: comparable(d) for n, d in sidecars(output).items()} == {n: comparable(d) for n, d in found.items()}


@pytest.fixture
def bad_library(tmp_path, demo_library) -> Path:
    root = tmp_path / "library"
    shutil.copytree(demo_library / "Demo 01 - Sunrise", root / "Good Seed")
    good_mix = demo_library / "Demo 04 - Steps" / "full_mix.flac"
    shutil.copy(good_mix, root / "good plain.flac")
    (root / "empty.wav").write_bytes(b"")
    data = good_mix.read_bytes()
    (root / "truncated.flac").write_bytes(data[: len(data) // 3])
    (root / "notes.mp3").write_text("these are my notes, not a song\n")
    sf.write(root / "silent.wav", np.zeros((44100 * 6, 2), np.float32), 44100)
    return root


def test_bad_files_are_isolated_and_reported_once_each(tmp_path, bad_library):
    before = checksums(bad_library)
    out = tmp_path / "out"
    proc = run_extract("+dataset=mine", f"dataset.root={bad_library}", f"dataset.output={out}",
                       "jobs=2", "progress=false", cwd=tmp_path)
    assert proc.returncode != 0
    assert checksums(bad_library) == before  # the library is byte-identical

    failed_lines = [ln for ln in proc.stderr.splitlines() if "FAILED" in ln]
    bad = {"empty.wav": "empty", "truncated.flac": "truncated|lost sync|not decodable",
           "notes.mp3": "not an audio file", "silent.wav": "silent"}
    assert len(failed_lines) == len(bad), proc.stderr
    for name, reason in bad.items():
        (line,) = [ln for ln in failed_lines if f"FAILED {name}:" in ln]
        assert any(r in line for r in reason.split("|")), line

    found = sidecars(out)  # strict parse: no NaN/Infinity anywhere
    for name in ("Good Seed", "good plain"):
        assert set(found[name]["features"]) >= {"lufs", "lra", "bpm", "beat_count", "duration_s", "peak_dbfs"}
        assert all(r["error"] is None for r in found[name]["provenance"].values())
    assert set(found["Good Seed"]["features"]) >= {f"lufs_{s}" for s in STEMS}
    for name in ("empty", "truncated", "notes", "silent"):
        assert found[name]["features"] == {}, name
        prov = found[name]["provenance"]
        assert prov["info"]["error"], name
        # undecodable: an error each; digital silence: absent values, each with its reason
        assert all(prov[e]["error"] or prov[e].get("absent") for e in ("loudness", "rhythm")), name
        # extractors with nothing to measure here (no stems) record no error and write no value
        assert all(r["error"] or not r["keys"] for r in prov.values()), name
    assert "4 track(s)" in proc.stderr


def test_config_errors_are_clear(tmp_path, demo_library):
    proc = run_extract("+dataset=mine", cwd=tmp_path)
    assert proc.returncode != 0 and "dataset.root" in proc.stderr
    proc = run_extract("+dataset=mine", f"dataset.root={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert proc.returncode == 2 and "is not an existing folder" in proc.stderr  # invalid configuration
    proc = run_extract(cwd=tmp_path)
    assert proc.returncode != 0 and "+dataset=" in proc.stderr
    proc = run_extract("+dataset=mine", f"dataset.root={demo_library}", f"dataset.output={demo_library / 'out'}",
                       cwd=tmp_path)
    assert proc.returncode != 0 and "inside dataset.root" in proc.stderr
    assert not (demo_library / "out").exists()
    proc = run_extract("+dataset=mine", f"dataset.root={demo_library}", f"dataset.output={tmp_path / 'o'}",
                       "extractors.rhythm.nonsense=1", cwd=tmp_path)
    assert proc.returncode != 0


def test_help_explains_the_groups(tmp_path):
    proc = run_extract("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for word in ("dataset/", "extractors/", "loudness", "rhythm", "dataset.root", "dataset.output", "jobs="):
        assert word in proc.stdout, word


def one_track_library(tmp_path, demo_library) -> Path:
    root = tmp_path / "one"
    shutil.copytree(demo_library / "Demo 02 - Night Drive", root / "Song")
    return root


def test_rerun_redoes_only_what_changed(tmp_path, demo_library):
    root = one_track_library(tmp_path, demo_library)
    base = ("+dataset=mine", f"dataset.root={root}", f"dataset.output={tmp_path / 'out'}", "jobs=1", "progress=false",
            FIXED_SET)
    assert run_extract(*base, cwd=tmp_path).returncode == 0
    # a changed extractor option redoes that extractor only
    proc = run_extract(*base, "extractors.rhythm.tightness=400", cwd=tmp_path)
    assert "1 extractor runs done, 2 skipped" in proc.stderr
    # a touched but identical file is recognised by its content hash
    os.utime(root / "Song" / "full_mix.flac")
    proc = run_extract(*base, "extractors.rhythm.tightness=400", cwd=tmp_path)
    assert "0 extractor runs done, 3 skipped" in proc.stderr
    # a changed stem redoes the extractors that read stems (loudness, and rhythm, whose beat level and
    # bars the stems inform), not those reading the mix only (info)
    shutil.copy(root / "Song" / "bass.flac", root / "Song" / "drums.flac")
    proc = run_extract(*base, "extractors.rhythm.tightness=400", cwd=tmp_path)
    assert "2 extractor runs done, 1 skipped" in proc.stderr
    # overwrite=true redoes everything
    proc = run_extract(*base, "extractors.rhythm.tightness=400", "overwrite=true", cwd=tmp_path)
    assert "3 extractor runs done, 0 skipped" in proc.stderr


def _complete(output: Path) -> int:
    n = 0
    for p in (output / "tracks").glob("*/features.json"):
        try:
            prov = load_strict_json(p)["provenance"]
        except Exception:  # noqa: BLE001 - a missing or (never expected) partial file counts as not complete
            continue
        n += {"info", "loudness", "rhythm"} <= set(prov)
    return n


def _popen(root: Path, output: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sat_mir.extract", "+dataset=mine", f"dataset.root={root}",
         f"dataset.output={output}", "jobs=1", "progress=false", FIXED_SET],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def test_sigkill_midway_then_rerun_equals_an_uninterrupted_run(tmp_path, demo_library):
    reference = tmp_path / "reference"
    assert run_extract("+dataset=mine", f"dataset.root={demo_library}", f"dataset.output={reference}",
                       "jobs=1", "progress=false", FIXED_SET, cwd=tmp_path).returncode == 0

    killed = tmp_path / "killed"
    proc = _popen(demo_library, killed, tmp_path)
    deadline = time.monotonic() + 120
    while _complete(killed) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert 1 <= _complete(killed) < 4, "the kill must land mid-run"

    # what a kill during a sidecar write leaves: a temp file of a writer that is gone
    litter = killed / "tracks" / ".features.json.~x~1~abc.tmp"
    litter.write_bytes(b"{")
    os.utime(litter, (0, 0))  # another host's, long ago
    resumed = run_extract("+dataset=mine", f"dataset.root={demo_library}", f"dataset.output={killed}",
                          "jobs=1", "progress=false", FIXED_SET, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(killed.rglob("*.tmp")), "a rerun removes what killed runs left"
    assert "skipped" in resumed.stderr and " 0 skipped" not in resumed.stderr
    ref, got = sidecars(reference), sidecars(killed)
    assert {n: comparable(d) for n, d in got.items()} == {n: comparable(d) for n, d in ref.items()}
    for data in ref.values():
        tid = data["track"]["id"]
        assert (killed / "tracks" / tid / "beats.txt").read_text() == (reference / "tracks" / tid / "beats.txt").read_text()
    assert not list(killed.rglob("*.tmp"))


def test_two_runs_at_once_leave_every_sidecar_complete(tmp_path, demo_library):
    output = tmp_path / "shared"
    a, b = _popen(demo_library, output, tmp_path), _popen(demo_library, output, tmp_path)
    for p in (a, b):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    found = sidecars(output)
    assert len(found) == 4
    for name, data in found.items():
        assert set(data["provenance"]) == {"info", "loudness", "rhythm"}
        assert all(rec["error"] is None for rec in data["provenance"].values())
        # every key a merge recorded is present, and nothing else is
        recorded = set().union(*(rec["keys"] for rec in data["provenance"].values()))
        assert set(data["features"]) == recorded, name
        assert {"lufs", "lra", "bpm", "beats_per_bar", "duration_s"} | {f"lufs_{s}" for s in STEMS} <= recorded


def test_parallel_workers_on_a_cold_jit_cache(tmp_path, demo_library):
    """Regression: on a fresh machine two workers compiling librosa's numba code at once
    crashed a worker in about half the runs (numba's on-disk cache is not safe against
    concurrent writers); workers warmed up one at a time.  Now the DSP extractors use no
    numba at all (librosa's onset detection and filter banks are done in numpy): two workers
    from cold finish, and nothing was compiled."""
    # sat-mir's own numba cache under an empty SAT_MIR_CACHE: as cold as a new install
    env = {"SAT_MIR_CACHE": str(tmp_path / "cache"), "NUMBA_CACHE_DIR": None}
    proc = run_extract("+dataset=mine", f"dataset.root={demo_library}", f"dataset.output={tmp_path / 'out'}",
                       "jobs=2", "progress=false", FIXED_SET, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "12 extractor runs done" in proc.stderr
    assert not any((tmp_path / "cache" / "numba").glob("**/*.nbi"))  # no worker compiled anything
