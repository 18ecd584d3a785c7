"""Features over time: the series a control head on the latents is trained to follow.

Written as ``series.npz`` beside the sidecar, on one frame grid for every series: the analysis
front end's (22.05 kHz, hop 512: frame ``k`` is the instant ``k * 512 / 22050`` s, about 43 per
second), so the onset envelope, the STFT and the beat grid the other extractors already made in
this analysis context are reused, not recomputed.  The build resamples them onto the latent
frames of the autoencoder it encodes with (:mod:`sat_mir.build.series`); 43 Hz is finer than
any latent grid Stable Audio uses (21.5 Hz for Stable Audio Open, 10.8 Hz for Stable Audio 3).

Series (float32, one value per frame unless said):

- ``loudness_momentary``: BS.1770 momentary loudness, LUFS: the K-weighted, channel-weighted
  mean square over the 395 ms (17 frames; BS.1770's block is 400 ms) centred on the frame, read
  off the 100 ms chunk energies of the loudness extractor's filter pass; below −70 LUFS (the
  standard's absolute gate: silence to it) it reads −70.
- ``onset_strength``: the mix's spectral-flux onset envelope (librosa's mel flux, the one the
  beat tracker reads), moved one frame earlier for the front end's latency (the last frame
  repeats its neighbour).
- ``beat_phase``, ``downbeat_phase``: position in [0, 1) between the beat (bar line) before
  the frame and the next one, from the track's beat grid; NaN before the first and after the
  last, where the grid says nothing.
- ``chroma``: ``[12, frames]`` pitch-class energy (C..B, A = 440 Hz), each frame scaled to a
  maximum of 1 (all zero where the frame is silent).
- ``spectral_centroid``: Hz (0 where the frame is silent).
- ``rms_mix``, ``rms_<stem>``: RMS of the mono signal over the frame's span (linear, full
  scale 1), for the mix and each stem the track has.
"""

from __future__ import annotations

import io
import numpy as np

from sat_mir.audio.context import SignalContext, TrackContext, channel_mean, stft_frames
from sat_mir.audio.filterbanks import chroma_filters, normalize
from sat_mir.errors import ExtractorError
from sat_mir.features.registry import ExtractorResult, OutputSpec, register
from sat_mir.features.rhythm import LATENCY_FRAMES, UsesBeatGrid, grid_settings, metrical_of

__all__ = ["FPS", "SERIES_FILE", "Series", "frame_blocks", "npz_bytes", "phase_at", "series_bytes"]

SERIES_FILE = "series.npz"
SR, HOP = 22050, 512  # sat_mir.features.rhythm's front end
FPS = SR / HOP
SILENCE_LUFS = -70.0  # BS.1770's absolute gate
MOMENTARY_FRAMES = 17  # 17 * 512 / 22050 = 0.395 s, BS.1770's 400 ms block on this grid
_LUFS_OFFSET = -0.691


def frame_blocks(x: np.ndarray, sr: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of ``x`` (``[samples]``, at ``sr``) over each frame's span ``[k - ½, k + ½) * HOP / SR``
    seconds, clipped to the signal, and the samples in each span: two ``[frames]`` arrays."""
    bounds = np.clip(np.round((np.arange(frames + 1) - 0.5) * sr / FPS).astype(np.int64), 0, x.shape[-1])
    starts, count = bounds[:-1], np.diff(bounds)
    sums = np.zeros(frames)
    full = count > 0  # contiguous spans: each ends where the next starts
    if full.any():
        # sums of at most a few thousand squares: float32 accumulation is exact enough (1e-4)
        sums[full] = np.add.reduceat(x[: bounds[-1]], starts[full])
    return sums, count


def phase_at(times: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """Position of each time between the mark before it and the next, in [0, 1); NaN outside
    ``[marks[0], marks[-1])`` or with fewer than two marks."""
    out = np.full(times.shape, np.nan, dtype=np.float32)
    marks = np.asarray(marks, dtype=np.float64)
    if marks.size < 2:
        return out
    i = np.searchsorted(marks, times, side="right") - 1
    inside = (i >= 0) & (i < marks.size - 1)
    j = i[inside]
    out[inside] = (times[inside] - marks[j]) / (marks[j + 1] - marks[j])
    return out


# Samples per block of the series' sample-rate passes: the squares are the only signal-long
# array they make (a 10-minute stem's mono, copies and filtered copies held 0.3 GB at once).
_BLOCK = 1 << 18


def _rms(sig: SignalContext, frames: int) -> np.ndarray:
    x = sig.samples
    squares = np.empty(x.shape[-1], dtype=np.float32)
    for a in range(0, x.shape[-1], _BLOCK):  # the channel mean a block at a time: sig.mono's values
        m = channel_mean(x[:, a:a + _BLOCK])
        squares[a:a + m.shape[0]] = np.square(m)
    energy, n = frame_blocks(squares, sig.sr, frames)
    return np.sqrt(energy / np.maximum(n, 1)).astype(np.float32)


def _stem_rms(sig: SignalContext, frames: int) -> np.ndarray:
    return sig.memo(("series.rms", frames), lambda: _rms(sig, frames))


def _momentary_lufs(sig: SignalContext, frames: int) -> np.ndarray:
    """BS.1770 momentary loudness on the series' frames, from the K-weighted energies of 10 ms
    parts that the loudness extractor sums into its 100 ms chunks (one filter pass for both).
    A window's energy is read off the cumulative energy, linear within a part: only the 10 ms
    at each end of a window are spread.  Windows are cut at the signal's ends, as the frames'
    spans are (the samples after the last whole part, under 10 ms, left out)."""
    from sat_mir.features.bs1770 import channel_weights
    from sat_mir.features.loudness import chunk_energy_of

    chunks, parts = chunk_energy_of(sig)
    step = int(round(0.1 * sig.sr)) // parts
    cum = np.concatenate([[0.0], np.cumsum(channel_weights(chunks.shape[0]) @ chunks)])
    end = float(step * chunks.shape[-1])
    centre = np.arange(frames) * (sig.sr / FPS)
    half = MOMENTARY_FRAMES / 2 * sig.sr / FPS
    lo = np.clip(centre - half, 0.0, end)
    hi = np.clip(centre + half, 0.0, end)
    pos = np.arange(cum.size) * float(step)
    span = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        lufs = _LUFS_OFFSET + 10.0 * np.log10((np.interp(hi, pos, cum) - np.interp(lo, pos, cum)) / span)
    return np.where(np.isfinite(lufs) & (lufs > SILENCE_LUFS), lufs, SILENCE_LUFS).astype(np.float32)


def _chroma(mag: np.ndarray) -> np.ndarray:
    """``librosa.feature.chroma_stft(S=mag**2, sr=SR, n_fft=2048, tuning=0.0)``: the chroma
    filters' product with the power spectrum, each frame scaled to a maximum of 1 (the same
    values, without importing librosa's numba)."""
    raw = np.einsum("cf,ft->ct", chroma_filters(SR, 2048), mag ** 2, optimize=True)
    return normalize(raw, norm=np.inf, axis=-2).astype(np.float32)


def _centroid(mag: np.ndarray) -> np.ndarray:
    """librosa's spectral centroid (magnitude-weighted mean frequency) as one product: its
    per-frame normalisation costs four times as much."""
    freqs = np.fft.rfftfreq(2 * (mag.shape[0] - 1), 1.0 / SR).astype(np.float32)
    total = mag.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (freqs @ mag) / total, 0.0).astype(np.float32)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez``'s format with a fixed date on every member (``np.savez`` stamps the current
    time), so the same arrays always give the same bytes: a resumed or re-run extraction, or one
    on another executor, writes identical files."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buf.getvalue()


