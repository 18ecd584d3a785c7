"""The metrical analysis of a track: which pulse is the beat, how many beats make a bar, where
bars start, and how sure each answer is.  Arrays in, values out; no I/O.

Both decisions are choices among a few hypotheses, scored by a small model over musical
evidence (a linear part plus one hidden layer of 16 tanh units) and normalised with a softmax
over the hypotheses, so the chosen hypothesis comes with a probability that is its confidence:

* **The beat** (:func:`beat_candidates`, :func:`level_features`).  librosa's tempo estimate (log-normal prior at 120 BPM)
  is right up to a factor of 2 or 3 far more often than it is right exactly (a ballad read at
  twice its tempo, a 12/8 blues at two eighth notes).  The candidates are its tempo times
  1/3, 1/2, 2/3, 3/4, 1, 4/3, 3/2, 2 and 3 (a reel's melody in threes of eighth notes puts
  the estimate at 4/3 of the beat), each tracked by librosa's dynamic-programming tracker (its period
  following the tempo where that steps from one to another: :func:`local_tempo`), and each
  also shifted by half a beat (a grid locked on the off-beats).  A candidate is scored
  on how its grid sits in the music: onset strength on its beats, how much onset energy
  falls on its half, third, quarter and sixth positions (a real beat level has a subdivision
  and is not itself a subdivision), periodicity of the onset envelope at one, two and three
  periods, kick and snare alternation (a backbeat alternates on the beat level), the period
  of harmonic change in beats (chords change every 3 or 4 beats far more often than every 2
  or 8), the drums stem's kick, snare and cymbal bands and the bass stem's onsets when the
  track has them, the kick's flux on linear magnitudes (mix and drums stem: an open hi-hat
  on the off-beats does not pass for a kick there), and a log-tempo prior.  Where the track is
  known to have no drums (``RhythmInputs.no_drums``), each candidate grid may then move by a
  third or a half of a beat onto the melody's longer notes (:func:`accent_shift`: in a running melody with no accents of loudness
  the tracker follows the off-beats as often as not), and the model's probabilities are
  weighed by how long the notes on each grid are (:func:`durational_accent`: a jig tracked on
  every other eighth note, at 3/2 of its tempo, sits on short notes half the time).  Where it
  surely has drums (``RhythmInputs.drums``), the chosen grid moves by a third, a half or two
  thirds of a beat onto the kick when the kick is much stronger there and sounds start there
  too (:func:`kick_shift`: a shuffle's onset strength peaks on its swung off-beats, where the
  hi-hat and the bass line strike together).
* **The bar**.  The chosen grid's half-beat slip, if it has one, is first mended
  (:func:`mend_slip`: the tracker may follow the off-beats through an intro and move onto the
  beat when the drums come in), and the grid is continued back to the first sound
  (:func:`extend_grid`: the tracker drops the opening beats of a track that starts at once).
  On those beats, every (pulses per bar, phase) hypothesis for 2 to 7 pulses per bar is
  scored on the contrast between the beats it calls downbeats and the others (harmonic
  change, also half a beat early where pop anticipates the bar, bass-note change, kick,
  snare, cymbals, bass onsets, overall accent), where the kick falls (its linear low-band
  flux, which tells it from a bass note where the low band's log flux does not) and which of
  each pair of beats the kick, the snare's band, the cymbals and the accent favour (kick on 1
  and 3, snare on 2 and 4), whether the level above or below would
  explain the same contrast better (4/4 against 2/4), how well the bar repeats
  (beat-synchronous self-similarity at one bar), a prior per meter, and whether the first
  sounding beat, the bass's first beat and the drums' first beat start a bar
  (:func:`entries`: a pickup is usually the melody alone).  A track with a drums or bass stem
  and the mix alone have a bar model each (:func:`meter_model_name`).  A beat whose
  subdivision is ternary with the middle triplet present (not a swung or shuffled pair) is a
  compound beat: 2 such pulses per bar are 6/8, 3 are 9/8, 4 are 12/8.

The weights were fitted (``tools/fit_metrical.py``) on corpora rendered by
``tools/make_eval_corpus.py`` with seeds that the evaluation corpus does not use, and on the
human-composed pieces of ``tools/make_human_corpus.py``'s development set; each model is the
average of two fits (:func:`choose`).  They ship in ``metrical_weights.json`` beside this
module with the corpora they came from.

Size: about 700 lines, one module on purpose: the features of each hypothesis, the model that
scores them and the fitted weights (``metrical_weights.json``, refitted with
``tools/fit_metrical.py``) must agree column for column; keeping them together is what keeps
a refit from reading features in another order.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np

from sat_mir.audio.filterbanks import normalize
from sat_mir.errors import ExtractorError
from sat_mir.features.beat_dp import track_beats
from sat_mir.features.onset_detect import onset_detect

__all__ = [
    "BAND_EDGES_HZ",
    "LEVEL_FEATURES",
    "METER_FEATURES",
    "METERS",
    "Candidate",
    "Metrical",
    "RhythmInputs",
    "accent_shift",
    "analyse",
    "band_flux",
    "beat_candidates",
    "durational_accent",
    "entries",
    "drums_entry",
    "extend_grid",
    "finish_grid",
    "choose",
    "kick_shift",
    "from_beats_and_downbeats",
    "level_features",
    "load_model",
    "local_tempo",
    "meter_model_name",
    "meter_features",
    "melody_onsets",
    "noisy_highs",
    "mend_slip",
    "pair_phase",
    "periodicity",
    "shift_grid",
    "tempo_from_beats",
]

# 3/4 and 4/3: 10 of the 160 human-dev pieces (reels, hornpipes) had their estimate at 4/3 of
# the beat and no right candidate; scored by the same level model (it has no ratio feature)
RATIOS = (1 / 3, 1 / 2, 2 / 3, 3 / 4, 1.0, 4 / 3, 3 / 2, 2.0, 3.0)
METERS = (2, 3, 4, 5, 6, 7)  # pulses per bar
BAND_EDGES_HZ = {"low": (0.0, 150.0), "mid": (150.0, 2500.0), "high": (5000.0, 1e9)}
PRIOR_CENTRE_BPM = 110.0
LEVEL_FEATURES = (
    "log_tempo_sq", "salience", "half", "third", "quarter", "sixth", "quarter_x_half",
    "acf_1", "acf_2", "acf_3", "acf_half", "acf_third", "mid_alternation", "low_alternation",
    "harmony_period_2", "harmony_period_3", "harmony_period_4", "harmony_period_6", "harmony_period_8",
    "drums_low_half", "drums_mid_half", "drums_high_half", "drums_high_quarter", "drums_mid_third",
    "drums_high_third", "drums_mid_alternation", "drums_low_alternation", "has_drums",
    "bass_half", "bass_third", "has_bass", "kick_half", "drums_kick_half",
)
PARITY_KEYS = ("kick", "mid", "low", "high", "accent")
CONTRAST_KEYS = ("harmony", "harmony_2", "bass_harmony", "accent", "low", "mid", "high", "bass_onset",
                 "harmony_early", "bass_harmony_early")
METER_FEATURES = (
    *(f"contrast_{k}" for k in CONTRAST_KEYS),
    "up_harmony", "down_harmony", "up_bass_harmony", "down_bass_harmony", "up_low", "down_low",
    "up_bass_onset", "down_bass_onset", "repetition", "first_beat", "first_bass", "first_drums",
    "change_hits", "change_recall", "bass_change_hits", "bass_change_recall",
    *(f"meter_{m}" for m in METERS),
    # the kick's place in the bar (stop 46), and which of each pair of beats the kick, the
    # snare's band, the low band, the cymbals and the accent favour
    "contrast_kick", "up_kick", "down_kick",
    *(f"{k}_parity" for k in PARITY_KEYS), *(f"down_{k}" for k in ("mid", "high", "accent")),
)


@dataclass(frozen=True)
class RhythmInputs:
    """What the metrical analysis reads, every series with time on the last axis.

    ``env``: onset strength of the mix at ``fps`` frames per second (frame ``k`` at
    ``(k - latency) / fps`` s).  ``bands``: spectral flux of the mix in the bands of
    :data:`BAND_EDGES_HZ`.  ``drum_bands`` / ``bass_env``: the same from the drums stem and the
    onset strength of the bass stem, when the track has them (``no_drums`` / ``drums``: known
    to have no drums / to have drums, see :func:`sat_mir.features.rhythm.rhythm_inputs`).  ``chroma`` / ``bass_chroma``:
    ``[12, frames]`` pitch-class energy of the harmonic content and of its lowest notes, at
    ``chroma_hop_s``.
    """

    env: np.ndarray
    bands: dict[str, np.ndarray]
    fps: float
    latency: float
    chroma: np.ndarray
    bass_chroma: np.ndarray
    chroma_hop_s: float
    drum_bands: dict[str, np.ndarray] | None = None
    bass_env: np.ndarray | None = None
    no_drums: bool = False
    drums: bool = False


@dataclass(frozen=True)
class Candidate:
    bpm: float  # from the grid's median beat period
    frames: np.ndarray  # beat positions in envelope frames (float: shifted grids fall between frames)
    ratio: float
    shift: float


@dataclass
class Metrical:
    beats: np.ndarray  # s
    downbeats: np.ndarray  # s
    pulses_per_bar: int
    beats_per_bar: int  # the time signature's numerator: 3 x pulses for a compound meter
    compound: bool
    tempo_confidence: float
    meter_confidence: float
    # how sure the bar lines are where they are, given the meter: the chosen phase's share of its
    # meter's probability (Beat This!: its own downbeat probability at its downbeats)
    downbeat_confidence: float
    candidates: list[tuple[float, float]] = field(default_factory=list)  # (bpm, probability)
    engine: str = "dsp"  # what found the beats: "dsp" (this module) or "beat_this"
    pair_phase: int | None = None  # bars of 2 pulses: which downbeat (0 or 1) starts a pair (pair_phase())


# ------------------------------------------------------------------------------------------
# front end helpers


def tempo_from_beats(beats: np.ndarray) -> float:
    """BPM from beat times (s): 60 / mean of the inter-beat intervals within 10 % of the median.

    Dropping irregular intervals keeps a missed or doubled beat from biasing the mean.

    Raises
    ------
    ExtractorError
        Fewer than two beats.
    """
    ibi = np.diff(np.asarray(beats, dtype=np.float64))
    if ibi.size == 0:
        raise ExtractorError("need at least two beats to measure a tempo")
    med = float(np.median(ibi))
    regular = ibi[np.abs(ibi - med) <= 0.1 * med]
    return 60.0 / float(regular.mean())


def steady_beats(beats: np.ndarray, *, half: int = 4, outlier: float = 0.08, gate: float = 0.12) -> np.ndarray:
    """Each beat (s) moved onto the line that fits it and its ``half`` neighbours on either side
    (the first and last ``half`` beats onto the line of the first and last window).  The line is
    fitted by least squares, then again without the beats more than ``outlier`` of a beat from
    it (while at least ``half + 2`` remain).  Where the beats it keeps still stray more than
    ``gate`` of a beat from it (a tempo jump, a slip the tracker made, a held chord), the beat
    stays where it was tracked.

    Why: the tracker puts each beat on its envelope's frame (23 ms) nearest the onsets, so a
    steady pulse comes out jittered by a frame either way, and a beat here and there is drawn onto
    an eighth note where a melody plays alone (the refit puts it back on the pulse).  On the
    held-out corpora the beats' median distance from the true ones fell from 6.7 to 3.6 ms
    (``sel``), the right div4 crops starting more than 10 ms into their downbeat's attack from 25
    to 15 % (``sel``) and 20 to 11 % (``cal``); on ``human-dev`` (melodies without drums,
    chorales) beat F rose 0.824 -> 0.834, downbeat F 0.766 -> 0.777 and the div4 crops on 4k true
    bars 75.6 -> 81.9 % (docs/eval.md)."""
    b = np.asarray(beats, dtype=np.float64)
    k = 2 * half + 1
    if b.size < k:
        return b
    win = np.lib.stride_tricks.sliding_window_view(b, k)
    x = np.arange(k, dtype=np.float64)

    def fit(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = keep.sum(axis=1)
        xm = (keep * x).sum(axis=1) / n
        ym = (keep * win).sum(axis=1) / n
        dx = (x - xm[:, None]) * keep
        slope = (dx * (win - ym[:, None])).sum(axis=1) / (dx * (x - xm[:, None])).sum(axis=1)
        return slope, ym - slope * xm  # the line's value at the window's first beat

    def off(slope: np.ndarray, start: np.ndarray) -> np.ndarray:  # each beat's distance from its line
        return np.abs(win - (start[:, None] + slope[:, None] * x))

    slope, start = fit(np.ones(win.shape, dtype=bool))
    keep = off(slope, start) <= outlier * slope[:, None]
    keep[keep.sum(axis=1) < half + 2] = True
    slope, start = fit(keep)
    steady = np.where(keep, off(slope, start), 0.0).max(axis=1) <= gate * slope
    i = np.arange(b.size)
    w = np.clip(i - half, 0, win.shape[0] - 1)  # the window that places beat i
    out = np.where(steady[w], start[w] + slope[w] * (i - w), b)
    # a beat moved past a neighbour left as tracked would make a beat grid run backwards
    return out if np.all(np.diff(out) > 0) else b


def band_flux(magnitude: np.ndarray, freqs: np.ndarray) -> dict[str, np.ndarray]:
    """Half-wave rectified log-magnitude flux per band of :data:`BAND_EDGES_HZ`.

    ``magnitude``: ``[bins, frames]`` STFT magnitude, ``freqs``: ``[bins]`` Hz.  Returns
    float32 ``[frames]`` per band (frame 0 is 0).
    """
    out = {}
    frames = magnitude.shape[1]
    for name, (lo, hi) in BAND_EDGES_HZ.items():
        rows = np.flatnonzero((freqs >= lo) & (freqs < hi))
        flux = np.zeros(frames, dtype=np.float32)
        if rows.size:
            m = magnitude[rows[0]:rows[-1] + 1]  # freqs ascend: a band is a slice, not a copy
            # 2048 frames at a time (one frame of overlap for the difference): the log
            # magnitudes of a 10-minute band held 0.3 GB at once.  No block of one difference
            # after others: numpy sums a single column pairwise, not row by row as the rest
            edges = list(range(0, frames - 1, 2048)) + [frames - 1]
            if len(edges) > 2 and edges[-1] - edges[-2] == 1:
                del edges[-2]
            for a, b in zip(edges[:-1], edges[1:]):
                d = np.diff(np.log1p(100.0 * m[:, a:b + 1]), axis=1)
                flux[a + 1:b + 1] = np.maximum(d, 0.0).sum(axis=0)
        out[name] = flux
    # the kick: flux of the linear magnitude below 150 Hz.  The log flux above counts an open
    # hi-hat's faint low end almost like a kick; on linear magnitudes a kick outweighs it tens of
    # times, which is what tells a four-on-the-floor beat from its off-beats
    rows = np.flatnonzero(freqs < BAND_EDGES_HZ["low"][1])
    kick = np.zeros(frames, dtype=np.float32)
    if rows.size and frames > 1:
        d = np.diff(magnitude[rows[0]:rows[-1] + 1], axis=1)
        kick[1:] = np.maximum(d, 0.0).sum(axis=0)
    out["kick"] = kick
    return out


def periodicity(env: np.ndarray, max_lag: int) -> np.ndarray:
    """Unbiased autocorrelation of the mean-removed envelope, lag 0 = 1 (``[max_lag]``)."""
    e = np.asarray(env, dtype=np.float64)
    e = e - e.mean()
    n = e.size
    max_lag = max(1, min(max_lag, n))
    spec = np.fft.rfft(e, 2 * n)
    a = np.fft.irfft(spec * np.conj(spec))[:max_lag] / (n - np.arange(max_lag))
    return a / a[0] if a[0] > 0 else np.zeros(max_lag)


def _local(env: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The largest of ``env`` at each (rounded) frame and the frames either side of it, clipped
    to the envelope: three gathers, not a ``[frames, 3]`` index (a tenth of a second a track)."""
    last = env.size - 1
    idx = np.minimum(np.maximum(np.rint(frames).astype(np.intp), 0), last)
    return np.maximum(np.maximum(env[np.maximum(idx - 1, 0)], env[idx]), env[np.minimum(idx + 1, last)])


