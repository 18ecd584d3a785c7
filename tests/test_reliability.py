"""The reliability suite: a library of bad and odd inputs, and kill -9 in the crops and build
stages then a resume that equals an uninterrupted run byte for byte (the extract stage's kill
test and two concurrent runs are in test_extract_cli.py)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import load_tool, plucked_music, run_extract, sidecars

pytestmark = pytest.mark.slow

SR = 44100
MUSICAL = ("key", "bpm", "brightness", "time_signature")


def _music(seconds: float) -> np.ndarray:
    x = plucked_music(seconds, SR)
    return np.stack([x, x * 0.9]).T.astype(np.float32)


def _write(path: Path, x: np.ndarray, sr: int = SR, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, **kw)
    return path


def _truncate(src: Path, dst: Path, fraction: float = 1 / 3) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])


@pytest.fixture(scope="module")
def odd_library(tmp_path_factory) -> Path:
    """28 kinds of bad or odd input beside good tracks.  Returns the library root."""
    root = tmp_path_factory.mktemp("odd") / "lib"
    rng = np.random.default_rng(1)
    good = _music(14.0)
    _write(root / "good.flac", good)
    noise = (rng.standard_normal((12 * SR, 2)) * 0.1).astype(np.float32)
    # 1-8: broken files
    (root / "empty.wav").write_bytes(b"")
    (root / "notes.mp3").write_text("these are my notes, not audio\n")
    (root / "random.flac").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    tmp = tmp_path_factory.mktemp("full")
    for name, kw in (("cut flac.flac", {}), ("cut wav.wav", {"subtype": "PCM_16"}),
                     ("cut ogg.ogg", {"format": "OGG", "subtype": "VORBIS"}),
                     ("cut opus.opus", {"format": "OGG", "subtype": "OPUS"})):
        full = _write(tmp / name, noise + good[: 12 * SR] * 0, 48000 if name.endswith(".opus") else SR, **kw)
        _truncate(full, root / name)
    (root / "tag_only.mp3").write_bytes(b"ID3\x04\x00\x00\x00\x00\x02\x00" + b"\x00" * 256)
    # 9-10: what the catalog leaves out, saying so
    os.symlink(root / "nowhere.wav", root / "dangling.wav")
    _write(root / "Stems only" / "drums.flac", good)
    # 11-19: audio that carries no musical facts
    _write(root / "dc.wav", np.full((12 * SR, 2), 0.3, np.float32), subtype="FLOAT")
    _write(root / "white noise.wav", noise, subtype="FLOAT")
    _write(root / "one sample.wav", np.array([[0.5, 0.5]], np.float32), subtype="FLOAT")
    _write(root / "blip.wav", good[: int(0.3 * SR)])
    _write(root / "digital silence.wav", np.zeros((5 * SR, 2), np.float32))
    _write(root / "near silence.wav", (rng.standard_normal((10 * SR, 2)) * 1e-4).astype(np.float32), subtype="FLOAT")
    _write(root / "nan.wav", np.where(np.arange(SR)[:, None] == 100, np.nan, good[:SR]).astype(np.float32),
           subtype="FLOAT")
    _write(root / "inf.wav", np.where(np.arange(SR)[:, None] == 100, np.inf, good[:SR]).astype(np.float32),
           subtype="FLOAT")
    _write(root / "hum.wav", np.tile(0.2 * np.sin(2 * np.pi * 50 * np.arange(12 * SR) / SR), (2, 1)).T
           .astype(np.float32))  # a steady tone: pitched, but no pulse
    # 20-24: odd but valid music
    _write(root / "loud float.wav", good * 8.0, subtype="FLOAT")  # peaks near +12 dBFS
    _write(root / "eight channels.wav", np.repeat(good[:, :1], 8, axis=1))
    _write(root / "low rate.wav", good[::4, 0], 11025)
    _write(root / "high rate.flac", np.repeat(good, 2, axis=0)[: 14 * 88200], 88200)
    _write(root / "ünïcødé name — long.flac", good)
    # 25-26: one name in two formats; stems that are not the mix's
    _write(root / "twice.flac", good)
    _write(root / "twice.mp3", good, format="MP3")
    _write(root / "Mismatched" / "full_mix.flac", good)
    _write(root / "Mismatched" / "drums.flac", good[: 9 * SR])
    _write(root / "Mismatched" / "bass.flac", good[::2] , SR // 2)
    # 27-28: a folder named like a file, a mono 8-bit WAV
    (root / "folder.wav").mkdir()
    _write(root / "eight bit.wav", good[:, 0], subtype="PCM_U8")
    return root


EXTRACTORS = "extractors=[info,loudness,peaks,spectral,timbral,rhythm,tonal,chords]"


def test_a_library_of_odd_inputs(tmp_path, odd_library, caplog):
    before = {str(p): p.read_bytes() for p in odd_library.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    proc = run_extract("+dataset=mine", f"dataset.root={odd_library}", f"dataset.output={out}", "separation=none",
                       EXTRACTORS, "jobs=2", "progress=false", cwd=tmp_path)
    err = proc.stderr
    assert proc.returncode == 1, err[-3000:]  # some files failed, each named; every stage could run
    assert {str(p): p.read_bytes() for p in odd_library.rglob("*") if p.is_file()} == before  # read-only

    failed = {m.group(1): m.group(2) for m in re.finditer(r"FAILED (.+?): (.*)", err)}
    expect_failed = {
        "empty.wav": "empty", "notes.mp3": "not an audio file", "random.flac": "not an audio file",
        "cut flac.flac": "truncated|not decodable", "cut wav.wav": "truncated", "cut ogg.ogg": "truncated",
        "cut opus.opus": "truncated", "tag_only.mp3": "only an ID3 tag", "nan.wav": "NaN",
        "inf.wav": "NaN or infinity", "digital silence.wav": "digital silence",
    }
    for name, reason in expect_failed.items():
        line = next((v for k, v in failed.items() if k.startswith(name)), None)
        assert line is not None and re.search(reason, line), (name, line, err[-3000:])
        assert sum(k.startswith(name) for k in failed) == 1, name  # one line per file
    assert not set(failed) - {k for k in failed if any(k.startswith(n) for n in expect_failed)}, failed

    # the catalog says what it does not use, once each
    assert err.count("dangling.wav: a broken symbolic link") == 1
    assert err.count("Stems only: drums.flac without a full_mix") == 1
    assert err.count("kept twice.flac, not twice.mp3") == 1
    assert err.count("stem drums (drums.flac) is 9.00 s, the mix 14.00 s: not this mix's stem") == 1
    assert "stem bass is at 22050 Hz, the mix at 44100 Hz: resampled" in err

    found = sidecars(out)
    assert "drums" not in found and "dangling" not in found and "folder" not in found
    assert sorted(found["Mismatched"]["track"]["stems"]) == ["bass"]
    feats = {name: d["features"] for name, d in found.items()}
    absent = {name: {k: v for rec in d["provenance"].values() for k, v in (rec.get("absent") or {}).items()}
              for name, d in found.items()}
    for name in ("dc", "white noise", "one sample", "blip", "near silence"):
        for key in MUSICAL:
            assert key not in feats[name] and absent[name].get(key), (name, key)
    assert "bpm" not in feats["hum"] and "no pulse" in absent["hum"]["bpm"]
    for name in ("good", "loud float", "eight channels", "low rate", "high rate", "ünïcødé name — long", "twice",
                 "Mismatched", "eight bit"):
        missing = [k for k in ("key", "bpm", "lufs", "brightness") if k not in feats[name]]
        assert not missing, (name, missing, {k: absent[name].get(k) for k in missing})
        assert abs(feats[name]["bpm"] - 120.0) < 2.5, (name, feats[name]["bpm"])
    assert feats["loud float"]["peak_dbfs"] > 12.0  # measured as it is, flagged, not clamped
    assert "peak_dbfs" in found["loud float"]["provenance"]["info"]["flags"]

    # the build: no training item from what is not music; the loud file is scaled, not clipped
    build = subprocess.run(
        [sys.executable, "-m", "sat_mir.build", "+dataset=mine", f"dataset.root={odd_library}",
         f"dataset.output={out}", "formats=[audio_dir]", "chunks.seconds=5", "progress=false"],
        cwd=tmp_path, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    items = sorted(p.stem for p in (out / "sat" / "audio").glob("*.flac"))
    names = {d["track"]["id"]: name for name, d in found.items()}
    from_tracks = {names[i.rsplit("-c", 1)[0]] for i in items}
    # a steady tone is pitched: a sound one may train on, though it has no tempo
    assert from_tracks == {"good", "loud float", "eight channels", "low rate", "high rate", "ünïcødé name — long",
                           "twice", "Mismatched", "eight bit", "hum"}, from_tracks
    for name in ("dc", "white noise", "one sample", "blip", "near silence"):
        assert re.search(rf"left out track {re.escape(name)}: .*(noise|DC offset|under 1 s|silence)",
                         build.stderr), (name, build.stderr[-3000:])
    loud = [p for p in (out / "sat" / "audio").glob("*.flac") if names[p.stem.rsplit("-c", 1)[0]] == "loud float"]
    assert loud and all(np.max(np.abs(sf.read(p)[0])) < 0.99 for p in loud)
    assert "scaled by" in build.stderr and "peak_policy=normalize" in build.stderr


# ------------------------------------------------------------------ kill -9, then resume


def _tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not any(s in p.parts for s in skip)}


def _kill_when(cmd: list[str], cwd: Path, ready, timeout: float = 300) -> None:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    finished = proc.poll() is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not finished, "the kill must land before the run ends: " + proc.stderr.read().decode()[-2000:]


@pytest.fixture(scope="module")
def two_songs(tmp_path_factory, demo_library) -> Path:
    lib = tmp_path_factory.mktemp("two") / "lib"
    for name in sorted(p.name for p in demo_library.iterdir() if p.is_dir() and not p.name.startswith("."))[:2]:
        shutil.copytree(demo_library / name, lib / name)
    return lib


def test_kill_while_cutting_crops_then_resume(tmp_path, two_songs):
    args = ["+dataset=mine", f"dataset.root={two_songs}", "separation=none", "extractors=[info,rhythm]",
            "crops=div4", "crops.length=524288", "jobs=1", "progress=false"]
    ref = tmp_path / "ref"
    assert run_extract(*args, f"dataset.output={ref}", cwd=tmp_path).returncode == 0
    killed = tmp_path / "killed"
    _kill_when([sys.executable, "-m", "sat_mir.extract", *args, f"dataset.output={killed}"], tmp_path,
               lambda: any((killed / "crops").glob("*/*_000.flac")) if (killed / "crops").is_dir() else False)
    resumed = run_extract(*args, f"dataset.output={killed}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not list(killed.rglob("*.tmp"))
    # every crop's audio and the crops.json manifests, byte for byte (sidecars hold timings)
    assert _tree(killed / "crops", skip=("features.json",)) == _tree(ref / "crops", skip=("features.json",))
    strip = lambda d: {k: v for k, v in d.items() if k not in ("provenance", "track")}  # noqa: E731
    got = {p.parent.name: strip(json.loads(p.read_text())) for p in (killed / "crops").glob("*/*/features.json")}
    want = {p.parent.name: strip(json.loads(p.read_text())) for p in (ref / "crops").glob("*/*/features.json")}
    assert got == want and len(got) >= 2


def test_kill_while_building_then_resume_gives_the_same_dataset(tmp_path, two_songs):
    args = ["+dataset=mine", f"dataset.root={two_songs}", "separation=none", "extractors=[info,loudness,rhythm]",
            "jobs=1", "progress=false"]
    first, work = tmp_path / "first", tmp_path / "work"
    assert run_extract(*args, f"dataset.output={first}", cwd=tmp_path).returncode == 0
    models = load_tool("make_tiny_sat_model").make_tiny_sat_model(tmp_path / "models")
    build = [sys.executable, "-m", "sat_mir.build", "+dataset=mine", f"dataset.root={two_songs}",
             f"dataset.output={work}", f"model.dir={models}", "model.batch_size=2", "progress=false"]
    # the uninterrupted build and the killed one run in the same folder: paths inside the
    # configs are the same, so every file can be compared byte for byte
    shutil.copytree(first, work)
    done = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    want = _tree(work / "sat")
    shutil.rmtree(work)
    shutil.copytree(first, work)
    latents = work / "sat" / "latents"
    # after the first finished item: its .json is written after its .npy
    _kill_when(build, tmp_path, lambda: latents.is_dir() and any(p.name != "details.json"
                                                                   for p in latents.glob("*.json")))
    resumed = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert re.search(r"latents: \d+ encoded, [1-9]\d* already present", resumed.stderr), resumed.stderr[-2000:]
    assert not list(work.rglob("*.tmp"))
    got = _tree(work / "sat")
    assert set(got) == set(want)
    differ = sorted(k for k in want if got[k] != want[k])
    assert not differ, differ  # item audio, latents, shards, manifest: the same bytes
