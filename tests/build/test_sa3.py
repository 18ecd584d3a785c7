"""``formats=[sa3_data_dir]``: the folder Stable Audio 3's LoRA scripts read - every audio file
a loader finds has a non-empty caption beside it with the same name, the richest the material
allows; variants are duplicated clips; TRAINING.md names the commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, extract_demo


def _caption_for(path: Path) -> str | None:
    # what SA3's caption_metadata_fn does for each clip its SampleDataset finds
    txt = Path(path).with_suffix(".txt")
    return txt.read_text().strip() if txt.exists() else None


@pytest.fixture(scope="module")
def sa3_build(tmp_path_factory, demo_library):
    from sat_mir.build.pipeline import BuildSettings, run_build

    out = tmp_path_factory.mktemp("sa3") / "out"
    extract_demo(out, demo_library, {"info": {}, "loudness": {}, "rhythm": {}, "tonal": {}, "spectral": {}})
    prompts = yaml.safe_load((REPO / "conf" / "prompts" / "default.yaml").read_text())

    def build(captions: int):
        return run_build(BuildSettings(output=out, formats=("sa3_data_dir",), prompts=prompts, item_seconds=10.0,
                                       conditioning={"numbers": ["bpm"]}, sa3_captions=captions, progress=False))

    return out, build


def test_every_clip_a_loader_finds_has_its_rich_caption(sa3_build):
    from stable_audio_tools.data.dataset import get_audio_filenames  # SA3's loader is SAT's, forked

    out, build = sa3_build
    summary = build(1)
    folder = out / "sat" / "sa3"
    found = get_audio_filenames(str(folder), ["flac", "wav", "mp3", "ogg"])
    assert len(found) == summary.items >= 4
    captions = {Path(p).stem: _caption_for(p) for p in found}
    assert all(captions.values()), captions
    # the richest caption: every control stated, a fixed text (not a draw per fetch)
    sunrise = next(c for k, c in captions.items() if k.startswith("demo-01-sunrise"))
    assert "beats per minute" in sunrise.lower() or "bpm" in sunrise.lower()
    assert all(len(c.split()) >= 8 for c in captions.values())
    notes = (out / "sat" / "TRAINING.md").read_text()
    assert f"--data_dir {folder}" in notes and "--exclude seconds_total" in notes and "pre_encode_dataset.py" in notes


def test_caption_variants_are_duplicated_clips_and_a_rebuild_leaves_no_stale_ones(sa3_build):
    out, build = sa3_build
    build(3)
    folder = out / "sat" / "sa3"
    clips = sorted(p.stem for p in folder.glob("*.flac"))
    items = sorted({c.rsplit("-v", 1)[0] for c in clips})
    assert len(clips) == 3 * len(items) and all((folder / f"{c}.txt").is_file() for c in clips)
    variants = [_caption_for(folder / f"{items[0]}-v{k}.flac") for k in range(3)]
    assert len(set(variants)) >= 2  # drawn differently (field order, separators)
    assert (folder / f"{items[0]}-v0.flac").stat().st_ino == (out / "sat" / "audio" / f"{items[0]}.flac").stat().st_ino
    build(1)
    assert sorted(p.stem for p in folder.glob("*.flac")) == items  # the -v<k> clips are gone
    assert not list(folder.glob("*-v*.txt"))