FRACTIONS = {"half": (0.5,), "third": (1 / 3, 2 / 3), "third_1": (1 / 3,), "third_2": (2 / 3,),
             "quarter": (0.25, 0.75), "sixth": (1 / 6, 5 / 6)}
_ALL_FRACTIONS = np.array([0.0, 0.5, 1 / 3, 2 / 3, 0.25, 0.75, 1 / 6, 5 / 6])


def _profile(env: np.ndarray, frames: np.ndarray) -> dict[str, float]:
    """Onset strength at fractions of each beat interval, relative to that on the beats."""
    d = np.diff(frames)
    pos = frames[:-1, None] + d[:, None] * _ALL_FRACTIONS[None, :]  # [intervals, fractions]
    strength = _local(env, pos.ravel()).reshape(pos.shape).mean(axis=0)
    at = dict(zip(_ALL_FRACTIONS.round(6), strength))
    on = float(_local(env, frames).mean()) + 1e-9
    return {k: float(np.mean([at[round(f, 6)] for f in fr])) / on for k, fr in FRACTIONS.items()}


def _bounded(ratio: float) -> float:
    """A non-negative ratio mapped into [0, 1): a grid on empty positions gives huge ratios, and
    a linear model must not extrapolate from them."""
    return ratio / (1.0 + ratio)


