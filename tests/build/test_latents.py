"""Latent pre-encoding with a tiny random VAE: layout, sidecars, resume, failures, and SAT's own reader."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from sat_mir.build.latents import EncodeItem, encode_items, load_autoencoder  # noqa: E402
from sat_mir.errors import ConfigError, WeightsError  # noqa: E402
from sat_mir.fsutil import sha256_file  # noqa: E402

from conftest import load_tool  # noqa: E402

SR = 44100
SAMPLE_SIZE = 65536  # 1.49 s; the tiny VAE's ratio is 32, so N = 2048 frames



@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory) -> tuple[Path, Path]:
    return load_tool("make_tiny_vae").make_tiny_vae(tmp_path_factory.mktemp("vae"), seed=0)


@pytest.fixture(scope="module")
def ae(tiny_vae):
    return load_autoencoder(*tiny_vae, device="cpu")


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    """Three files: stereo 44.1 kHz 3 s, mono 48 kHz 1 s, 3-channel 22.05 kHz 2 s."""
    d = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    sf.write(d / "long.wav", np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], 1) * 0.5, SR)
    t48 = np.arange(48000) / 48000
    sf.write(d / "short.flac", np.sin(2 * np.pi * 440 * t48) * 0.5, 48000)
    sf.write(d / "multi.wav", (rng.standard_normal((44100, 3)) * 0.1).astype(np.float32), 22050)
    (d / "notaudio.wav").write_text("this is not audio\n")
    return d


def _items(d: Path) -> list[EncodeItem]:
    return [
        EncodeItem("long", d / "long.wav", start_s=0.5, metadata={"prompt": "two sines", "bpm": 120.5}),
        EncodeItem("short", d / "short.flac"),
        EncodeItem("mid", d / "multi.wav", start_s=1.2, duration_s=0.7),
    ]


def _encode(items, ae, out, **kw):
    return encode_items(items, ae, out, sample_size=SAMPLE_SIZE, batch_size=2, num_workers=1, progress=False, **kw)


def _sat_style_mask(n_real: int, n_frames: int) -> list[int]:
    """SAT's pre_encode.py: nearest-neighbour interpolation of the per-sample mask to N frames."""
    mask = torch.zeros(SAMPLE_SIZE)
    mask[:n_real] = 1
    return torch.nn.functional.interpolate(mask[None, None], size=n_frames, mode="nearest").squeeze().int().tolist()


def test_shapes_sidecars_and_padding_mask(ae, audio_dir, tmp_path):
    out = tmp_path / "latents"
    summary = _encode(_items(audio_dir), ae, out)
    assert (summary.encoded, summary.skipped, summary.failed) == (3, 0, {})
    n = SAMPLE_SIZE // ae.downsampling_ratio
    assert (ae.downsampling_ratio, ae.latent_dim, n) == (32, 8, 2048)
    for item_id in ("long", "short", "mid"):
        z = np.load(out / f"{item_id}.npy")
        assert z.shape == (ae.latent_dim, n) and z.dtype == np.float32
        assert np.isfinite(z).all() and z.std() > 0

    side = {k: json.loads((out / f"{k}.json").read_text()) for k in ("long", "short", "mid")}
    # long: 2.5 s from 0.5 s, longer than the 1.49 s window -> cropped, every frame real
    assert side["long"]["prompt"] == "two sines" and side["long"]["bpm"] == 120.5
    assert side["long"]["seconds_start"] == 0 and side["long"]["seconds_total"] == 3
    assert side["long"]["padding_mask"] == [1] * n
    # short: 1 s of 48 kHz mono -> 44100 samples at 44.1 kHz, duplicated to stereo, padded
    real = math.ceil(SR / 32)  # 1379 frames start inside real audio
    assert side["short"]["padding_mask"] == [1] * real + [0] * (n - real)
    assert side["short"]["padding_mask"] == _sat_style_mask(SR, n)
    assert (side["short"]["seconds_start"], side["short"]["seconds_total"]) == (0, 1)
    # mid: 0.7 s from 1.2 s of a 3-channel 22.05 kHz file
    n_mid = round(0.7 * SR)
    assert side["mid"]["padding_mask"] == _sat_style_mask(n_mid, n)
    assert (side["mid"]["seconds_start"], side["mid"]["seconds_total"]) == (1, 1)
    for s in side.values():
        assert s["sample_rate"] == SR and type(s["seconds_start"]) is int and type(s["seconds_total"]) is int
        assert set(s["padding_mask"]) <= {0, 1} and len(s["padding_mask"]) == n

    assert (out / "filelist.txt").read_text().splitlines() == ["long.npy", "mid.npy", "short.npy"]
    details = json.loads((out / "details.json").read_text())
    assert details["sample_size"] == SAMPLE_SIZE and details["latent_dim"] == 8 and details["downsampling_ratio"] == 32
    assert details["latent_dtype"] == "float32" and details["sample_rate"] == SR


