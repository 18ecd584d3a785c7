"""The typed view of an output folder: one catalog reader and writer, the crop layout in one
place, and one precedence of an item's values, the one the runner's extractors see."""

from __future__ import annotations

import numpy as np
import pytest

from sat_mir.audio.write import write_audio
from sat_mir.catalog import Track
from sat_mir.errors import ConfigError
from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec
from sat_mir.store import (
    Dataset,
    crop_id,
    is_crop_id,
    item_values,
    read_sidecar,
    sidecar_path,
    source_track_id,
    track_dir,
    write_catalog,
)
from sat_mir.store.layout import crop_audio_name, crop_of
from sat_mir.store.sidecar import update_sections


def test_crop_ids_and_folders_follow_one_rule(tmp_path):
    cid = crop_id("song-1a2b3c4d", 7)
    assert cid == "song-1a2b3c4d_007" and is_crop_id(cid) and not is_crop_id("song-1a2b3c4d")
    assert source_track_id(cid) == "song-1a2b3c4d" == source_track_id("song-1a2b3c4d")
    assert track_dir(tmp_path, cid) == tmp_path / "crops" / "song-1a2b3c4d" / cid
    assert track_dir(tmp_path, "song-1a2b3c4d") == tmp_path / "tracks" / "song-1a2b3c4d"
    assert sidecar_path(tmp_path, cid).name == "features.json"
    assert crop_audio_name(cid, "mix", "flac") == f"{cid}.flac" and crop_audio_name(cid, "bass", "wav") == f"{cid}_bass.wav"
    assert crop_of(f"{cid}_bass.wav", "song-1a2b3c4d") == cid == crop_of(cid, "song-1a2b3c4d")
    # crops.json, a user's file, and the crops of a track whose id starts the same are not its crops
    assert crop_of("crops.json", "song-1a2b3c4d") is None and crop_of(f"{cid}.flac", "song-1") is None


def test_the_catalog_reads_back_what_was_written(tmp_path):
    root, out = tmp_path / "lib", tmp_path / "out"
    outside = tmp_path / "separated" / "drums.flac"  # a separated stem lies outside the library
    tracks = [
        Track(id="a-00000001", name="A", rel="A", mix=root / "A" / "full_mix.flac",
              stems={"drums": root / "A" / "drums.flac"}, layout="seed", notes=("bass left out: 3 s short",)),
        Track(id="b-00000002", name="b", rel="sub/b", mix=root / "sub" / "b.wav", stems={"drums": outside}),
    ]
    out.mkdir()
    write_catalog(out, root, tracks)
    ds = Dataset.open(out)
    assert ds.root == root and ds.tracks == tuple(tracks)
    assert ds.find("b") == tracks[1] and ds.find("a-00000001") == tracks[0] and ds.find("zz") is None
    with pytest.raises(ConfigError, match="run `python -m sat_mir.extract`"):
        Dataset.open(tmp_path / "never-extracted")


def test_item_values_precedence():
    sidecar = {
        "crop": {"start_s": 12.0, "bpm": 121.0, "beat_count": 16, "bars": 4, "position": 0.4, "pad_samples": 0},
        "inherited": {"key": "A minor", "track_bpm": 120.0, "essentia_genre": {"Electronic---House": 0.5}},
        "features": {"lufs": -9.5},
    }
    assert item_values(sidecar) == {"key": "A minor", "track_bpm": 120.0, "essentia_genre": {"Electronic---House": 0.5},
                                    "bpm": 121.0, "beat_count": 16, "bars": 4, "position": 0.4, "lufs": -9.5}
    # the crop's measured features win over its beat-grid values and over inherited ones
    sidecar["features"].update(bpm=122.5, key="C major")
    got = item_values(sidecar)
    assert got["bpm"] == 122.5 and got["key"] == "C major"
    # a crop with too few beats for a tempo has none (never the track's)
    assert "bpm" not in item_values({"crop": {"bpm": None}, "inherited": {"track_bpm": 120.0}})


class ReadsBpm(Extractor):
    """Writes back the bpm it was given: what an extractor that conditions on bpm sees (not
    registered, so the real key set and docs stay as they are)."""

    name = "test_reads_bpm"
    version = "1"
    outputs = (OutputSpec("seen_bpm", "BPM", "the bpm known before this extractor ran", (0.0, 1000.0)),)

    @property
    def reads_features(self) -> list[str]:
        return ["bpm"]

    def compute(self, ctx) -> ExtractorResult:
        return ExtractorResult(values={"seen_bpm": float(ctx.features["bpm"])})


def test_an_extractor_on_a_crop_sees_the_crops_local_bpm_not_the_tracks(tmp_path):
    from sat_mir.run import run_extraction

    out = tmp_path / "out"
    cid = crop_id("song-1a2b3c4d", 0)
    folder = track_dir(out, cid).parent
    folder.mkdir(parents=True)
    sr = 22050
    write_audio(folder / f"{cid}.flac", 0.1 * np.sin(2 * np.pi * 220 * np.arange(2 * sr) / sr), sr=sr)
    update_sections(sidecar_path(out, cid), crop={"bpm": 121.0, "start_s": 0.0},
                    inherited={"track_bpm": 120.0, "key": "A minor"})
    crop = Track(id=cid, name=cid, rel=f"crops/song-1a2b3c4d/{cid}", mix=folder / f"{cid}.flac", layout="crop")
    ex = ReadsBpm()
    summary = run_extraction([crop], [ex], root=out, output=out, jobs=1, progress=False, unit="crop")
    assert summary.failed == 0 and summary.done == 1
    assert read_sidecar(sidecar_path(out, cid))["features"]["seen_bpm"] == 121.0
    # the value it read is part of its skip key: a re-cut with another local bpm redoes it
    assert run_extraction([crop], [ex], root=out, output=out, jobs=1, progress=False).skipped == 1
    update_sections(sidecar_path(out, cid), crop={"bpm": 90.0, "start_s": 0.0})
    assert run_extraction([crop], [ex], root=out, output=out, jobs=1, progress=False).done == 1
    assert read_sidecar(sidecar_path(out, cid))["features"]["seen_bpm"] == 90.0


def test_crops_inherit_exactly_the_keys_whose_spec_holds_for_the_track():
    from sat_mir.features.registry import track_wide_keys

    keys = set(track_wide_keys())
    assert {"key", "key_mode", "time_signature", "beats_per_bar", "essentia_genre", "flamingo_full"} <= keys
    # values of the stretch measured: loudness, tempo, a description of the song's course
    assert not {"bpm", "lufs", "duration_s", "flamingo_structure", "chord_progression"} & keys
    with pytest.raises(ValueError, match="holds"):
        OutputSpec("x", "unit", "a value", holds="bar")