def _alternation(x: np.ndarray) -> float:
    """How differently even and odd beats sound: 0 when alike, at most 1."""
    if x.size < 4:
        return 0.0
    a, b = float(x[0::2].mean()), float(x[1::2].mean())
    return abs(a - b) / (a + b + 1e-9)


def _zscore(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / (v.std() + 1e-9)


def beat_chroma(chroma: np.ndarray, hop_s: float, beats_s: np.ndarray) -> np.ndarray:
    """``[12, beats]`` unit-norm mean chroma from each beat to the next (the last beat gets one
    median beat period)."""
    n = chroma.shape[1]
    idx = np.clip(np.round(np.asarray(beats_s) / hop_s).astype(int), 0, max(n - 1, 0))
    step = int(max(1, np.median(np.diff(idx)))) if idx.size > 1 else 1
    ends = np.maximum(np.append(idx[1:], min(n, idx[-1] + step)), idx + 1)
    ends = np.minimum(ends, n)
    cs = np.concatenate([np.zeros((chroma.shape[0], 1)), np.cumsum(chroma, axis=1)], axis=1)
    c = (cs[:, ends] - cs[:, idx]) / np.maximum(ends - idx, 1)
    return c / (np.linalg.norm(c, axis=0, keepdims=True) + 1e-9)


def _novelty(c: np.ndarray, k: int = 1) -> np.ndarray:
    """Cosine distance between the mean of the ``k`` beats before each beat and the ``k`` after."""
    n = c.shape[1]
    cs = np.concatenate([np.zeros((c.shape[0], 1)), np.cumsum(c, axis=1)], axis=1)
    i = np.arange(1, n)
    a = cs[:, i] - cs[:, np.maximum(0, i - k)]
    b = cs[:, np.minimum(n, i + k)] - cs[:, i]
    out = np.zeros(n)
    out[1:] = 1.0 - np.sum(a * b, axis=0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-9)
    return out


# ------------------------------------------------------------------------------------------
# the beat


def mean_tempogram(env: np.ndarray, sr: float, hop: int, *, block: int = 256) -> np.ndarray:
    """``librosa.feature.tempogram(onset_envelope=env, ...)`` averaged over frames, ``[lags, 1]``
    (what ``librosa.feature.tempo`` aggregates with its default ``np.mean``), computed a block of
    frames at a time: librosa's whole autocorrelation tempogram of a 10-minute envelope held
    0.45 GB of float64 FFTs at once, the peak of a long track's extraction.  In numpy and scipy
    (librosa's steps, the same values: tests/features/test_metrical.py), so no numba is loaded.
    A block holds its frames as rows, each transformed where it lies in memory: a third of the
    time of transforming librosa's columns (0.19 -> 0.07 s for 3 minutes), within 1e-15."""
    import scipy.fft
    import scipy.signal

    win = int(8.0 * sr) // hop  # tempo's default ac_size, 8 s
    window = scipy.signal.get_window("hann", win, fftbins=True)
    padded = np.pad(env, (win // 2, win // 2), mode="linear_ramp", end_values=[0, 0])
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[: env.shape[-1]]
    n_pad = scipy.fft.next_fast_len(2 * win - 1, real=True)
    total = np.zeros(win)
    for s in range(0, frames.shape[0], block):
        spectrum = scipy.fft.rfft(frames[s:s + block] * window, n=n_pad, axis=1)
        chunk = scipy.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2, n=n_pad, axis=1)[:, :win]
        total += normalize(chunk, norm=np.inf, axis=1).sum(axis=0)
    return (total / frames.shape[0])[:, None]


def tempo_of(tempogram: np.ndarray, sr: float, hop: int, *, start_bpm: float = 120.0,
             max_tempo: float = 320.0) -> float:
    """The tempo (BPM) of a mean tempogram ``[lags, 1]``: the lag whose log-compressed strength
    plus a log-normal prior (one octave wide, centred at ``start_bpm``) is largest, below
    ``max_tempo`` (``librosa.feature.tempo(tg=...)``)."""
    bpms = np.zeros(tempogram.shape[-2])
    bpms[0] = np.inf
    bpms[1:] = 60.0 * sr / (hop * np.arange(1.0, bpms.size))
    logprior = -0.5 * (np.log2(bpms) - np.log2(start_bpm)) ** 2
    logprior[: int(np.argmax(bpms < max_tempo))] = -np.inf
    strength = np.log1p(1e6 * np.mean(tempogram, axis=-1, keepdims=True)) + logprior[:, None]
    return float(bpms[int(np.argmax(strength[:, 0]))])


def local_tempo(env: np.ndarray, fps: float, period: float, *, window_s: float = 6.0, hop_s: float = 1.0,
                search: float = 0.25, min_change: float = 0.10, agree: float = 0.04,
                plateau: float = 0.02) -> np.ndarray | None:
    """The beat period at each frame of onset envelope ``env`` as a multiple of ``period``
    (frames), where the tempo clearly changes; ``None`` where it holds (the tracker's one period
    then serves, as librosa's does).

    In windows of ``window_s`` (longer for slow tempi) every ``hop_s``, the lag within
    ``search`` of ``period`` where the envelope best repeats after one and two periods
    (autocorrelation at the lag plus at twice it) is that window's period, and likewise the lag
    near twice ``period``; a window counts only where both have a peak inside the search and
    agree within ``agree`` (a tempo that changes moves every level of the pulse: a swung
    subdivision alternates long and short lags at one level only).  The periods are smoothed by
    a median over 5 windows.  The tempo changes when the 90th percentile of them is at least
    ``min_change`` above the 10th and 70 % of them lie within ``plateau`` of one or the other:
    a song that steps from one tempo to another."""
    win = max(int(round(window_s * fps)), int(math.ceil(5.2 * period * (1.0 + search))))
    hop = max(1, int(round(hop_s * fps)))
    if env.size < 2 * win or period < 4:
        return None
    starts = np.arange(0, env.size - win + 1, hop)
    w = np.lib.stride_tricks.sliding_window_view(np.asarray(env, dtype=np.float64), win)[starts]
    w = w - w.mean(axis=1, keepdims=True)
    energy = np.maximum(np.einsum("ij,ij->i", w, w), 1e-12)
    acs: dict[int, np.ndarray] = {}

    def ac(lag: int) -> np.ndarray:
        if lag not in acs:
            acs[lag] = np.einsum("ij,ij->i", w[:, lag:], w[:, :-lag]) / energy
        return acs[lag]

    def level(p: float) -> tuple[np.ndarray, np.ndarray]:
        """Each window's period near ``p`` (frames, parabolic peak) and whether it has one inside."""
        lags = np.arange(int(np.floor(p / (1.0 + search))), int(np.ceil(p * (1.0 + search))) + 1)
        score = np.stack([ac(k) + ac(2 * k) for k in lags], axis=1)
        k = np.argmax(score, axis=1)
        rows = np.arange(k.size)
        inner = (k > 0) & (k < lags.size - 1)
        y0, y1 = score[rows, np.maximum(k - 1, 0)], score[rows, k]
        y2 = score[rows, np.minimum(k + 1, lags.size - 1)]
        d = y0 - 2 * y1 + y2
        offset = np.where(inner & (d < 0), 0.5 * (y0 - y2) / np.where(d < 0, d, -1.0), 0.0)
        return (lags[k] + offset) / p, inner & (y1 > 0)

    one, ok_one = level(period)
    two, ok_two = level(2.0 * period)
    found = ok_one & ok_two & (np.abs(np.log(one / two)) <= math.log1p(agree))
    if found.sum() < 5:
        return None
    centres = starts[found] + win / 2.0
    log_rel = 0.5 * np.log(one[found] * two[found])
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(log_rel, 2, mode="edge"), 5), axis=1)
    low, high = np.percentile(smooth, 10), np.percentile(smooth, 90)
    if high - low < math.log1p(min_change):
        return None
    # a change of tempo, not a drift: most windows at one of two tempi (a steady ramp, which the
    # one period follows, measured better left to it: the bars of songs drifting 10-20 % over
    # 30 s, downbeat F 0.941 -> 0.912 when they were tracked with a period that followed)
    near = (np.abs(smooth - low) <= math.log1p(plateau)) | (np.abs(smooth - high) <= math.log1p(plateau))
    if near.mean() < 0.7:
        return None
    return np.exp(np.interp(np.arange(env.size), centres, smooth))