def test_rerun_skips_and_redoes_a_deleted_latent(ae, audio_dir, tmp_path):
    out = tmp_path / "latents"
    _encode(_items(audio_dir), ae, out)
    again = _encode(_items(audio_dir), ae, out)
    assert (again.encoded, again.skipped, again.failed) == (0, 3, {})
    (out / "mid.npy").unlink()
    redo = _encode(_items(audio_dir), ae, out)
    assert (redo.encoded, redo.skipped) == (1, 2)
    assert np.load(out / "mid.npy").shape == (8, 2048)
    with pytest.raises(ConfigError, match="sample_size"):
        encode_items(_items(audio_dir), ae, out, sample_size=2 * SAMPLE_SIZE, num_workers=0, progress=False)


def test_latents_are_the_same_in_every_run_and_batch(ae, audio_dir, tmp_path):
    """Seeded posterior samples: a build, and one killed after its first item and resumed (its
    batches hold other items), write the same bytes; the samples are SAT's vae_sample."""
    a, b = tmp_path / "a", tmp_path / "b"
    _encode(_items(audio_dir), ae, a)
    _encode(_items(audio_dir)[1:2], ae, b)
    assert _encode(_items(audio_dir)[::-1], ae, b).encoded == 2
    for item_id in ("long", "short", "mid"):
        assert (a / f"{item_id}.npy").read_bytes() == (b / f"{item_id}.npy").read_bytes()
    details = json.loads((a / "details.json").read_text())
    assert details["ckpt_sha256"] == sha256_file(ae.ckpt) and "seeded by the item id" in details["sampling"]
    # a sample, not the mean: SAT trains on posterior samples
    x = torch.from_numpy(np.zeros((1, 2, SAMPLE_SIZE), np.float32))
    x[..., :] = torch.sin(torch.arange(SAMPLE_SIZE) * 0.05)
    mean, scale = ae.model.encode(x, skip_bottleneck=True).chunk(2, dim=1)
    z1, z2 = ae.encode(x, seeds=[1]), ae.encode(x, seeds=[2])
    assert torch.equal(ae.encode(x, seeds=[1]), z1) and not torch.equal(z1, z2)
    noise = (z1 - mean) / (torch.nn.functional.softplus(scale) + 1e-4)  # SAT's vae_sample, undone
    assert abs(float(noise.mean())) < 0.05 and float(noise.std()) == pytest.approx(1.0, abs=0.05)


def test_another_checkpoint_encodes_every_item_again(tiny_vae, ae, audio_dir, tmp_path):
    out = tmp_path / "latents"
    _encode(_items(audio_dir), ae, out)
    before = (out / "long.npy").read_bytes()
    other = load_tool("make_tiny_vae").make_tiny_vae(tmp_path / "other", seed=1)
    redo = _encode(_items(audio_dir), load_autoencoder(*other, device="cpu"), out)
    assert (redo.encoded, redo.skipped) == (3, 0)
    assert (out / "long.npy").read_bytes() != before
    assert json.loads((out / "details.json").read_text())["ckpt_sha256"] == sha256_file(other[1])