def series_bytes(series: dict[str, np.ndarray]) -> bytes:
    return npz_bytes({"fps": np.float64(FPS), **series})


@register
class Series(UsesBeatGrid):
    name = "series"
    version = "16"  # 2: the beat grid reaches back to the first sound (beat_phase defined from there); 3: slip mended;
    # 4: the durational accent moves a drumless separated grid; 5: beat candidates at 3/4 and 4/3;
    # 6: the kick moves a grid off a shuffle's off-beats; 7: the metrical models' average of two fits;
    # 8: beats on the notes' starts (rhythm.ATTACK_LEAD_S); 9: beats on their local line (steady_beats);
    # 10: beats on the track's own attacks (attack.attack_shift); 11: drums sure from a flatness of 0.46;
    # 12: the kick's move asks for onsets there and a drums stem's kick 4 times stronger (kick_shift);
    # 13: where the tempo steps, the tracker's period follows it (metrical.local_tempo); 14: bar models
    # refitted with the kick's place in the bar; 15: the momentary loudness from the loudness
    # extractor's K-weighted 10 ms parts; 16: bar models refitted with drum-machine kicks
    signals = ("mix", "stems")
    outputs = (
        OutputSpec("series_frames", "frames", f"frames of the time series in {SERIES_FILE} "
                   f"({FPS:.3f} per second)", (1, 1e8), kind="int"),
    )

    def prepare(self, ctx: TrackContext, stem: str) -> None:
        super().prepare(ctx, stem)
        _stem_rms(ctx.stem(stem), stft_frames(ctx.mix.mono_at(SR).shape[-1], 2048, HOP))

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        mix = ctx.mix
        if mix.samples.size == 0:
            raise ExtractorError("the mix is empty")
        mag = mix.stft_magnitude(sr=SR, n_fft=2048, hop=HOP)
        frames = mag.shape[1]
        env = mix.onset_envelope(sr=SR, hop=HOP)[:frames]
        onset = np.concatenate([env[LATENCY_FRAMES:], np.repeat(env[-1:], LATENCY_FRAMES)])
        times = np.arange(frames) * HOP / SR
        grid = metrical_of(ctx, **grid_settings(self.config))
        series = {
            "loudness_momentary": _momentary_lufs(mix, frames),
            "onset_strength": onset.astype(np.float32),
            "beat_phase": phase_at(times, grid.beats),
            "downbeat_phase": phase_at(times, grid.downbeats),
            # tuned to A440: librosa's tuning estimate would cost more than every other series together
            "chroma": _chroma(mag),
            "spectral_centroid": _centroid(mag),
            "rms_mix": _rms(mix, frames),
        }
        for stem in ctx.stem_names:
            series[f"rms_{stem}"] = _stem_rms(ctx.stem(stem), frames)
        result = ExtractorResult(values={"series_frames": frames})
        result.artifacts[SERIES_FILE] = series_bytes(series)
        return result