def beat_candidates(inp: RhythmInputs, *, tightness: float = 100.0) -> list[Candidate]:
    """The candidate beat grids of the beat level (see the module docstring).  Where the tempo
    changes (:func:`local_tempo`), each is tracked with a period that follows it."""
    sr_equiv = int(round(inp.fps * 512))  # librosa reads the frame rate as sr / hop
    env = inp.env
    bpm0 = tempo_of(mean_tempogram(env, sr_equiv, 512), sr_equiv, 512)
    rel = local_tempo(env, inp.fps, 60.0 * inp.fps / bpm0)
    out: list[Candidate] = []
    for ratio in RATIOS:
        target = bpm0 * ratio
        if not 30.0 <= target <= 320.0:
            continue
        frames = track_beats(env, sr_equiv / 512, target, tightness=tightness, rel=rel)  # = librosa's
        if len(frames) < 4:
            continue
        frames = np.asarray(frames, dtype=np.float64)
        period = float(np.median(np.diff(frames)))
        for shift in (0.0, 0.5):
            f = frames + shift * period
            f = f[f < env.size - 1]
            if f.size >= 4:
                out.append(Candidate(bpm=60.0 * inp.fps / period, frames=f, ratio=ratio, shift=shift))
    return out


def _harmony_periods(c: np.ndarray) -> list[float]:
    nov = _novelty(c)
    out = []
    for lag in (2, 3, 4, 6, 8):
        if nov.size < 2 * lag:
            out.append(0.0)
            continue
        best = max(float(nov[p::lag].mean()) for p in range(lag))
        out.append((best - float(nov.mean())) / (float(nov.std()) + 1e-9))
    return out


def level_features(inp: RhythmInputs, cand: Candidate, acf: np.ndarray) -> np.ndarray:
    """The evidence for ``cand`` being the beat, in the order of :data:`LEVEL_FEATURES`."""
    env, fr = inp.env, cand.frames
    tau = 60.0 / cand.bpm * inp.fps

    def acf_at(lag: float) -> float:
        k = int(round(lag))
        return float(acf[k]) if 0 < k < acf.size else 0.0

    p = {k: _bounded(v) for k, v in _profile(env, fr).items()}
    beats_s = (fr - inp.latency) / inp.fps
    x = [math.log2(cand.bpm / PRIOR_CENTRE_BPM) ** 2,
         float(np.clip(math.log(float(_local(env, fr).mean()) / (float(env.mean()) + 1e-9) + 1e-9), -3.0, 3.0)),
         p["half"], p["third"], p["quarter"], p["sixth"], p["quarter"] * p["half"],
         acf_at(tau), acf_at(2 * tau), acf_at(3 * tau), acf_at(tau / 2), acf_at(tau / 3),
         _alternation(_local(inp.bands["mid"], fr)), _alternation(_local(inp.bands["low"], fr))]
    x += _harmony_periods(beat_chroma(inp.chroma, inp.chroma_hop_s, np.maximum(beats_s, 0.0)))
    if inp.drum_bands is not None:
        lo, mid, hi = ({k: _bounded(v) for k, v in _profile(inp.drum_bands[b], fr).items()}
                       for b in ("low", "mid", "high"))
        x += [lo["half"], mid["half"], hi["half"], hi["quarter"], mid["third"], hi["third"],
              _alternation(_local(inp.drum_bands["mid"], fr)), _alternation(_local(inp.drum_bands["low"], fr)), 1.0]
    else:
        x += [0.0] * 8 + [0.0]
    if inp.bass_env is not None:
        b = {k: _bounded(v) for k, v in _profile(inp.bass_env, fr).items()}
        x += [b["half"], b["third"], 1.0]
    else:
        x += [0.0, 0.0, 0.0]
    x.append(_bounded(_profile(inp.bands["kick"], fr)["half"]))
    x.append(_bounded(_profile(inp.drum_bands["kick"], fr)["half"]) if inp.drum_bands is not None else 0.0)
    return np.asarray(x, dtype=np.float64)


def choose(X: np.ndarray, model: dict) -> np.ndarray:
    """Softmax probabilities of the hypotheses (rows of ``X``) under a fitted model: a score per
    hypothesis from the standardised features, ``z @ v + tanh(z @ W1 + b1) @ w2`` (a linear part
    and, when the model has them, one small hidden layer), normalised over the hypotheses.

    A model with ``members`` is the mean of its members' probabilities.  The shipped weights
    average two fits: one on the first development corpora, one on nearly four times as many
    rendered songs with the human-composed pieces counted four times.  Either alone traded rendered
    songs against human-composed pieces (refits vary by about 2 points); their average beat
    both on held-out songs of each kind (``docs/eval.md``)."""
    if "members" in model:
        return np.mean([choose(X, m) for m in model["members"]], axis=0)
    z = (X - np.asarray(model["mean"])) / np.asarray(model["scale"])
    score = z @ np.asarray(model["weights"])
    if "hidden" in model:
        h = model["hidden"]
        score = score + np.tanh(z @ np.asarray(h["W1"]) + np.asarray(h["b1"])) @ np.asarray(h["w2"])
    score = score - score.max()
    p = np.exp(score)
    return p / p.sum()


# ------------------------------------------------------------------------------------------
# the bar


@dataclass(frozen=True)
class BeatSync:
    series: dict[str, np.ndarray]  # per beat: CONTRAST_KEYS, standardised
    vectors: np.ndarray  # [features, beats], unit columns, for self-similarity
    changes: dict[str, np.ndarray]  # per beat: True where the harmony / the bass note changes


