"""Audio Commons timbral models (AudioCommons/timbral_models 0.4, Pearce et al.), vectorised.

Seven regressions on the "AC score" scale (0–100 for the sounds they were fitted
on; values outside are kept, never clamped) — brightness, depth, hardness,
roughness, warmth, sharpness, booming — and the reverb model's blind RT60 with its
logistic "sounds reverberant" probability.  The regression coefficients are the
original's; the features are re-implemented so that each shared piece is computed
once per track:

* preprocessing: mono, 44.1 kHz, loudness-normalised to −24 LUFS (peak kept ≤ 1);
* one power spectrogram (Hann 4096, hop 2048) serves brightness, depth, warmth,
  hardness' bandwidth and percussive ratio and the loudness measurement; the
  original's Butterworth pre-filters become power weightings of its bins;
* one ISO 532 B specific-loudness pattern per 4096-sample window serves sharpness,
  booming, warmth and hardness (the original recomputed it in five passes);
* one onset detection (the context's shared onset envelope, refined on a
  hold-decay envelope) serves hardness, depth and warmth.

Deviations from the original, all for speed unless stated: onsets come from the
22.05 kHz onset envelope shared with the rhythm extractors and are computed once
(the original ran three slightly different detections at 44.1 kHz); bandwidths are
read from the shared 4096/2048 Hann spectrogram (the original: a boxcar spectrogram
with a 128-sample hop); warmth's per-note spectra are sums of its frames (the
original: 8192-point spectra); third-octave levels come from FFTs rather than IIR
filter banks; HPSS runs on a pooled copy of the spectrogram; roughness analyses one
50 ms frame in every ``roughness_stride`` (the original: all, every 25 ms); the RT60
is that of the mono mix on a wider grid (see
:func:`~sat_mir.features.envelopes.rt60_blind`), where the original averaged
the left and right channels; every input is analysed at 44.1 kHz (the original
kept higher rates).  On the demo songs the scores stay within ≈2 points of the
original's (booming ≈2 higher, sharpness ≈1.5 lower).

Size: about 500 lines, one module on purpose: it ports one library's seven regressions that
share a single analysis (:class:`_Analysis`), and each model's code sits beside the shared
pieces it reads; split by model, every file would import the same private analysis.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.signal import sosfreqz

from sat_mir.audio.context import SignalContext, TrackContext
from sat_mir.errors import ExtractorError
from sat_mir.features.bs1770 import k_weighting_sos
from sat_mir.features.envelopes import attack_start, attack_time, hold_decay_envelope, note_onsets, rt60_blind
from sat_mir.features.psychoacoustics import (
    bark_weight,
    booming_index,
    fastl_sharpness,
    percussive_share,
    specific_loudness,
    spectral_peaks,
    third_octave_weights,
)
from sat_mir.features.registry import Extractor, ExtractorResult, Needs, OutputSpec, register

__all__ = ["MODELS", "Timbral"]

MODELS = ("brightness", "depth", "hardness", "roughness", "warmth", "sharpness", "booming")
SR = 44100  # the models' parameters are in samples at this rate
N_FFT = 4096  # shared spectrogram frame: 10.8 Hz bins for the peak picking of depth and warmth
TARGET_LUFS = -24.0
_SCORE = (-50.0, 150.0)


class _Undefined(Exception):
    """A model has no value for this signal; the message says why."""


@register
class Timbral(Extractor):
    """The Audio Commons timbral attributes of the mix; see the module docstring for how
    they are computed and where they differ from the original."""

    name = "timbral"
    needs = Needs(min_seconds=1.0, min_sound_s=1.0, music=True)
    version = "1"
    signals = ("mix",)
    own_analysis = True  # its own spectrogram and envelopes of the 44.1-kHz mono
    outputs = (
        OutputSpec("brightness", "AC score", "apparent brightness (Audio Commons regression)", _SCORE),
        OutputSpec("depth", "AC score", "apparent depth (Audio Commons regression)", _SCORE),
        OutputSpec("hardness", "AC score", "apparent hardness of the note attacks (Audio Commons)", _SCORE),
        OutputSpec("roughness", "AC score", "roughness (Vassilakis; Audio Commons regression)", _SCORE),
        OutputSpec("warmth", "AC score", "apparent warmth (Audio Commons regression)", _SCORE),
        OutputSpec("sharpness", "AC score", "sharpness (Fastl; Audio Commons regression)", _SCORE),
        OutputSpec("booming", "AC score", "boominess (Hatano-Hashimoto index; Audio Commons)", _SCORE),
        OutputSpec("reverb_rt60_s", "s", "blind reverberation time of the mix (Löllmann ML decay fits)",
                   (0.1, 3.0)),
        OutputSpec("reverb_probability", "probability",
                   "probability that the mix sounds reverberant (Audio Commons logistic of the RT60)", (0.0, 1.0)),
    )

    @dataclass(frozen=True)
    class Config:
        min_duration_s: float = 0.5
        hop: int = 2048
        roughness_stride: int = 4
        envelope_block: int = 4
        onset_sr: int = 22050
        onset_hop: int = 512
        rt60_min_s: float = 0.1
        rt60_max_s: float = 3.0
        rt60_steps: int = 70
        rt60_min_decays: int = 10

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        c = self.config
        a = _analyse(ctx.mix, c)  # not memoised: nothing else uses it, and it holds a copy of the mix
        result = ExtractorResult()
        for key in MODELS:
            try:
                value = _MODELS[key](a)
            except _Undefined as why:
                result.absent[key] = str(why)
            else:
                result.values[key] = round(float(value), 4)
        try:
            rt60 = rt60_blind(a.x, SR, grid=np.geomspace(c.rt60_min_s, c.rt60_max_s, c.rt60_steps),
                              min_decays=c.rt60_min_decays)
        except ValueError as why:
            result.absent["reverb_rt60_s"] = result.absent["reverb_probability"] = str(why)
        else:
            p = 1.0 / (1.0 + math.exp(-(2.97126461 * rt60 - 1.45082989)))
            result.values.update(reverb_rt60_s=round(rt60, 4), reverb_probability=round(p, 4))
        return result


# --- shared analysis -------------------------------------------------------------------

@dataclass(frozen=True)
class _Analysis:
    x: np.ndarray            # mono at SR, loudness-normalised, float32
    freqs: np.ndarray        # [bins] Hz of the shared spectrogram
    power: np.ndarray        # [frames, bins] |STFT|² (Hann N_FFT, frame t from sample t·hop)
    frame_ms: np.ndarray     # [frames] mean square of each frame
    win_energy: float        # N_FFT·Σw²: Σ over two-sided |X|² / win_energy = mean square
    hop: int
    ns: np.ndarray           # [windows, 240] specific loudness (sone/Bark) of 4096-sample windows
    loud_ms: np.ndarray      # [windows] mean square of those windows
    energy: np.ndarray       # [blocks] Σx² over consecutive 256-sample blocks (the last one partial)
    env: np.ndarray          # hold-decay envelope (0.1 s decay, 10 ms hold) on blocks
    block: int               # samples per envelope block
    onsets: np.ndarray       # note onsets, samples
    strength: np.ndarray     # onset-strength envelope
    strength_rate: float     # its frames per second
    roughness_stride: int    # (config) one roughness frame in this many


def _analyse(sig: SignalContext, c: Timbral.Config) -> _Analysis:
    x = np.asarray(sig.mono if sig.sr == SR else sig.mono_at(SR), dtype=np.float32)
    if x.size < c.min_duration_s * SR:
        raise ExtractorError(f"{sig.name} is too short for the timbral models "
                             f"({x.size / SR:.3f} s < {c.min_duration_s} s)")
    peak = max(float(x.max()), -float(x.min()))  # max |x| without a copy of the signal
    if peak == 0.0:
        raise ExtractorError(f"{sig.name} is digital silence")
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
    power = _power_spectrogram(x, N_FFT, c.hop, window)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SR)
    win_energy = N_FFT * float(np.sum(window.astype(np.float64) ** 2))
    two_sided = np.where((freqs > 0) & (freqs < SR / 2), 2.0, 1.0)
    gain = _normalising_gain(power, two_sided, freqs, win_energy, c.hop, peak, sig.name)
    if x.flags.writeable:  # the mix's mono made for us: scaled in place, no second copy
        x *= np.float32(gain)
    else:
        x = x * np.float32(gain)
    power *= np.float32(gain * gain)
    frame_ms = (power @ two_sided.astype(np.float32)).astype(np.float64) / win_energy
    ns, loud_ms = _loudness_windows(x)
    energy = _block_energy(x, 256)
    env = hold_decay_envelope(x, SR, block=c.envelope_block, decay_s=0.1, hold_s=0.01)
    strength = np.asarray(sig.onset_envelope(sr=c.onset_sr, hop=c.onset_hop), dtype=np.float64)
    rate = c.onset_sr / c.onset_hop
    onsets = note_onsets(env, SR / c.envelope_block, strength, rate, onset_sr=c.onset_sr, onset_hop=c.onset_hop)
    return _Analysis(x, freqs, power, frame_ms, win_energy, c.hop, ns, loud_ms, energy, env, c.envelope_block,
                     onsets * c.envelope_block, strength, rate, c.roughness_stride)


def _block_energy(x: np.ndarray, block: int) -> np.ndarray:
    """Sum of squares of each ``block`` samples (the last one zero-padded), float64, a few
    thousand blocks at a time: no padded copy or squares of the whole signal."""
    n = -(-x.size // block)
    out = np.empty(n, dtype=np.float64)
    step = 4096 * block
    for s in range(0, x.size, step):
        chunk = x[s:s + step]
        if chunk.size % block:
            chunk = np.concatenate([chunk, np.zeros(block - chunk.size % block, dtype=x.dtype)])
        out[s // block:s // block + chunk.size // block] = np.square(chunk).reshape(-1, block).sum(axis=1,
                                                                                                  dtype=np.float64)
    return out


def _power_spectrogram(x: np.ndarray, n_fft: int, hop: int, window: np.ndarray) -> np.ndarray:
    """|STFT|² ``[frames, n_fft//2 + 1]``; frame t covers samples [t·hop, t·hop + n_fft) (no
    padding: an abrupt start or end of the signal must not leak into the spectrum)."""
    view = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    out = np.empty((view.shape[0], n_fft // 2 + 1), dtype=np.float32)
    for s in range(0, view.shape[0], 256):
        spec = scipy.fft.rfft(view[s:s + 256] * window, axis=1)
        out[s:s + 256] = spec.real**2 + spec.imag**2
    return out


def _normalising_gain(power, two_sided, freqs, win_energy, hop, peak, name) -> float:
    """Gain to −24 LUFS, limited so the peak stays ≤ 1 (as the original).  BS.1770 gating on
    the K-weighted spectrogram: 400 ms blocks every 100 ms as means of whole frames."""
    _, k = sosfreqz(k_weighting_sos(SR), worN=freqs, fs=SR)
    frame_k = (power @ (np.abs(k) ** 2 * two_sided).astype(np.float32)).astype(np.float64) / win_energy
    length, step = max(1, round(0.4 * SR / hop)), max(1, round(0.1 * SR / hop))
    csum = np.concatenate([[0.0], np.cumsum(frame_k)])
    starts = np.arange(0, max(1, frame_k.size - length + 1), step)
    ends = np.minimum(starts + length, frame_k.size)
    blocks = (csum[ends] - csum[starts]) / (ends - starts)
    with np.errstate(divide="ignore"):
        lufs = -0.691 + 10.0 * np.log10(blocks)
    gated = blocks[lufs > -70.0]
    if gated.size == 0:
        raise ExtractorError(f"{name} is silent (no 400 ms block above -70 LUFS)")
    gated = gated[-0.691 + 10.0 * np.log10(gated) > -0.691 + 10.0 * np.log10(gated.mean()) - 10.0]
    integrated = -0.691 + 10.0 * np.log10(gated.mean())
    return min(10.0 ** ((TARGET_LUFS - integrated) / 20.0), 1.0 / peak)


def _loudness_windows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Specific loudness of consecutive 4096-sample windows (the original's framing, the
    last one zero-padded) and their mean squares.  Third-octave levels (re 100 dB at RMS 1)
    come from each window's unwindowed FFT, whose edge leakage stands in for the start-up
    transients of the original's per-window IIR filter bank: with Hann-windowed levels,
    tonal sounds read up to 15 points less sharp than the original; with these ≈ 4."""
    n = 4096
    count = -(-x.size // n)
    freqs = np.fft.rfftfreq(n, 1.0 / SR)
    two_sided = np.where((freqs > 0) & (freqs < SR / 2), 2.0, 1.0) / (n * n)
    weights = (two_sided[:, None] * third_octave_weights(freqs)).astype(np.float32)
    mean_sq = np.empty(count)
    bands = np.empty((count, weights.shape[1]), dtype=np.float32)
    for s in range(0, count, 256):  # 256 windows at a time: no padded copy of the signal, no power of it all
        e = min(s + 256, count)
        frames = x[s * n:e * n]
        if frames.size < (e - s) * n:
            frames = np.concatenate([frames, np.zeros((e - s) * n - frames.size, dtype=np.float32)])
        spec = scipy.fft.rfft(frames.reshape(e - s, n), axis=1)
        power = spec.real**2 + spec.imag**2
        mean_sq[s:e] = power @ two_sided.astype(np.float32)
        bands[s:e] = power @ weights
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(bands.astype(np.float64)) + 100.0
    return specific_loudness(levels)[0], mean_sq


def _butter_power(freqs: np.ndarray, cutoff: float, kind: str) -> np.ndarray:
    """Power response of three cascaded 2nd-order Butterworth filters (the original filtered
    three times for an 18 dB/octave slope)."""
    r = (np.maximum(freqs, 1e-9) / cutoff) ** 4
    return (r / (1.0 + r) if kind == "high" else 1.0 / (1.0 + r)) ** 3


def _mean(values, weights=None) -> float:
    weights = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(values) == 0 or np.sum(weights) <= 0:
        raise _Undefined("no signal energy to average over")
    return float(np.sum(np.asarray(values) * weights) / np.sum(weights))


def _log10(value: float, what: str) -> float:
    if not value > 0:
        raise _Undefined(f"{what} is {value:.3g}; its logarithm is undefined")
    return math.log10(value)


def _segments(a: _Analysis) -> np.ndarray:
    """Note segment starts (samples): the onsets, or the whole signal when there are fewer
    than two (the original's rule)."""
    return a.onsets if a.onsets.size > 1 else np.zeros(1, dtype=np.int64)


# --- the models: features → the original's linear regressions -----------------------------

def _brightness(a: _Analysis) -> float:
    # Power-weighted means over frames of a ratio and a centroid are ratios of sums: Σ hp / Σ all
    # and Σ f·S / Σ S of the long-term spectrum.
    spectrum = a.power.sum(axis=0, dtype=np.float64) * _butter_power(a.freqs, 20.0, "high")
    ratio = np.sum(spectrum * _butter_power(a.freqs, 2000.0, "high")) / np.sum(spectrum)
    hp = spectrum * _butter_power(a.freqs, 100.0, "high")
    centroid = np.sum(hp * a.freqs) / np.sum(hp)
    return (4.613128018020465 * _log10(ratio, "the energy share above 2 kHz")
            + 17.378889309312974 * _log10(centroid, "the spectral centroid") + 17.434733750553022)


def _depth(a: _Analysis) -> float:
    # the 20-Hz high-passed spectrogram's frame sums, low-pass products and long-term spectrum,
    # a block of frames at a time (a second whole spectrogram was the timbral peak: 64 MB at 3 min)
    hp20 = _butter_power(a.freqs, 20.0, "high").astype(np.float32)
    lp2k, lp500 = _butter_power(a.freqs, 2000.0, "low"), _butter_power(a.freqs, 500.0, "low")
    weights = np.stack([lp2k, lp2k * a.freqs, lp500], axis=1).astype(np.float32)
    frames = a.power.shape[0]
    tpower, low, total = np.empty(frames), np.empty((frames, 3), dtype=np.float32), np.zeros(a.power.shape[1])
    for s in range(0, frames, 1024):
        spec = a.power[s:s + 1024] * hp20
        tpower[s:s + 1024] = spec.sum(axis=1, dtype=np.float64)
        low[s:s + 1024] = spec @ weights
        total += spec.sum(axis=0, dtype=np.float64)
    # Frames under -60 dB ('spectrum'-scaled power of the peak-normalised signal; 1.363 = N·Σw²/(Σw)²
    # of the original's Hamming window) count with a lower centroid and ratio of 0.
    active = a.frame_ms * 1.363 / max(float(a.x.max()), -float(a.x.min())) ** 2 > 1e-3  # max |x|, no copy
    centroid = np.divide(low[:, 1], low[:, 0], out=np.zeros(low.shape[0]), where=active & (low[:, 0] > 0))
    m_centroid = min(_mean(centroid, tpower), 2000.0)
    m_ratio = float(np.sum(np.where(active, low[:, 2], 0.0)) / np.sum(tpower))
    # Decay: from each note's RMS maximum (256-sample blocks) down to -40 dB re the track's RMS
    # maximum, or to the next note.
    n = a.energy.size
    counts = np.full(n, 256.0)
    counts[-1] = a.x.size - 256 * (n - 1)
    rms = np.sqrt(a.energy / counts)
    rms /= rms.max()
    bounds = np.append(_segments(a) // 256, n)
    durations = []
    for start, end in itertools.pairwise(bounds):
        seg = rms[start:max(end, start + 1)]
        post = seg[int(np.argmax(seg)):]
        below = np.flatnonzero(post < 0.01)
        durations.append((below[0] if below.size else post.size) * 256 / SR)
    m_decay = _log10(float(np.mean(durations)), "the mean decay time")
    # Pitch proxy: the lowest peak of the long-term spectrum.
    _, _, peak_f, _ = spectral_peaks((total - total.min()) / max(total.max() - total.min(), 1e-300),
                                     threshold=0.01, freqs=a.freqs)
    pitch = math.log10(float(peak_f[peak_f > 0].min())) if np.any(peak_f > 0) else 0.0
    squash = m_ratio**10 / (m_ratio**10 + 0.2)
    features = [m_centroid, m_ratio, m_decay, pitch, m_ratio * m_decay, squash * m_decay, 1.0]
    return float(np.dot(features, [-0.0043703565847874465, 32.83743202462131, 4.750862716905235,
                                   -14.217438690256062, 3.8782339862813924, -0.8544826091735516,
                                   66.69534393444391]))


def _hardness(a: _Analysis) -> float:
    if a.onsets.size == 0:
        raise _Undefined("no note onsets found; hardness describes attacks")
    log_mid = _log10(_mean(a.ns @ bark_weight(70, 140), np.sqrt(a.loud_ms)), "the mid-band specific loudness")
    log_perc = _log10(_percussive_ratio(a.power, a.hop), "the percussive energy share")
    onsets = _segments(a)
    ends = np.append(onsets[1:], a.x.size)
    bandwidth = _bandwidth(a)
    # from the first frame whose window ends at or after the onset
    bw_first = np.maximum(np.ceil((onsets - N_FFT) / a.hop), 0).astype(int)
    st_first = (onsets / SR * a.strength_rate).astype(int)
    span = max(1, int(0.1 * SR / a.hop))
    bw_max, bw_weight, strengths, attacks, heads = [], [], [], [], []
    for i, onset in enumerate(onsets):
        nxt = i + 1 < onsets.size
        st = a.strength[st_first[i]: max(st_first[i + 1], st_first[i] + 1) if nxt else None]
        strengths.append(float(st.max()) if st.size else 0.0)
        seg = bandwidth[bw_first[i]: bw_first[i + 1] if nxt else None]
        start = attack_start(seg) if seg.size and seg.max() > 0 else None
        if start is not None:  # (the original's test for a full 100 ms window, kept as is)
            held = seg[start:start + span] if seg.size - start > start + span else seg[start:]
            bw_max.append(float(held.max()))
            bw_weight.append(strengths[-1])
        first, last = onset // a.block, ends[i] // a.block
        log_attack, begin = attack_time(a.env[first:max(last, first + 1)], SR, a.block, max_attack_s=0.1)
        attacks.append(log_attack)
        head = a.x[onset + begin * a.block: min(onset + begin * a.block + int(0.125 * SR), ends[i])]
        if head.size > 512:
            heads.append(head)
    bw = _mean(bw_max, bw_weight) if bw_max and sum(bw_weight) > 0 else 0.0
    bw = bw if bw > 512.0 else SR / 512.0
    centroid = max(_attack_centroid(heads), 200.0) if heads else 200.0
    features = [math.log10(bw), math.log10(centroid), log_mid, log_perc,
                _log10(float(np.mean(strengths)), "the mean onset strength"), float(np.mean(attacks)), 1.0]
    return float(np.dot(features, [12.079781720638145, 18.52100377170042, 14.139883645260355, 5.567690321917516,
                                   3.9346817690405635, -4.326890461087848, -85.60352209068202]))


def _bandwidth(a: _Analysis) -> np.ndarray:
    """Per-frame bandwidth (Hz): 5 % cumulative roll-on to the highest bin whose density-scaled
    magnitude reaches −75 dB; 0 for frames below 10 % of the frames' level range."""
    frames = a.power.shape[0]
    level, top, rollon = np.empty(frames), np.empty(frames, dtype=np.intp), np.empty(frames, dtype=np.intp)
    sounding = np.empty(frames, dtype=bool)
    scale = np.float32(SR * a.win_energy / N_FFT)
    for s in range(0, frames, 1024):  # a block of frames at a time: no second spectrogram held
        mag = np.sqrt(a.power[s:s + 1024] / scale)  # scipy's 'density' magnitude |X|/√(fs·Σw²)
        level[s:s + 1024] = mag.astype(np.float64).sum(axis=1)
        above = mag >= 10.0 ** (-75.0 / 20.0)
        top[s:s + 1024] = mag.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1)
        sounding[s:s + 1024] = above.any(axis=1)
        rollon[s:s + 1024] = np.argmax(np.cumsum(mag, axis=1) >= np.float32(0.05) *
                                       level[s:s + 1024, None].astype(np.float32), axis=1)
    keep = (level > level.min() + 0.1 * (level.max() - level.min())) & sounding
    return np.where(keep, a.freqs[top] - a.freqs[rollon], 0.0)


def _attack_centroid(heads: list[np.ndarray]) -> float:
    """Mean spectral centroid (Hz, |FFT| above 20 Hz) of the first 125 ms of each attack."""
    frames = np.zeros((len(heads), 8192), dtype=np.float32)
    for i, head in enumerate(heads):
        frames[i, :head.size] = head
    mag = np.abs(scipy.fft.rfft(frames, axis=1))
    f = np.fft.rfftfreq(8192, 1.0 / SR)
    mag, f = mag[:, f >= 20.0], f[f >= 20.0]
    total = mag.sum(axis=1)
    return float(np.mean((mag @ f)[total > 0] / total[total > 0])) if np.any(total > 0) else 0.0


def _percussive_ratio(power: np.ndarray, hop: int) -> float:
    """Percussive energy share on the spectrogram pooled to 43 Hz bins below 5.5 kHz, with
    kernels of ≈0.42 s × 0.65 kHz (librosa's 31 × 31 at the original's hop and bin); on the
    demo songs within 0.03 of the original's share."""
    pooled = power[:, :512].reshape(power.shape[0], 128, 4).sum(axis=2)
    k_time = max(3, round(0.42 * SR / hop)) | 1  # odd number of frames spanning ≈ 0.42 s
    return percussive_share(pooled, time_kernel=k_time, freq_kernel=15)


def _roughness(a: _Analysis) -> float:
    # 50 ms Hamming frames every 25 ms after 512 leading zeros, FFT zero-padded to 4096,
    # normalised to the global range; peaks with contrast ≥ 0.01; Vassilakis/Plomp–Levelt pair
    # sums as in the original, whose amplitude term 2·louder/(sum) is kept (it was fitted with
    # it).  One frame at a seeded random position in each run of ``roughness_stride`` frames
    # is analysed: an unbiased estimate of the mean, where a fixed coarser hop would alias
    # with the beat of strictly periodic music.
    n = int(0.05 * SR)
    nfft = 2 ** (int(math.log2(n)) + 1)
    window = np.hamming(n + 2)[1:-1].astype(np.float32)
    size = a.x.size + 512  # the signal after 512 leading zeros (read in place, not copied)
    count = int((size - n) / (n / 2)) + 1
    picked = np.arange(0, count, a.roughness_stride)
    picked = picked + np.random.default_rng(0).integers(0, a.roughness_stride, picked.size)
    starts = (picked[picked < count] * (n / 2)).astype(np.int64)
    mag = np.empty((starts.size, nfft // 2 + 1), dtype=np.float32)
    for s in range(0, starts.size, 256):
        at = starts[s:s + 256, None] + np.arange(n)[None, :] - 512
        frames = np.where(at >= 0, a.x[np.maximum(at, 0)], np.float32(0.0)) * window
        mag[s:s + 256] = np.abs(scipy.fft.rfft(frames, n=nfft, axis=1))
    lo, hi = float(mag.min()), float(mag.max())
    if hi <= lo:
        return 0.0  # the analysed frames are silent: no partials, no roughness
    freqs = np.linspace(0.0, SR / 2.0, nfft // 2 + 1)
    total = np.zeros(mag.shape[0])
    for s in range(0, mag.shape[0], 512):
        chunk = mag[s:s + 512]
        row, _, f, v = spectral_peaks((chunk - lo) / (hi - lo), threshold=0.01, values=chunk, freqs=freqs)
        total[s:s + 512] = _pair_roughness(row, f, v, chunk.shape[0])
    mean = float(total.mean())
    if mean < 0.01:
        return 0.0  # the original's floor for no measurable roughness
    return 13.98779569 * math.log10(mean) + 48.97606571545886


def _pair_roughness(row: np.ndarray, f: np.ndarray, v: np.ndarray, frames: int) -> np.ndarray:
    """Per frame, Σ over peak pairs of (v1·v2)^0.1 · 0.5 · (2·max/(v1+v2))^3.11 · PL(s·Δf), with
    PL(x) = e^(−3.51x) − e^(−5.75x) and s = 0.24/(0.0207·f_low + 18.96).  Peaks come ordered by
    frame then frequency; pairs are visited by neighbour distance and dropped once s·Δf > 2
    (beyond, PL holds < 0.3 % of its area and only falls)."""
    out = np.zeros(frames)
    s = 0.24 / (0.0207 * f + 18.96)
    i = np.arange(f.size)
    d = 1
    while i.size:
        i = i[i + d < f.size]
        j = i + d
        near = (row[j] == row[i]) & (s[i] * (f[j] - f[i]) < 2.0)
        i, j = i[near], j[near]
        x = s[i] * (f[j] - f[i])
        v1, v2 = v[i], v[j]
        term = (v1 * v2) ** 0.1 * 0.5 * (2.0 * np.maximum(v1, v2) / (v1 + v2)) ** 3.11 \
            * (np.exp(-3.51 * x) - np.exp(-5.75 * x))
        out += np.bincount(row[i], weights=term, minlength=frames)
        d += 1
    return out


def _row_sums(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``np.add.reduceat(x, starts, axis=0, dtype=np.float64)`` (the same sums, row after row)
    without the float64 copy of the whole of ``x`` that reduceat makes first: 64 MB for a
    3-minute track's spectrogram, the peak of the whole extraction."""
    out = np.empty((starts.size, x.shape[1]))
    for k, (s, e) in enumerate(zip(starts.tolist(), np.append(starts[1:], x.shape[0]).tolist())):
        out[k] = x[s] if s >= e else np.add.reduce(x[s:e], axis=0, dtype=np.float64)
    return out


def _warmth(a: _Analysis) -> float:
    mean_wr = float(np.mean(a.ns @ bark_weight(10, 40)))
    weighted_hf = _mean(a.ns @ bark_weight(80, 240), np.sqrt(a.loud_ms))
    starts = _segments(a)
    centred = np.ceil((starts - N_FFT // 2) / a.hop).clip(0, a.power.shape[0] - 1).astype(int)
    spec = _row_sums(a.power, centred)  # frames centred in each note (or one)
    first = starts // 256  # note energies from the 256-sample blocks
    seg_rms = np.sqrt(np.add.reduceat(a.energy, first) / (256.0 * np.diff(np.append(first, a.energy.size)).clip(1)))
    peak = spec.max(axis=1)
    spec, seg_rms = spec[peak > 0] / peak[peak > 0, None], seg_rms[peak > 0]
    row, col, pf, _ = spectral_peaks(spec, threshold=0.2, freqs=a.freqs)
    if spec.shape[0] == 0 or np.unique(row).size < spec.shape[0]:
        raise _Undefined("a note's spectrum has no peak to take as its fundamental")
    segs = np.arange(spec.shape[0])
    f0 = np.full(segs.size, np.inf)
    np.minimum.at(f0, row, pf)
    f0_bin = np.full(segs.size, spec.shape[1])
    np.minimum.at(f0_bin, row, col)
    total = spec.sum(axis=1)
    top = int(np.argmax(a.freqs > 260.0))
    centroid = (spec @ a.freqs) / total
    # the energy share below 260 Hz above f0, and the "decay score": R² of a straight line through
    # log-spectrum vs log-frequency above 3.5·f0; row by row, 256 notes at a time (a long track has
    # thousands of notes, and the whole-matrix temporaries were 0.4 GB for 9 minutes)
    ratio, r2 = np.empty(segs.size), np.empty(segs.size)
    lf_row = np.log10(np.maximum(a.freqs, 1e-9))
    start_bin = np.searchsorted(a.freqs, np.minimum(3.5 * f0, 12000.0), side="right")
    for s in range(0, segs.size, 256):
        rows = slice(s, s + 256)
        part = spec[rows]
        k = np.arange(part.shape[0])
        cum = np.concatenate([np.zeros((part.shape[0], 1)), np.cumsum(part, axis=1)], axis=1)
        ratio[rows] = np.where(f0[rows] < 260.0,
                               (cum[:, top] - cum[k, np.minimum(f0_bin[rows], top)]) / total[rows], 0.0)
        del cum
        mask = np.arange(part.shape[1])[None, :] >= start_bin[rows][:, None]
        lf = np.broadcast_to(lf_row, part.shape)
        ly = np.log10(np.maximum(part, 1e-15))
        n = mask.sum(axis=1)
        dx = lf - (np.sum(lf * mask, axis=1) / n)[:, None]
        dy = ly - (np.sum(ly * mask, axis=1) / n)[:, None]
        sxy, sxx, syy = (np.sum(mask * p, axis=1) for p in (dx * dy, dx * dx, dy * dy))
        r2[rows] = np.divide(sxy * sxy, sxx * syy, out=np.ones_like(sxy), where=(sxx * syy) > 0)
    features = [_log10(float(np.mean(centroid)), "the spectral centroid"), weighted_hf, mean_wr,
                float(np.mean(r2)), _mean(ratio, seg_rms), 1.0]
    return float(np.dot(features, [-4.464258317026696, -0.08819320850778556, 0.29156539973575546,
                                   17.274733561081554, 8.403340066029507, 45.21212125085579]))


def _sharpness(a: _Analysis) -> float:
    acum = _mean(fastl_sharpness(a.ns), a.loud_ms)
    return 102.50508921364404 * _log10(acum, "the sharpness") + 34.432655185001735


def _booming(a: _Analysis) -> float:
    index = _mean(booming_index(a.ns), a.loud_ms)
    low = float(np.mean(a.ns @ bark_weight(0, 70)))
    return (43.67402696195865 * _log10(index, "the booming index (no loudness below 280 Hz)")
            - 10.90054738389845 * _log10(low, "the loudness below 7 Bark") + 26.836530575185435)


_MODELS = {"brightness": _brightness, "depth": _depth, "hardness": _hardness, "roughness": _roughness,
           "warmth": _warmth, "sharpness": _sharpness, "booming": _booming}
