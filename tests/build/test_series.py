"""Time series on the latent grid: a synthetic track whose loudness steps, onsets and stem entry
are known lands on the right latent frames (±1) at Stable Audio Open's and Stable Audio 3's
frame rates, with exactly the latent's frame count and padding mask; and the demo build writes
them beside every latent and into the latent shards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from sat_mir.audio import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.build.series import ITEM_SUFFIX, LatentGrid, on_latent_grid
from sat_mir.features.series import SERIES_FILE, Series, phase_at

SR = 44100
SECONDS = 20.0
STEP_S = 8.0  # the mix gets 20 dB louder here
BASS_IN_S = 12.0  # the bass stem starts here
ONSETS_S = (2.5, 5.3, 11.7, 14.2, 17.9)


def _track() -> TrackContext:
    rng = np.random.default_rng(0)
    n = int(SECONDS * SR)
    t = np.arange(n) / SR
    bed = rng.normal(0, 1, n) * np.where(t < STEP_S, 0.01, 0.1)
    clicks = np.zeros(n)
    for on in ONSETS_S:
        i = int(on * SR)
        k = np.arange(int(0.03 * SR))
        clicks[i : i + k.size] += rng.normal(0, 1, k.size) * 0.8 * np.exp(-k / (0.005 * SR))
    bass = np.where(t >= BASS_IN_S, 0.3 * np.sin(2 * np.pi * 55 * t), 0.0)
    signals = {"mix": bed + clicks + bass, "drums": clicks, "bass": bass}
    audio = {name: Audio(np.stack([x, x]).astype(np.float32), SR) for name, x in signals.items()}
    return TrackContext({name: Path(f"<{name}>") for name in signals}, loader=lambda p: audio[p.name.strip("<>")])


@pytest.fixture(scope="module")
def track_series():
    result = Series().compute(_track())
    with np.load(io.BytesIO(result.artifacts[SERIES_FILE])) as data:
        fps = float(data["fps"])
        series = {k: data[k] for k in data.files if k != "fps"}
    assert result.values["series_frames"] == series["rms_mix"].shape[-1]
    return series, fps


def _first_above(x: np.ndarray, level: float) -> int:
    return int(np.flatnonzero(x > level)[0])


def _stays_above_from(x: np.ndarray, level: float) -> int:
    """The first frame from which ``x`` stays above ``level`` (a click before a step may cross it)."""
    return int(np.flatnonzero(x <= level)[-1]) + 1


@pytest.mark.parametrize("hop", [2048, 4096])  # SAO: 21.5 frames/s; SA3: 10.8 frames/s
def test_known_events_land_on_their_latent_frames(track_series, hop):
    series, fps = track_series
    start_s, item_s = 3.0, 12.0  # a chunk from 3 s to 15 s, in a latent window of 16 s
    frames = int(16.0 * SR) // hop
    grid = LatentGrid.of_item(samples=int(item_s * SR), sample_rate=SR, hop=hop, frames=frames)
    got = on_latent_grid(series, fps, grid, start_s=start_s)

    real = -(-int(item_s * SR) // hop)
    assert grid.real_frames == real < frames
    for key, values in got.items():
        assert values.shape[-1] == frames, key
        assert not np.any(values[..., real:]), key  # the padding: zeros, masked
    frame_of = lambda s: (s - start_s) * SR / hop  # noqa: E731 - the latent frame holding second s

    # in power, where the 400 ms window centred on the step holds half of each level
    power = 10 ** (got["loudness_momentary"][:real] / 10)
    step = int(frame_of(STEP_S))
    mid = (np.median(power[: step - 6]) + np.median(power[step + 6 : int(frame_of(BASS_IN_S)) - 6])) / 2
    assert abs(_stays_above_from(power, mid) - frame_of(STEP_S)) <= 1

    bass = got["rms_bass"][:real]
    assert abs(_first_above(bass, bass.max() / 2) - frame_of(BASS_IN_S)) <= 1
    assert not np.any(got["rms_drums"][: int(frame_of(ONSETS_S[1])) - 1])  # silence before the first click in view

    onset = got["onset_strength"][:real]
    for s in (s for s in ONSETS_S if start_s <= s < start_s + item_s):
        f = frame_of(s)
        near = np.arange(max(0, int(f) - 4), min(real, int(f) + 6))
        peak = near[np.argmax(onset[near])]
        assert abs(peak - f) <= 1, (s, peak, f)  # the click is where the onset strength peaks nearby
        assert onset[peak] > 3 * np.median(onset[max(0, int(f) - 20) : int(f) + 20])  # and it stands out


def test_phase_is_the_position_between_marks():
    marks = np.array([1.0, 1.5, 2.5])
    got = phase_at(np.array([0.9, 1.0, 1.25, 1.5, 2.0, 2.49, 2.5]), marks)
    np.testing.assert_allclose(got[1:6], [0.0, 0.5, 0.0, 0.5, 0.99], atol=1e-6)
    assert np.isnan(got[0]) and np.isnan(got[6])  # before the first and from the last: unknown


def test_the_demo_build_writes_series_beside_every_latent_and_into_the_shards(tmp_path, demo_library):
    pytest.importorskip("stable_audio_tools")
    import yaml

    from conftest import REPO, extract_demo, load_tool
    from sat_mir.build.pipeline import BuildSettings, run_build

    out = tmp_path / "out"
    extract_demo(out, demo_library, {"info": {}, "loudness": {}, "rhythm": {}, "series": {}})
    models = load_tool("make_tiny_sat_model").make_tiny_sat_model(tmp_path / "models", sample_size=262144)
    prompts = yaml.safe_load((REPO / "conf" / "prompts" / "default.yaml").read_text())
    summary = run_build(BuildSettings(output=out, formats=("pre_encoded", "wds_latents", "sa3_data_dir"),
                                      model_dir=models, prompts=prompts, conditioning={"numbers": ["lufs"]},
                                      progress=False))
    assert summary.exit_code == 0
    latents = out / "sat" / "latents"
    ids = sorted(p.stem for p in latents.glob("*.npy"))
    assert len(ids) == summary.items > 4
    for iid in ids:
        latent = np.load(latents / f"{iid}.npy")
        mask = json.loads((latents / f"{iid}.json").read_text())["padding_mask"]
        with np.load(latents / f"{iid}{ITEM_SUFFIX}") as s:
            assert s["padding_mask"].tolist() == mask
            assert {k: s[k].shape[-1] for k in ("loudness_momentary", "chroma", "rms_bass")} == dict.fromkeys(
                ("loudness_momentary", "chroma", "rms_bass"), latent.shape[-1])
    # Stable Audio 3's grid: one frame per 4096 samples of each whole clip
    import soundfile as sf

    for iid in ids:
        with np.load(out / "sat" / "sa3_series" / f"{iid}{ITEM_SUFFIX}") as s:
            assert s["rms_mix"].shape[-1] == -(-sf.info(str(out / "sat" / "audio" / f"{iid}.flac")).frames // 4096)
            assert float(s["frame_rate"]) == pytest.approx(44100 / 4096)
    members = set()
    for shard in (out / "sat" / "wds" / "latents").glob("*.tar"):
        with tarfile.open(shard) as tar:
            members |= set(tar.getnames())
    assert {f"{iid}.series.npz" for iid in ids} <= members


def test_the_blockwise_rms_equals_one_pass_and_the_momentary_loudness_its_exact_windows():
    from scipy.signal import sosfilt

    from sat_mir.audio.context import SignalContext
    from sat_mir.features import series as S
    from sat_mir.features.bs1770 import channel_weights, k_weighting_sos

    rng = np.random.default_rng(2)
    x = (0.2 * rng.standard_normal((2, 3 * S._BLOCK + 77))).astype(np.float32)
    frames = int(x.shape[1] / SR * S.FPS) + 1
    energy, n = S.frame_blocks(np.square(x.mean(axis=0, dtype=np.float32)), SR, frames)
    np.testing.assert_array_equal(S._rms(SignalContext("stem", Audio(x, SR)), frames),
                                  np.sqrt(energy / np.maximum(n, 1)).astype(np.float32))
    # the momentary loudness against one K-weighting pass in float64 and the exact 395 ms window
    # centred on each frame, cut at the signal's ends: on noise, and on noise bursts of 0.73 s
    # after digital silence, whose onsets and ends fall anywhere in the 10 ms parts
    on = ((np.arange(x.shape[1]) // int(0.73 * SR)) % 2).astype(np.float32)
    centre = np.arange(frames) * SR / S.FPS
    half = S.MOMENTARY_FRAMES / 2 * SR / S.FPS
    lo = np.clip(np.round(centre - half), 0, x.shape[1]).astype(int)
    hi = np.clip(np.round(centre + half), 0, x.shape[1]).astype(int)
    for signal, sounding in ((x, np.ones_like(on)), (x * on, on)):
        got = S._momentary_lufs(SignalContext("mix", Audio(signal, SR)), frames)
        weighted = sum(w * np.square(sosfilt(k_weighting_sos(SR), c.astype(np.float64)))
                       for w, c in zip(channel_weights(2), signal))
        cum = np.concatenate([[0.0], np.cumsum(weighted)])
        with np.errstate(divide="ignore"):
            ref = np.maximum(-0.691 + 10 * np.log10((cum[hi] - cum[lo]) / (hi - lo)), S.SILENCE_LUFS)
        sound = np.concatenate([[0.0], np.cumsum(sounding)])
        held = (sound[hi] - sound[lo]) / SR >= 0.01  # windows holding at least 10 ms of sound
        assert held.sum() >= 0.7 * frames
        np.testing.assert_allclose(got[held], ref[held], atol=0.03 if signal is x else 0.15)
        if signal is x:
            continue
        near = sound[np.minimum(hi + SR // 100, x.shape[1])] - sound[np.maximum(lo - SR // 100, 0)]
        assert np.all(got[near == 0] == S.SILENCE_LUFS)  # silence 10 ms and more from any sound
        assert np.count_nonzero(near == 0) >= 0.2 * frames