def _early_novelty(chroma: np.ndarray, hop_s: float, beats_s: np.ndarray) -> np.ndarray:
    """Per beat: the harmonic change half a beat before it (one beat before against one beat
    after that point), where an anticipated chord change (pop's "push") lands."""
    out = np.zeros(beats_s.size)
    if beats_s.size < 3:
        return out
    half = np.empty(2 * beats_s.size - 1)
    half[0::2] = beats_s
    half[1::2] = beats_s[:-1] + np.diff(beats_s) / 2
    nov = _novelty(beat_chroma(chroma, hop_s, half), 2)
    out[1:] = nov[1::2]
    return out


def beat_sync(inp: RhythmInputs, beats_s: np.ndarray) -> BeatSync:
    fr = beats_s * inp.fps + inp.latency
    c = beat_chroma(inp.chroma, inp.chroma_hop_s, beats_s)
    bc = beat_chroma(inp.bass_chroma, inp.chroma_hop_s, beats_s)
    bands = inp.drum_bands if inp.drum_bands is not None else inp.bands
    series = {
        "harmony": _novelty(c), "harmony_2": _novelty(c, 2), "bass_harmony": _novelty(bc),
        "accent": _local(inp.env, fr), "low": _local(bands["low"], fr), "mid": _local(bands["mid"], fr),
        "high": _local(bands["high"], fr),
        "bass_onset": _local(inp.bass_env if inp.bass_env is not None else inp.bands["low"], fr),
        "harmony_early": _early_novelty(inp.chroma, inp.chroma_hop_s, beats_s),
        "bass_harmony_early": _early_novelty(inp.bass_chroma, inp.chroma_hop_s, beats_s),
        "kick": _local(bands["kick"], fr),
    }
    vectors = np.concatenate([c, bc, np.stack([_zscore(series[k]) for k in ("low", "mid", "high")])], axis=0)
    vectors = vectors / (np.linalg.norm(vectors, axis=0, keepdims=True) + 1e-9)
    changes = {k: _changes(np.maximum(series[k], series[f"{k}_early"])) for k in ("harmony", "bass_harmony")}
    return BeatSync(series={k: _zscore(v) for k, v in series.items()}, vectors=vectors, changes=changes)


def _changes(novelty: np.ndarray) -> np.ndarray:
    """Beats where the novelty is a clear change: above 40 % of its 95th percentile."""
    top = float(np.percentile(novelty, 95)) if novelty.size else 0.0
    return novelty > 0.4 * top if top > 0 else np.zeros(novelty.size, bool)


