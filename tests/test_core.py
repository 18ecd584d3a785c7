"""The core install: DSP features, crops and the audio formats of the build work with none of the
optional parts importable (torch, TensorFlow, Essentia, transformers, stable-audio-tools, Demucs,
Ray), and a part that needs one says which extra to install, in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sat_mir.extras import EXTRAS

# A Python that cannot import any optional package, as after `pip install sat-mir` alone.
BLOCKER = f"""
import sys
BLOCKED = {sorted({m for mods in EXTRAS.values() for m in mods} | {"tensorflow", "torchaudio", "torchcodec",
                                                                  "torchvision", "webdataset", "huggingface_hub"})!r}
class _Core:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Core())
"""


@pytest.fixture(scope="module")
def core_env(tmp_path_factory):
    site = tmp_path_factory.mktemp("core_site")
    (site / "sitecustomize.py").write_text(BLOCKER)
    base = site.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "SAT_MIR_CACHE": str(base / "cache"), "SAT_MIR_OUTPUT": str(base / "out"),
           "SAT_MIR_MODELS": str(base / "no-models")}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "torch" in probe.stderr  # the blocker works
    return env, base


def _run(env, cwd, *args):
    return subprocess.run([sys.executable, "-m", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_the_core_extracts_crops_and_builds_the_audio_formats_without_torch(core_env):
    env, base = core_env
    ext = _run(env, base, "sat_mir.extract", "+dataset=demo", "separation=none", "crops=div4", "progress=false",
               "extractors=[info,loudness,rhythm,tonal,chords,essentia]", "extractors.essentia.enabled=auto")
    assert ext.returncode == 0, ext.stderr[-3000:]
    assert "extractor essentia is off this run" in ext.stderr
    built = _run(env, base, "sat_mir.build", "+dataset=demo", "formats=[audio_dir,wds]", "progress=false")
    assert built.returncode == 0, built.stderr[-3000:]
    sat = base / "out" / "demo" / "sat"
    assert len(list((sat / "audio").glob("*.flac"))) >= 4 and list((sat / "wds" / "audio").glob("*.tar"))
    assert "Traceback" not in ext.stderr + built.stderr


def test_a_part_without_its_extra_names_the_extra_in_one_line(core_env):
    env, base = core_env
    import numpy as np
    import soundfile as sf

    lib = base / "plain"  # a mix without stems: separation has something to do
    lib.mkdir()
    t = np.arange(6 * 22050) / 22050
    sf.write(lib / "song.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 22050)
    sep = _run(env, base, "sat_mir.extract", "+dataset=mine", f"dataset.root={lib}", "separation=htdemucs",
               "extractors=[info]", "progress=false")
    assert sep.returncode == 3, sep.stderr[-2000:]
    assert "pip install 'sat-mir[separation]'" in sep.stderr and "Traceback" not in sep.stderr
    latents = _run(env, base, "sat_mir.build", "+dataset=demo", "formats=[pre_encoded]", "progress=false")
    assert latents.returncode == 3
    assert "pip install 'sat-mir[sat]'" in latents.stderr and "Traceback" not in latents.stderr
    ray = _run(env, base, "sat_mir.extract", "+dataset=demo", "separation=none", "executor=ray", "extractors=[info]",
               "progress=false")
    assert ray.returncode == 3 and "pip install 'sat-mir[ray]'" in ray.stderr and "Traceback" not in ray.stderr