def test_bad_file_fails_only_its_item(ae, audio_dir, tmp_path):
    out = tmp_path / "latents"
    items = _items(audio_dir) + [
        EncodeItem("broken", audio_dir / "notaudio.wav"),
        EncodeItem("gone", audio_dir / "missing.wav"),
        EncodeItem("late", audio_dir / "short.flac", start_s=5.0),
    ]
    summary = _encode(items, ae, out, latent_dtype="float16")
    assert summary.encoded == 3 and set(summary.failed) == {"broken", "gone", "late"}
    assert "notaudio.wav" in summary.failed["broken"] and "after the end" in summary.failed["late"]
    assert (out / "filelist.txt").read_text().splitlines() == ["long.npy", "mid.npy", "short.npy"]
    assert np.load(out / "long.npy").dtype == np.float16
    assert not (out / "broken.npy").exists()


def test_missing_or_mismatched_weights(tiny_vae, tmp_path):
    config, ckpt = tiny_vae
    with pytest.raises(WeightsError, match="vae_model.ckpt") as err:
        load_autoencoder(config, tmp_path / "vae_model.ckpt")
    assert "stabilityai/stable-audio-open-1.0" in str(err.value)
    with pytest.raises(WeightsError, match="model_config.json"):
        load_autoencoder(tmp_path / "model_config.json", ckpt)
    unrelated = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"foo.weight": torch.zeros(3)}}, unrelated)
    with pytest.raises(WeightsError, match="matches no|none of its"):
        load_autoencoder(config, unrelated)


def test_full_model_config_and_prefixed_checkpoint(tiny_vae, tmp_path):
    """SAO's model_config.json nests the VAE under model.pretransform; a full model's tensors
    carry the prefix pretransform.model."""
    config, ckpt = tiny_vae
    ae_cfg = json.loads(config.read_text())
    full = {"model_type": "diffusion_cond", "sample_rate": 44100, "audio_channels": 2, "sample_size": SAMPLE_SIZE,
            "model": {"pretransform": {"type": "autoencoder", "iterate_batch": True, "config": ae_cfg["model"]}}}
    (tmp_path / "model_config.json").write_text(json.dumps(full))
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    wrapped = {f"pretransform.model.{k}": v for k, v in state.items()} | {"model.other.weight": torch.ones(2)}
    torch.save({"state_dict": wrapped}, tmp_path / "model.ckpt")
    ae = load_autoencoder(tmp_path / "model_config.json", tmp_path / "model.ckpt", device="cpu")
    assert ae.ckpt_prefix == "pretransform.model." and (ae.latent_dim, ae.downsampling_ratio) == (8, 32)
    loaded = ae.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_item_ids_are_checked(audio_dir):
    with pytest.raises(ConfigError, match="dots"):
        EncodeItem("a.b", audio_dir / "long.wav")
    with pytest.raises(ConfigError, match="padding_mask"):
        EncodeItem("a", audio_dir / "long.wav", metadata={"padding_mask": [1]})
    with pytest.raises(ConfigError, match="JSON"):
        EncodeItem("a", audio_dir / "long.wav", metadata={"x": np.float32(1.0)})


def test_stable_audio_tools_reads_the_output(ae, audio_dir, tmp_path):
    from stable_audio_tools.data.dataset import create_dataloader_from_config

    out = tmp_path / "latents"
    _encode(_items(audio_dir), ae, out)
    cfg = {"dataset_type": "pre_encoded", "datasets": [{"id": "x", "path": str(out)}],
           "random_crop": False, "drop_last": False}
    loader = create_dataloader_from_config(cfg, batch_size=2, sample_size=SAMPLE_SIZE, sample_rate=SR,
                                           audio_channels=2, num_workers=1, shuffle=False)
    latents, infos = next(iter(loader))
    assert tuple(latents.shape) == (2, 8, SAMPLE_SIZE // 32)
    assert [Path(i["latent_filename"]).name for i in infos] == ["long.npy", "mid.npy"]
    assert [(i["seconds_start"], i["seconds_total"]) for i in infos] == [(0, 3), (1, 1)]
    assert infos[0]["prompt"] == "two sines"
    mask = infos[1]["padding_mask"][0]
    assert mask.shape == (SAMPLE_SIZE // 32,) and int(mask.sum()) == math.ceil(round(0.7 * SR) / 32)
    assert torch.equal(latents[0], torch.from_numpy(np.load(out / "long.npy")))