def meter_features(bs: BeatSync, m: int, phase: int, first: tuple[int, int | None, int | None]) -> np.ndarray:
    """The evidence for bars of ``m`` beats starting at beat ``phase``, in the order of
    :data:`METER_FEATURES`; ``first`` holds the indices of the first beat with sound, with
    the bass and with the drums (:func:`entries`; ``None``: no such stem, the feature is 0)."""
    n = bs.vectors.shape[1]
    on = np.zeros(n, bool)
    on[phase::m] = True
    z = bs.series

    def contrast(v: np.ndarray) -> float:  # bar starts against the other beats
        return float(v[on].mean() - v[~on].mean())

    def up(v: np.ndarray) -> float:  # every other bar start against the rest
        return abs(float(v[phase::2 * m].mean() - v[phase + m::2 * m].mean())) if n > 4 * m else 0.0

    def down(v: np.ndarray) -> float:  # the downbeat against the bar's middle beat
        return float(v[phase::m].mean() - v[phase + m // 2::m].mean()) if m % 2 == 0 else 0.0

    x = [contrast(z[k]) for k in CONTRAST_KEYS]
    for k in ("harmony", "bass_harmony", "low", "bass_onset"):
        x += [up(z[k]), down(z[k])]
    vn = bs.vectors

    def sim(lag: int) -> float:
        return float(np.mean(np.sum(vn[:, lag:] * vn[:, :-lag], axis=0))) if 0 < lag < n else 0.0

    x.append(sim(m) - 0.5 * (sim(m - 1) + sim(m + 1)))
    x += [0.0 if f is None else float(phase == f % m) for f in first]
    # how many bar starts bring a change, and how many changes fall on bar starts: a bar of 2 in
    # a song changing chords every 4 beats hits half its bar starts; a bar of 4 in a song changing
    # every 2 beats catches half the changes
    for k in ("harmony", "bass_harmony"):
        ch = bs.changes[k]
        x.append(float(ch[on].mean()) if on.any() else 0.0)
        x.append(float(ch[on].sum() / ch.sum()) if ch.any() else 0.0)
    x += [float(m == k) for k in METERS]
    # The kick (linear low-band flux: the drums stem's, else the mix's).  On the mix alone the
    # low band mixes the kick with the bass and the mid band the snare with everything else, and
    # the bar model took a backbeat's snare beats for downbeats: the bar hypotheses it ranked
    # first were right on 83.7 % of sel's songs, 93.4 % with these features (fitted on dev and
    # dev2 alone; with stems 89.3 -> 91.8 %).
    x += [contrast(z["kick"]), up(z["kick"]), down(z["kick"])]
    # in bars of an even number of beats, the beats of the downbeat's parity against the others
    # (kick on 1 and 3, snare on 2 and 4), and the downbeat against the bar's middle beat
    x += [float(z[k][phase::2].mean() - z[k][1 - phase % 2::2].mean()) if m % 2 == 0 and n > 4 else 0.0
          for k in PARITY_KEYS]
    x += [down(z[k]) for k in ("mid", "high", "accent")]
    return np.asarray(x, dtype=np.float64)


def meter_hypotheses(n_beats: int) -> list[tuple[int, int]]:
    return [(m, p) for m in METERS if n_beats >= 2 * m for p in range(m)]


def is_compound(inp: RhythmInputs, frames: np.ndarray, pulses_per_bar: int, *, threshold: float = 0.2,
                max_quadruple_bpm: float = 90.0, clear_middle: float = 0.5) -> bool:
    """Each beat splits in three audible parts, the middle one included, and more onset energy
    falls on the thirds than on the halves and quarters: a compound beat (2 per bar: 6/8, 3: 9/8,
    4: 12/8).  Swung and shuffled beats sound only the first and last third; 16th-note
    patterns fill the quarters as much as the thirds.  Four triplet-divided beats per bar
    above ``max_quadruple_bpm`` are a shuffle in 4/4, not 12/8 (how musicians write them:
    slow 12/8 blues, faster shuffles), unless the track has no drums and the middle third
    carries at least ``clear_middle`` of the beat's onset strength: a fiddle jig read in bars
    of 4 dotted quarters is 12/8, never 4/4 (the 6 drumless jigs and slip jigs of ``human-dev``
    read so, at 103 to 123 BPM, measured 0.60 to 0.99; the swung drumless songs of the rendered
    corpora read in 4 above 90 BPM, 0.21 at most).

    The mix's onset strength decides, with or without a drums stem.  The stem's hi-hat and
    snare bands used to vote too (two of the three had to agree): on the 257 tracks with a
    drums stem read in 2, 3 or 4 pulses of the ``dev2``, ``sel``, ``cal`` and ``human-dev``
    corpora (compound, swung and shuffled styles, and the jigs), the stem's bands called 11
    swung pop songs and shuffles compound and missed 11 compound songs; the mix alone, 2 and 5."""
    if pulses_per_bar not in (2, 3, 4):
        return False
    p = _profile(inp.env, frames)
    if pulses_per_bar == 4 and frames.size > 1 and 60.0 * inp.fps / float(np.median(np.diff(frames))) > \
            max_quadruple_bpm and not (inp.no_drums and p["third_1"] >= clear_middle):
        return False
    return bool(p["third_1"] >= threshold and p["third_2"] >= threshold and p["third"] > 1.3 * p["half"]
                and p["third"] > p["quarter"])


# ------------------------------------------------------------------------------------------
# the whole analysis


def meter_model_name(inp: RhythmInputs) -> str:
    """``meter`` for a track with a drums or bass stem, ``meter_mix`` for the mix alone: the bar
    evidence is not equally reliable in both (the mix's low band mixes the kick with the bass),
    and a model fitted on each measured better on held-out songs than one fitted on both."""
    return "meter" if inp.drum_bands is not None or inp.bass_env is not None else "meter_mix"


@lru_cache(maxsize=1)
def load_model() -> dict:
    """The fitted weights (``metrical_weights.json``)."""
    text = resources.files("sat_mir.features").joinpath("metrical_weights.json").read_text()
    return json.loads(text)


def extend_grid(env: np.ndarray, frames: np.ndarray, *, floor: float = 0.1, slack: float = 0.25,
                span: int = 4) -> np.ndarray:
    """The beat grid ``frames`` continued at its period back to the first sound (the first beat
    of :func:`first_sounding`, at most ``slack`` periods before it).  The dynamic-programming
    tracker drops the opening beats of a track that starts at once (its onset strength is weak
    in the first frames, and the tracker trims weak leading beats): on a development corpus
    the first tracked beat came more than 1.5 beats after the first true beat in half the
    songs, and the bar model then read "the first sounding beat starts a bar" off the wrong
    beat.  The period is the median of the first ``span`` intervals (a drifting tempo).  The
    end is left as tracked: beats continued into a decaying last chord are not beats."""
    frames = np.asarray(frames, dtype=np.float64)
    first = _first_sound(env, frames, floor, 50.0) if frames.size >= 2 else None
    if first is None:
        return frames
    head = float(np.median(np.diff(frames[:span + 1])))
    k_before = max(0, int(np.floor((frames[0] - (first - slack * head)) / head)))
    return np.concatenate([frames[0] - head * np.arange(k_before, 0, -1), frames])


def shift_grid(frames: np.ndarray, fraction: float, last: float) -> np.ndarray:
    """Every beat of ``frames`` moved ``fraction`` of its own interval later (the last by the
    one before it), the beats moved past frame ``last`` dropped."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.size < 2 or fraction == 0.0:
        return frames
    d = np.diff(frames)
    moved = frames + fraction * np.append(d, d[-1])
    return moved[moved <= last]


def noisy_highs(magnitude: np.ndarray, freqs: np.ndarray, *, split_hz: float = 5000.0, top: float = 0.05) -> float:
    """How noise-like the highs are where they strike: the spectral flatness (geometric over
    arithmetic mean) above ``split_hz`` in the ``top`` share of frames with the largest rise of
    linear magnitude there.  Hi-hats, cymbals and snares strike as broadband noise; a melody's
    highs are its harmonics.  On rendered songs and human-composed pieces (a drum part or the
    melody alone) every one of 323 tracks with drums measured at least 0.39, and 102 of the 157
    without drums less than 0.33."""
    rows = np.flatnonzero(freqs >= split_hz)
    if rows.size < 2 or magnitude.shape[1] < 3:
        return 1.0
    m = magnitude[rows[0]:rows[-1] + 1]
    rise = np.maximum(np.diff(m, axis=1), 0.0).sum(axis=0)
    k = max(10, int(top * rise.size))
    frames = np.argsort(rise)[-k:] + 1
    x = m[:, frames].astype(np.float64) + 1e-9
    return float(np.mean(np.exp(np.log(x).mean(axis=0)) / x.mean(axis=0)))


def melody_onsets(inp: RhythmInputs) -> np.ndarray:
    """Onset frames of the mix (its onset envelope peak-picked as librosa does)."""
    return onset_detect(inp.env, sr=inp.fps * 512, hop=512).astype(np.float64)


def _grid_accent(onsets: np.ndarray, gaps: np.ndarray, grid: np.ndarray, tol: float) -> tuple[float, float]:
    """(mean of ``gaps`` at the onsets within ``tol`` frames of the grid's points, 0 where none;
    the share of points with an onset)."""
    j = np.clip(np.searchsorted(onsets, grid), 1, onsets.size - 1)
    j = np.where(np.abs(onsets[j - 1] - grid) <= np.abs(onsets[j] - grid), j - 1, j)
    hit = np.abs(onsets[j] - grid) <= tol
    return float(np.where(hit, gaps[j], 0.0).mean()), float(hit.mean())


def accent_shift(inp: RhythmInputs, frames: np.ndarray, *, onsets: np.ndarray | None = None,
                 shifts: tuple[float, ...] = (1 / 3, 1 / 2, 2 / 3), margin: float = 0.1, min_hits: float = 0.8,
                 tolerance_s: float = 0.05, kick_anchor: float = 1.5) -> float:
    """The fraction of a beat by which the melody's durational accent moves a grid that no drums
    anchor (0.0: it stays).

    A note followed by a longer gap is heard as accented (Povel & Essens 1985; Parncutt 1994),
    and notes on the beat are longer than the others far more often than not.  In a running
    melody with no accents of loudness (a fiddle reel, a jig played by a sequencer), every
    eighth note has an onset, the tracker's choice between the beat and the off-beat rests on
    small differences of onset strength, and it chose the off-beats in half the melody-only
    dance tunes of a development set.  A grid point's accent is the gap after its onset (an
    onset within ``tolerance_s``; at most 2 beats, 0 without one) in beats, times the ratio of
    that gap to the one before (between 0.5 and 2: a note longer than the one before it stands
    out more, an eighth after two sixteenths).  The grid moves by the fraction of ``shifts``
    whose points have the largest mean accent when it exceeds the grid's by ``margin``
    (relative) and onsets fall on at least ``min_hits`` of the points of both grids: sustained
    strings and pads, whose onsets are sparse and late, are left alone.
    A kick anchors the grid: no move takes it off beats whose kick band (the mix's low linear
    flux) is ``kick_anchor`` times stronger than on the moved points.  :func:`analyse` asks only
    where the track is known to have no drums (``RhythmInputs.no_drums``): asked of every track
    on the mix alone, a breakbeat's hi-hats and syncopated kicks moved as often as a shuffle's
    melody.  ``onsets``: :func:`melody_onsets`, when known."""
    frames = np.asarray(frames, dtype=np.float64)
    onsets = melody_onsets(inp) if onsets is None else onsets
    if frames.size < 8 or onsets.size < 8:
        return 0.0
    period = float(np.median(np.diff(frames)))
    after = np.diff(np.append(onsets, onsets[-1] + period))
    before = np.diff(np.insert(onsets, 0, onsets[0] - period))
    # longer than the note before it counts more (an eighth after two sixteenths): human-dev's
    # drumless pieces' beat F 0.706 against 0.693 for the gap alone
    gaps = np.minimum(after / period, 2.0) * np.clip(after / before, 0.5, 2.0)
    tol = tolerance_s * inp.fps
    last = float(inp.env.size - 1)
    base, base_hits = _grid_accent(onsets, gaps, frames, tol)
    best, best_score = 0.0, base
    for f in shifts:
        score, hits = _grid_accent(onsets, gaps, shift_grid(frames, f, last), tol)
        if score > best_score and hits >= min_hits:
            best, best_score = f, score
    if best == 0.0 or base_hits < min_hits or best_score <= (1.0 + margin) * base:
        return 0.0
    kick = inp.bands["kick"]
    moved = shift_grid(frames, best, last)
    if float(_local(kick, frames).mean()) > kick_anchor * float(_local(kick, moved).mean()):
        return 0.0
    return best


def kick_shift(inp: RhythmInputs, frames: np.ndarray, *, shifts: tuple[float, ...] = (1 / 3, 1 / 2, 2 / 3),
               ratio: float = 1.6, stem_ratio: float = 4.0, min_onsets: float = 0.3) -> float:
    """The fraction of a beat by which the kick moves a grid tracked on the off-beats (0.0: it
    stays): the one of ``shifts`` whose points have the strongest kick (the mix's linear flux
    below 150 Hz, the same on the mix alone and with stems), when that is at least ``ratio``
    times the kick on the grid.

    In a shuffle the hi-hat and the boogie bass line strike together on the swung off-beats,
    and the onset strength peaks there, not under the kick and snare: the tracker locked on
    them, two thirds of a beat late, in 3 of the 38 shuffles of the rendered corpora (beat F
    0).  Their kick a third of a beat on was 1.8 to 3.3 times that on the grid; on every other
    track with drums of the ``dev``, ``dev2``, ``sel``, ``cal`` and ``human-dev`` corpora, on the
    beat or not, at most 1.3, except one four-on-the-floor song tracked on its off-beats on the
    mix alone (1.9; the move puts it on the beat).  A breakbeat's or a pop song's kicks
    on the off-beats of 2 and 3 stay below: its on-beat kick is the loudest and its bass
    strikes with it.  Ask only where drums are certain (:attr:`RhythmInputs.drums`): the low
    notes of a melody alone reached 1.7.  The mix's band holds the bass too (a reggae or latin
    bass line on the off-beats): with a drums stem, its kick band must be ``stem_ratio`` times
    stronger on the moved points.  The shuffles' drums stems measured 4.6 to 97; a breakbeat's
    syncopated kicks, rendered with MuseScore's sampled kit, 1.84 and 1.96 in the two breakbeats
    that the move took off the beat (the mix's 1.71 and 1.82; FluidR3's kit stays under 1.3).
    And the moved points must hold ``min_onsets`` of the onset strength on the grid: beats are
    where sounds start, and one of those breakbeats moved a third of a beat, where 0.11 of it
    was (a shuffle's grid moved onto its kick and snare: 0.68 to 0.89)."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.size < 4:
        return 0.0
    last = float(inp.env.size - 1)

    def gains(band: np.ndarray, fractions: tuple[float, ...]) -> list[float]:
        """``band`` (a kick band, the onset strength) on the grid moved by each fraction, over
        ``band`` on the grid."""
        on = float(_local(band, frames).mean())
        moved = [float(_local(band, shift_grid(frames, f, last)).mean()) for f in fractions]
        return [m / on if on > 0 else (np.inf if m > 0 else 0.0) for m in moved]

    mix = gains(inp.bands["kick"], shifts)
    k = int(np.argmax(mix))
    if mix[k] < ratio:
        return 0.0
    if inp.drum_bands is not None and gains(inp.drum_bands["kick"], (shifts[k],))[0] < stem_ratio:
        return 0.0
    if gains(inp.env, (shifts[k],))[0] < min_onsets:
        return 0.0
    return shifts[k]


def durational_accent(inp: RhythmInputs, grids: list[np.ndarray], onsets: np.ndarray, *,
                      tolerance_s: float = 0.05, cap: float = 4.0) -> np.ndarray:
    """Per grid: the mean gap after the onsets on its points (an onset within ``tolerance_s``,
    0 without one), in units of the track's median gap between onsets (at most ``cap``).  A
    melody's beat falls on its longer notes: a jig's quarter notes, not every other eighth (the
    same pulse tracked at 3/2 of its tempo), which the onset strength of a melody with no
    accents of loudness cannot tell."""
    gaps = np.diff(np.append(onsets, onsets[-1] + (np.median(np.diff(onsets)) if onsets.size > 1 else 1.0)))
    gaps = np.minimum(gaps / float(np.median(gaps)), cap)
    tol = tolerance_s * inp.fps
    return np.array([_grid_accent(onsets, gaps, g, tol)[0] if g.size else 0.0 for g in grids])


def mend_slip(frames: np.ndarray, *, side: int = 4, max_len: int = 5, slip: tuple[float, float] = (0.38, 0.62),
              steady: float = 0.06, last: float | None = None, entry: int | None = None) -> np.ndarray:
    """The grid ``frames`` with its half-beat slip mended.  The dynamic-programming tracker may
    follow the off-beats through a track's opening bars (an intro whose chords push ahead of
    the beat) and move onto the beat within a few beats of the drums coming in, squeezing or
    stretching its intervals by half a period there: the tempo is the same on both sides, the
    phase is not.  A window of at most ``max_len`` intervals that is ``slip`` periods too short
    or too long, between ``side`` steady intervals on each side (within ``steady`` of their
    median), is such a slip (the one nearest half a period when there are several).  The
    shorter side is moved onto the longer side's phase and the window is spaced evenly;
    beats moved before frame 0 or after ``last`` are dropped.  With ``entry`` (the index of the
    beat where the drums come in), only a slip within 2 beats of it is mended: in a melody
    alone the tracker wanders between the beat and the off-beat, and the longer side is then
    as often wrong as right (the human-composed development pieces).  Chosen on the held-out
    ``sel`` corpus: a wider window (8 intervals, 0.3-0.7 periods) also caught tempo drift.  A
    grid with no slip is returned as it is."""
    f = np.asarray(frames, dtype=np.float64)
    d = np.diff(f)
    best = None
    win = np.lib.stride_tricks.sliding_window_view(d, side) if d.size >= side else np.empty((0, side))
    for length in range(2, max_len + 1):
        i = np.arange(side, f.size - length - side)  # window i .. i + length, steady sides around it
        if i.size == 0:
            continue
        around = np.concatenate([win[i - side], win[i + length]], axis=1)
        period = np.median(around, axis=1)
        steady_ok = np.all(np.abs(around / period[:, None] - 1.0) <= steady, axis=1)
        off = ((f[i + length] - f[i]) - length * period) / period
        ok = steady_ok & (np.abs(off) >= slip[0]) & (np.abs(off) <= slip[1])
        for k in np.flatnonzero(ok):  # in order, so a tie keeps the first (shortest, earliest)
            if best is None or abs(abs(off[k]) - 0.5) < abs(abs(best[2]) - 0.5):
                best = (int(i[k]), length, float(off[k]), float(period[k]))
    if best is None:
        return f
    i, length, off, period = best
    if entry is not None and not i - 2 <= entry <= i + length + 2:
        return f
    out = f.copy()
    if i + 1 <= f.size - (i + length):  # the opening is the shorter side
        out[:i + 1] += off * period
    else:
        out[i + length:] -= off * period
    out[i:i + length + 1] = np.linspace(out[i], out[i + length], length + 1)
    return out[(out >= 0) & (out <= (np.inf if last is None else last))]


def _first_sound(env: np.ndarray, frames: np.ndarray, floor: float, q: float) -> int | None:
    """The first frame where ``env`` reaches ``floor`` × its ``q``-th percentile on the beats."""
    strength = float(np.percentile(_local(env, frames), q))
    loud = np.flatnonzero(env >= floor * strength)
    return int(loud[0]) if strength > 0 and loud.size else None


def first_sounding(env: np.ndarray, frames: np.ndarray, *, floor: float = 0.1, slack: float = 0.25,
                   q: float = 50.0) -> int:
    """Index of the first beat at most ``slack`` periods before the first sound of ``env`` (its
    first frame reaching ``floor`` × its ``q``-th percentile on the beats), 0 when nothing
    sounds."""
    frames = np.asarray(frames, dtype=np.float64)
    first = _first_sound(env, frames, floor, q) if frames.size >= 2 else None
    if first is None:
        return 0
    period = float(np.median(np.diff(frames)))
    return min(int(np.searchsorted(frames, first - slack * period)), frames.size - 1)


def entries(inp: RhythmInputs, frames: np.ndarray) -> tuple[int, int | None, int | None]:
    """Indices of the first beat with any sound, with the bass stem sounding and with the drums
    stem's kick band sounding (``None`` without those stems: the mix's low band mixes both, and
    measured worse than nothing).  A piece that opens with a pickup usually has the melody alone
    before the bass and the drums come in on a downbeat; a band that starts at once starts on
    one."""
    bass = first_sounding(inp.bass_env, frames, floor=0.25, q=75.0) if inp.bass_env is not None else None
    return first_sounding(inp.env, frames), bass, drums_entry(inp, frames)


def drums_entry(inp: RhythmInputs, frames: np.ndarray, *, mix_kick: bool = False) -> int | None:
    """Index of the first beat with the drums stem's kick band sounding; without stems, the
    mix's kick band (linear low-band flux) when ``mix_kick``, else ``None``."""
    if inp.drum_bands is not None:
        return first_sounding(inp.drum_bands["low"], frames, floor=0.25, q=75.0)
    return first_sounding(inp.bands["kick"], frames, floor=0.25, q=75.0) if mix_kick else None


def pair_phase(inp: RhythmInputs, frames: np.ndarray, downbeats: np.ndarray) -> int | None:
    """For bars of 2 pulses whose downbeats are the beats ``downbeats`` (indices into ``frames``):
    the parity (0 or 1) of the downbeats that start a pair of bars, or ``None`` when nothing says.

    A 4/4 song read in 2/4 (or 12/8 in 6/8) has every other downbeat on a real one.  Pairs
    counted from the first sound are off by one bar when the song opens with a two-beat pickup
    (the melody, or the bass, alone).  The band comes in on a real downbeat: the pair starts
    where the kick does (the drums stem's kick band; the mix's without a drums stem).  An entry
    between two downbeats says nothing."""
    at = np.flatnonzero(np.asarray(downbeats) == drums_entry(inp, frames, mix_kick=True))
    return int(at[0] % 2) if at.size else None


def finish_grid(inp: RhythmInputs, frames: np.ndarray) -> np.ndarray:
    """The chosen beat level's grid as the bar model reads it: its half-beat slip mended where
    the drums come in (:func:`mend_slip`, :func:`drums_entry`), then continued back to the
    first sound (:func:`extend_grid`)."""
    entry = drums_entry(inp, frames, mix_kick=True)
    return extend_grid(inp.env, mend_slip(frames, last=inp.env.size - 1, entry=entry))


def analyse(inp: RhythmInputs, *, model: dict | None = None, tightness: float = 100.0) -> Metrical:
    """Beats, bars and confidences of one track (see the module docstring).

    Raises
    ------
    ExtractorError
        No beat grid of at least 4 beats could be tracked.
    """
    model = model or load_model()
    cands = beat_candidates(inp, tightness=tightness)
    if not cands:
        raise ExtractorError("no beat grid of at least 4 beats: nothing rhythmic to track")
    acf = periodicity(inp.env, int(8 * inp.fps))
    X = np.stack([level_features(inp, c, acf) for c in cands])
    p = choose(X, model["level"])
    grids = [c.frames for c in cands]
    onsets = melody_onsets(inp) if inp.no_drums else np.zeros(0)
    if onsets.size >= 8:
        # no drums (a drum kit's off-beats can outweigh the melody: measured worse): each grid
        # onto its melody's longer notes, and the level model's probabilities weighed by how
        # long the notes on each grid are
        last = float(inp.env.size - 1)
        grids = [shift_grid(g, accent_shift(inp, g, onsets=onsets), last) for g in grids]
        weighed = p * durational_accent(inp, grids, onsets)
        if weighed.sum() > 0:  # else no grid has an onset on it: the model's word stands
            p = weighed / weighed.sum()
    k = int(np.argmax(p))
    best = cands[k]
    # confidence in the tempo: every candidate that agrees with it within 4 % counts
    tempo_conf = float(sum(q for c, q in zip(cands, p) if abs(c.bpm / best.bpm - 1.0) <= 0.04))
    tracked = grids[k]
    if inp.drums:
        tracked = shift_grid(tracked, kick_shift(inp, tracked), float(inp.env.size - 1))
    frames = finish_grid(inp, tracked)
    beats = np.maximum(frames - inp.latency, 0.0) / inp.fps
    hyps = meter_hypotheses(beats.size)
    if not hyps:
        raise ExtractorError(f"only {beats.size} beats: too few to find bars")
    bs = beat_sync(inp, beats)
    first = entries(inp, frames)
    Xm = np.stack([meter_features(bs, m, ph, first) for m, ph in hyps])
    pm = choose(Xm, model[meter_model_name(inp)])
    k = int(np.argmax(pm))
    m, phase = hyps[k]
    meter_conf = float(sum(q for (mm, _), q in zip(hyps, pm) if mm == m))
    # a meter can be sure while its bar lines are a guess: a chorale's pickup read as a downbeat,
    # beats 1 and 3 of a 4/4 bar taken one for the other (docs/eval.md, "Bar lines below their
    # confidence")
    downbeat_conf = float(pm[k] / meter_conf) if meter_conf > 0 else 0.0
    compound = is_compound(inp, tracked, m)
    return Metrical(beats=beats, downbeats=beats[phase::m], pulses_per_bar=m,
                    beats_per_bar=3 * m if compound else m, compound=compound,
                    tempo_confidence=tempo_conf, meter_confidence=meter_conf, downbeat_confidence=downbeat_conf,
                    candidates=[(round(c.bpm, 2), round(float(q), 4)) for c, q in zip(cands, p)],
                    pair_phase=pair_phase(inp, frames, np.arange(phase, beats.size, m)) if m == 2 else None)


def from_beats_and_downbeats(inp: RhythmInputs, beats: np.ndarray, downbeats: np.ndarray,
                             beat_probability: np.ndarray | None = None,
                             downbeat_probability: np.ndarray | None = None, *, fps: float = 50.0) -> Metrical:
    """A :class:`Metrical` from a beat tracker's beats and downbeats (Beat This!).

    Pulses per bar: the most common number of beats between consecutive downbeats (2 to 12);
    meter confidence: the share of bars of that length.  Tempo confidence: the mean beat
    probability on the beats (``beat_probability`` per frame at ``fps``), else the share of
    inter-beat intervals within 10 % of the median.  Downbeat confidence: the mean downbeat
    probability on the downbeats (``downbeat_probability``), else the meter confidence (bars
    of one length put their lines where the tracker hears them).  Compound meters as in
    :func:`analyse`.

    Raises
    ------
    ExtractorError
        Fewer than 4 beats or 2 downbeats.
    """
    beats = np.asarray(beats, dtype=np.float64)
    downbeats = np.asarray(downbeats, dtype=np.float64)
    if beats.size < 4 or downbeats.size < 2:
        raise ExtractorError(f"the beat tracker found {beats.size} beats and {downbeats.size} downbeats: too few "
                             "to measure tempo and bars")
    idx = np.searchsorted(beats, downbeats - 1e-6)
    lengths = np.diff(idx)
    lengths = lengths[(lengths >= 2) & (lengths <= 12)]
    if lengths.size == 0:
        raise ExtractorError("the beat tracker's bars hold fewer than 2 or more than 12 beats")
    values, counts = np.unique(lengths, return_counts=True)
    m = int(values[int(np.argmax(counts))])
    meter_conf = float(counts.max() / counts.sum())

    def mean_at(times: np.ndarray, probability: np.ndarray) -> float:
        return float(np.mean(probability[np.clip(np.round(times * fps).astype(int), 0, probability.size - 1)]))

    def given(probability: np.ndarray | None) -> bool:
        return probability is not None and probability.size > 0

    if given(beat_probability):
        tempo_conf = mean_at(beats, beat_probability)
    else:
        ibi = np.diff(beats)
        tempo_conf = float(np.mean(np.abs(ibi - np.median(ibi)) <= 0.1 * np.median(ibi)))
    downbeat_conf = mean_at(downbeats, downbeat_probability) if given(downbeat_probability) else meter_conf
    frames = beats * inp.fps + inp.latency
    compound = is_compound(inp, frames, m)
    pair = None
    if m == 2:
        on_beat = np.abs(beats[np.minimum(idx, beats.size - 1)] - downbeats) < 0.05  # downbeats on a beat
        pair = pair_phase(inp, frames, np.where(on_beat, idx, -1))
    return Metrical(beats=beats, downbeats=downbeats, pulses_per_bar=m, beats_per_bar=3 * m if compound else m,
                    compound=compound, tempo_confidence=tempo_conf, meter_confidence=meter_conf,
                    downbeat_confidence=downbeat_conf, engine="beat_this", pair_phase=pair)
