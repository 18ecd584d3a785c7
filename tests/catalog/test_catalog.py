"""The catalog: layouts, stable ids, format preference, and a read-only library."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sat_mir.catalog import scan_library, track_id
from sat_mir.errors import ConfigError


def touch_audio(path: Path, seconds: float = 0.1, sr: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".ogg": "OGG", ".mp3": "MP3"}.get(path.suffix, None)
    subtype = {".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}.get(path.suffix, None)
    sf.write(path, np.zeros(int(seconds * sr)) + 0.01, sr, format=fmt, subtype=subtype)
    return path


def listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_seed_layout_plain_files_and_sibling_stems(tmp_path):
    root = tmp_path / "lib"
    for name in ("full_mix", "drums", "bass", "other", "vocals"):
        touch_audio(root / "Artist" / "Song A" / f"{name}.flac")
    touch_audio(root / "loose.wav")
    touch_audio(root / "Album" / "01 Intro.flac")
    touch_audio(root / "Album" / "01 Intro_drums.flac")
    touch_audio(root / "Album" / "01 Intro.vocals.wav")
    touch_audio(root / "Album" / "02 Outro.mp3")
    before = listing(root)

    tracks = {t.name: t for t in scan_library(root)}

    assert set(tracks) == {"Song A", "loose", "01 Intro", "02 Outro"}
    seed = tracks["Song A"]
    assert seed.layout == "seed" and seed.rel == "Artist/Song A"
    assert seed.mix.name == "full_mix.flac"
    assert list(seed.sources) == ["mix", "drums", "bass", "other", "vocals"]
    intro = tracks["01 Intro"]
    assert {k: v.name for k, v in intro.stems.items()} == {"drums": "01 Intro_drums.flac", "vocals": "01 Intro.vocals.wav"}
    assert tracks["02 Outro"].stems == {}
    assert listing(root) == before  # scanning wrote nothing


def test_ids_are_stable_unique_and_dot_free(tmp_path):
    root = tmp_path / "lib"
    touch_audio(root / "a.b" / "Song.v2.flac")
    touch_audio(root / "a-b" / "Song.v2.flac")
    ids = [t.id for t in scan_library(root)]
    assert len(set(ids)) == 2
    assert all("." not in i and i == i.lower() for i in ids)
    assert ids == [t.id for t in scan_library(root)]
    assert track_id("a.b/Song.v2") == track_id("a.b/Song.v2") != track_id("a-b/Song.v2")


def test_lossless_format_wins_whatever_the_directory_order(tmp_path):
    root = tmp_path / "lib"
    for ext in (".mp3", ".ogg", ".wav", ".flac"):
        touch_audio(root / "Song" / f"full_mix{ext}")
        touch_audio(root / "Song" / f"drums{ext}")
    (track,) = scan_library(root)
    assert track.mix.suffix == ".flac" and track.stems["drums"].suffix == ".flac"


def test_hidden_files_and_excluded_output_are_skipped(tmp_path):
    root = tmp_path / "lib"
    touch_audio(root / "song.wav")
    touch_audio(root / ".hidden.wav")
    touch_audio(root / ".trash" / "old.wav")
    touch_audio(root / "out" / "tracks" / "x.wav")
    assert [t.name for t in scan_library(root, exclude=[root / "out"])] == ["song"]


def test_missing_root_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not an existing folder"):
        scan_library(tmp_path / "nope")


def test_what_is_not_used_is_said_once_each(tmp_path, caplog):
    import logging
    import os

    root = tmp_path / "lib"
    touch_audio(root / "song.flac")
    touch_audio(root / "song.mp3")
    touch_audio(root / "Stems only" / "drums.flac")
    touch_audio(root / "Stems only" / "bass.flac")
    os.symlink(root / "gone.wav", root / "link.wav")
    with caplog.at_level(logging.WARNING, logger="sat_mir.catalog"):
        tracks = scan_library(root)
    assert [t.name for t in tracks] == ["song"]  # not "drums", not "bass", not "link"
    lines = [r.getMessage() for r in caplog.records]
    assert sum("kept song.flac, not song.mp3" in ln for ln in lines) == 1
    assert sum("Stems only: bass.flac, drums.flac without a full_mix" in ln for ln in lines) == 1
    assert sum("link.wav: a broken symbolic link" in ln for ln in lines) == 1


def test_stems_that_do_not_fit_their_mix(tmp_path, caplog):
    import logging

    from sat_mir.catalog import check_stems

    root = tmp_path / "lib"
    touch_audio(root / "Song" / "full_mix.wav", seconds=12.0, sr=44100)
    touch_audio(root / "Song" / "drums.wav", seconds=9.0, sr=44100)  # another edit: not this mix's stem
    touch_audio(root / "Song" / "bass.wav", seconds=12.0, sr=48000)  # another rate: resampled
    touch_audio(root / "Song" / "other.wav", seconds=12.2, sr=44100)  # a render's tail: fine
    with caplog.at_level(logging.WARNING, logger="sat_mir.catalog"):
        (track,) = check_stems(scan_library(root), root)
    assert sorted(track.stems) == ["bass", "other"]
    assert any("stem drums (drums.wav) is 9.00 s, the mix 12.00 s: not this mix's stem, left out" in n
               for n in track.notes)
    assert any("stem bass is at 48000 Hz, the mix at 44100 Hz: resampled" in n for n in track.notes)
    assert track.to_dict(root)["notes"] == list(track.notes)
    assert len(caplog.records) == 1  # one line for the track
