"""Tonal features: chroma, HPCP, tonal interval vector and key of the harmonic
content, and how much the harmony of the bass and other stems moves.

One front end per signal (:func:`tonal_frames`, memoised on the signal): a
native-rate STFT (~186 ms Hann window, ~93 ms hop, power summed over channels
so out-of-phase stereo content is not cancelled), spectral peaks with
log-parabolic interpolation, a global tuning estimate, and from the peaks two
12-bin frame series, both with index 0 = C:

* ``chroma``: each peak's linear magnitude in its nearest pitch class (cosine
  weight), i.e. the pitch content as heard, overtones included;
* ``hpcp``: Essentia's HPCP as the seed configured it (8 harmonics, cosine
  weight, squared magnitudes, low/high bands split at 500 Hz, unit-max,
  non-linear), re-implemented vectorised; each peak is also credited to the
  fundamentals it could be a harmonic of.

The harmonic content is the sum of the ``bass`` and ``other`` stems when the
track has them and they are not silent (their STFTs are added, which is exact:
the STFT is linear), else the mix.  The key is the Pearson correlation of the
mean chroma (each frame scaled to max 1) with the 24 rotations of the
Albrecht-Shanahan profiles (Krumhansl-Kessler's and Temperley's are options).  A
key shares all but one note with its relative, dominant and subdominant keys, so
the profile alone hardly separates them; every key's correlation gets a bonus for how
well its tonic triad fits the first seconds of pitched content (Longuet-Higgins &
Steedman's rule that a piece opens on its tonic), and one for how often it is the chord at
the start of a 4-bar phrase (the chords extractor's chords on the beat grid: a loop of i, VI,
III, VII is its relative major's vi, IV, I, V, and which chord the phrase returns to tells
them apart).  That hand-weighted sum is ``key_model: profile``; by default (``fitted``) the
key is a conditional logit over these cues and more, whose weights were fitted on rendered and
human-composed development corpora (:mod:`sat_mir.features.key_model`).  The chroma, not the HPCP,
feeds the key: crediting each peak to the fundamentals a fifth and a third
below (HPCP) pulls the profile towards the subdominant key.

Fixed against the seed: the seed fed a C-referenced HPCP to Essentia's ``Key``
(which assumes bin 0 = A) and mapped the flat names it returned to C, so its
tonic was 3 semitones low and four tonics read as C; it averaged the stereo
channels before the STFT; and its harmonic movement/variance "cap at 1" never
applied (both are bounded below 1 by construction, see :func:`harmonic_change`).

Size: about 840 lines, one module on purpose: the front end (peaks, tuning, chroma, HPCP) is
memoised per signal and shared by the key, the tonal interval vector, the harmonic movement of
the stems and the chords extractor.  The fitted key model's cues and weights are in
``key_model.py``; the hand-weighted key is some 60 lines at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sat_mir.audio.context import SignalContext, TrackContext, stft_blocks, stft_frames
from sat_mir.errors import ConfigError, ExtractorError
from sat_mir.features.beat_grid import GridConfig, UsesBeatGrid, grid_settings
from sat_mir.features.registry import ExtractorResult, Needs, OutputSpec, register

__all__ = [
    "PITCH_CLASSES",
    "PROFILES",
    "TONIC_TRIADS",
    "Tonal",
    "HarmonicFrames",
    "TonalFrames",
    "band_stft",
    "centred_unit",
    "harmonic_frames",
    "key_confidence",
    "key_scores",
    "harmonic_change",
    "hpcp_from_peaks",
    "tonal_frames",
    "tonal_interval_vector",
]

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
C4_HZ = 440.0 * 2.0 ** (-9.0 / 12.0)  # 261.63 Hz: HPCP bin 0 = C (at A4 = 440 Hz)
HARMONIC_STEMS = ("bass", "other")

# Key profiles, index 0 = tonic.
PROFILES: dict[str, dict[str, tuple[float, ...]]] = {
    # Krumhansl & Kessler (1982), probe-tone ratings.
    "krumhansl": {
        "major": (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        "minor": (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    },
    # Temperley, Music and Probability (2007), Table 6.1: Kostka-Payne corpus.
    "temperley": {
        "major": (0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400),
        "minor": (0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330),
    },
    # Albrecht & Shanahan (2013), corpus of 490 pieces.
    "albrecht": {
        "major": (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081),
        "minor": (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052),
    },
}
MODES = ("major", "minor")
KEY_MODELS = ("fitted", "profile")
_TIV_WEIGHTS = np.array([3.0, 8.0, 11.5, 15.0, 14.5, 7.5])  # Bernardes et al. (2016), k = 1..6
_VARIANCE_SCALE = 0.1  # the seed's harmonic_variance divisor


def _spec_list() -> tuple[OutputSpec, ...]:
    src = "the harmonic content (bass+other stem sum when the track has those stems, else the mix)"
    specs = []
    for i, pc in enumerate(PITCH_CLASSES):
        specs.append(OutputSpec(
            f"chroma_{i}", "fraction",
            f"share of {pc} in the mean chroma of {src}: peak magnitudes, overtones included; "
            "frames L2-normalised, averaged, then divided by the sum so chroma_0..11 sum to 1", (0.0, 1.0)))
    for i, pc in enumerate(PITCH_CLASSES):
        specs.append(OutputSpec(
            f"hpcp_{i}", "ratio to max",
            f"{pc} bin of the mean HPCP of {src} (Essentia's HPCP as the seed set it: 8 harmonics, "
            "40-5000 Hz, unit-max and non-linear per frame), divided by its maximum", (0.0, 1.0)))
    for k in range(6):
        for part, j in (("real", 2 * k), ("imaginary", 2 * k + 1)):
            specs.append(OutputSpec(
                f"tiv_{j}", "unitless",
                f"tonal interval vector of the mean HPCP: {part} part of DFT coefficient {k + 1}, weighted "
                "(Bernardes et al.: 3, 8, 11.5, 15, 14.5, 7.5), all 12 values L2-normalised", (-1.0, 1.0)))
    specs += [
        OutputSpec("key", "key name", "estimated key, e.g. 'F# minor' (sharps, like the demo truth)", kind="str",
                   confidence="key_confidence", holds="track"),
        OutputSpec("key_tonic", "pitch class", "tonic of the key, 0 = C ... 11 = B", (0, 11), kind="int",
                   confidence="key_confidence", holds="track"),
        OutputSpec("key_mode", "mode", "'major' or 'minor'", kind="str", confidence="key_confidence", holds="track"),
        OutputSpec("key_strength", "correlation",
                   "Pearson correlation of the mean chroma with the chosen key's profile", (0.0, 1.0), holds="track"),
        OutputSpec("key_confidence", "probability",
                   "how sure the key is: its probability under the fitted key model (a softmax over the 24 "
                   "keys at a temperature chosen on held-out songs and pieces; with key_model=profile, over "
                   "the hand-weighted scores); on the held-out sets it was chosen on, its mean is within 3.6 "
                   "points of the accuracy, rendered or human-composed (on the human-composed test pieces up "
                   "to 10 points over it, against up to 13 untempered); it ranks right keys above "
                   "wrong ones with AUC 0.89-0.98 (0.69-0.81 on human-composed pieces)", (0.0, 1.0),
                   holds="track"),
        OutputSpec("harmonic_movement_{stem}", "normalised L2 distance",
                   "bass and other stems only: mean distance between consecutive L1-normalised chroma frames "
                   "(~93 ms hop) divided by sqrt(2) (the seed's definition, never capped; bounded by 1)",
                   (0.0, 1.0)),
        OutputSpec("harmonic_variance_{stem}", "variance / 0.1",
                   "bass and other stems only: mean over the 12 bins of the temporal variance of the "
                   "L1-normalised chroma frames, divided by 0.1 (the seed's definition, never capped; "
                   "bounded by 11/14.4 = 0.76)", (0.0, 1.0)),
    ]
    return tuple(specs)


@register
class Tonal(UsesBeatGrid):
    name = "tonal"
    needs = Needs(min_sound_s=2.0, pitched=True)
    # 18: phrase starts on bars from the bar models refitted with drum-machine kicks;
    # 17: phrase starts on bars from the bar models refitted with the kick's place in the bar;
    # 16: phrase starts on a grid whose period follows a tempo that steps (metrical.local_tempo);
    # 15: key_confidence at the key model's calibrated temperature (the same keys, less sure on
    #     human-composed pieces, where the untempered model was over-confident);
    # 14: the key from the fitted key model (key_model.py; the hand-weighted sum is key_model=profile);
    # 13: the phrase starts on a grid the kick moves only onto onsets (and a drums stem's kick 4x);
    # 12: the phrase starts on a grid the kick moves only where the mix's highs measure 0.46 or more;
    # 11: the phrase starts on downbeats on the track's own attacks (attack.attack_shift);
    # 10: the phrase starts on downbeats on their local line (metrical.steady_beats);
    # 9: the phrase starts on downbeats moved onto the notes' starts (rhythm.ATTACK_LEAD_S);
    # 8: the note chroma finds a partial's fundamental among every lower peak (was the 16 below it);
    # 7: the key reads the chords at phrase starts (phrase_weight);
    # 6: the key reads the note chroma beside the plain chroma (note_weight);
    # 5: the mix's drums left out of its harmonic content; 4: the opening's bass; 3: minor_bias;
    # 2: Albrecht & Shanahan's key profiles by default (were Krumhansl & Kessler's)
    version = "18"
    signals = ("mix", "stems")
    outputs = _spec_list()

    @dataclass(frozen=True)
    class Config(GridConfig):
        frame_s: float = 0.186  # STFT window, rounded to a power of two samples (8192 at 44.1/48 kHz)
        hop_s: float = 0.093
        min_hz: float = 40.0
        max_hz: float = 5000.0
        split_hz: float = 500.0  # HPCP: low and high bands are normalised separately
        harmonics: int = 8
        max_peaks: int = 100  # strongest spectral peaks kept per frame
        peak_floor_db: float = -60.0  # peaks further below the frame's strongest are ignored
        gate_db: float = -70.0  # frames whose 40-5000 Hz level (dBFS) is lower are silence
        relative_gate_db: float = -50.0  # ... or that are this far below the loudest frame
        estimate_tuning: bool = True
        # fitted: the conditional logit of key_model.py on key_weights.json; profile: the
        # hand-weighted sum of key_scores (profile, opening_weight, opening_bass_weight,
        # minor_bias and phrase_weight apply to it alone)
        key_model: str = "fitted"
        profile: str = "albrecht"
        opening_s: float = 2.0
        opening_weight: float = 0.5
        opening_bass_weight: float = 0.05
        minor_bias: float = 0.02
        # the key's pitch-class frames: this share from the overtone-suppressed note chroma, the
        # rest from the plain chroma (see _summary)
        note_weight: float = 0.25
        # + phrase_weight x (share of phrase starts, every phrase_bars bars, on the key's tonic
        # triad)^2; 0 = off (and the key reads no beat grid)
        phrase_weight: float = 0.3
        phrase_bars: int = 4
        # the mix's drums, left out of its harmonic content: median filters this long (s) and
        # this wide (Hz), see harmonic_mask; 0 keeps the drums
        percussion_median_s: float = 0.84
        percussion_median_hz: float = 90.0

        def __post_init__(self):
            super().__post_init__()
            if self.key_model not in KEY_MODELS:
                raise ConfigError(f"extractors.tonal.key_model={self.key_model!r}; known: {list(KEY_MODELS)}")
            if self.profile not in PROFILES:
                raise ConfigError(f"extractors.tonal.profile={self.profile!r}; known: {sorted(PROFILES)}")
            if not 0.0 < self.min_hz < self.split_hz < self.max_hz:
                raise ConfigError(
                    f"extractors.tonal: need 0 < min_hz < split_hz < max_hz, got "
                    f"{self.min_hz}, {self.split_hz}, {self.max_hz}")
            if self.frame_s <= 0 or self.hop_s <= 0:
                raise ConfigError(f"extractors.tonal: frame_s={self.frame_s} and hop_s={self.hop_s} must be > 0")
            if self.percussion_median_s < 0 or self.percussion_median_hz < 0:
                raise ConfigError(
                    f"extractors.tonal: percussion_median_s={self.percussion_median_s} and "
                    f"percussion_median_hz={self.percussion_median_hz} must be >= 0")
            if self.phrase_weight < 0 or self.phrase_bars < 1:
                raise ConfigError(
                    f"extractors.tonal: phrase_weight={self.phrase_weight} must be >= 0, "
                    f"phrase_bars={self.phrase_bars} >= 1")
            if not 0.0 <= self.note_weight <= 1.0:
                raise ConfigError(f"extractors.tonal.note_weight={self.note_weight} must be within [0, 1]")
            if self.harmonics < 0 or self.max_peaks < 1:
                raise ConfigError(
                    f"extractors.tonal: harmonics={self.harmonics} must be >= 0, max_peaks={self.max_peaks} >= 1")

    def prepare(self, ctx: TrackContext, stem: str) -> None:
        if self._reads_chords:
            super().prepare(ctx, stem)  # the beat grid's inputs
        harmonic = [s for s in HARMONIC_STEMS if s in ctx.stem_names]
        if harmonic and stem == harmonic[-1]:  # the others were just prepared: still held
            harmonic_frames(ctx, self.config)

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        c = self.config
        result = ExtractorResult()
        harmonic = harmonic_frames(ctx, c)
        for name in HARMONIC_STEMS:
            fr = harmonic.stems.get(name)
            change = None if fr is None else harmonic_change(fr.chroma, fr.active)
            if change is not None:
                result.values[f"harmonic_movement_{name}"] = round(change[0], 6)
                result.values[f"harmonic_variance_{name}"] = round(change[1], 6)
                continue
            if fr is None:
                why = f"track has no {name} stem"
            elif not fr.active.any():
                why = f"{name} stem is silent (no frame above {c.gate_db:g} dBFS in {c.min_hz:g}-{c.max_hz:g} Hz)"
            else:
                why = f"{name} stem has no two consecutive frames with spectral peaks"
            result.absent[f"harmonic_movement_{name}"] = why
            result.absent[f"harmonic_variance_{name}"] = why
        if not harmonic.frames.active.any():
            names = list(harmonic.stems)
            raise ExtractorError(
                f"no harmonic content: the mix{' and the ' + '+'.join(names) + ' stems' if names else ''} "
                f"have no frame above {c.gate_db} dBFS in {c.min_hz:g}-{c.max_hz:g} Hz")
        segs, phrase = self._chords(ctx)
        result.values.update(self._summary(harmonic, phrase, segs))
        return result

    def key_cues(self, ctx: TrackContext) -> tuple[str, dict[str, np.ndarray]]:
        """The fitted key model's variant ('stems' or 'mix') and cues for a track, as
        :meth:`compute` reads them (``tools/fit_key.py`` fits the model on them)."""
        harmonic = harmonic_frames(ctx, self.config)
        segs, phrase = self._chords(ctx)
        return _variant(harmonic), self._cues(_KeyFrames.of(harmonic, self.config), phrase, segs)

    # -- helpers -----------------------------------------------------------------------------

    @property
    def _reads_chords(self) -> bool:
        return self.config.key_model == "fitted" or self.config.phrase_weight > 0

    def _chords(self, ctx: TrackContext) -> tuple[list, np.ndarray | None]:
        """The chords extractor's chord segments on the beat grid (the fitted model's chord cues)
        and the share of phrase starts on each key's tonic triad (``chords.phrase_tonics``);
        ``([], None)`` without a beat grid or chords (the key then reads the pitch classes alone)."""
        c = self.config
        if not self._reads_chords:
            return [], None
        from sat_mir.features.chords import Chords, chord_segments, phrase_tonics  # chords imports this module

        try:
            segs, grid = chord_segments(ctx, Chords.Config(**grid_settings(c)))
        except ExtractorError:  # fewer than 2 beats, or nothing pitched
            return [], None
        return segs, phrase_tonics(segs, grid.downbeats, float(np.median(np.diff(grid.beats))), c.phrase_bars)

    def _summary(self, harmonic: HarmonicFrames, phrase: np.ndarray | None, segs: list) -> dict:
        c = self.config
        fr = harmonic.frames
        kf = _KeyFrames.of(harmonic, c)
        frames = fr.chroma[:, kf.use]
        chroma = (frames / np.linalg.norm(frames, axis=0)).mean(axis=1)  # the seed's norm=2 frames
        chroma /= chroma.sum()
        hpcp = fr.hpcp[:, kf.use].mean(axis=1)
        hpcp /= hpcp.max()
        pcp = kf.unit.mean(axis=1)
        if c.key_model == "fitted":
            from sat_mir.features.key_model import key_probabilities, load_key_model

            prob = key_probabilities(self._cues(kf, phrase, segs), load_key_model()[_variant(harmonic)])
            m, tonic = np.unravel_index(int(np.argmax(prob)), prob.shape)
            confidence = float(prob[m, tonic])
            corr = _correlations(pcp, _profile_matrix(c.profile))
        else:
            total, corr = key_scores(pcp, opening=kf.opening, profile=c.profile,
                                     opening_weight=c.opening_weight, minor_bias=c.minor_bias,
                                     opening_bass=kf.opening_bass, opening_bass_weight=c.opening_bass_weight,
                                     phrase=phrase, phrase_weight=c.phrase_weight)
            m, tonic = np.unravel_index(int(np.argmax(total)), total.shape)
            confidence = key_confidence(total)
        mode, strength = MODES[m], float(corr[m, tonic])
        out: dict = {}
        out.update({f"chroma_{i}": round(float(v), 6) for i, v in enumerate(chroma)})
        out.update({f"hpcp_{i}": round(float(v), 6) for i, v in enumerate(hpcp)})
        out.update({f"tiv_{i}": round(float(v), 6) for i, v in enumerate(tonal_interval_vector(hpcp))})
        out.update({
            "key": f"{PITCH_CLASSES[tonic]} {mode}",
            "key_tonic": int(tonic),
            "key_mode": mode,
            "key_strength": round(float(strength), 6),
            "key_confidence": round(confidence, 4),
        })
        return out

    def _cues(self, kf: _KeyFrames, phrase: np.ndarray | None, segs: list) -> dict[str, np.ndarray]:
        from sat_mir.features.chords import QUALITIES, TRIAD_KIND
        from sat_mir.features.key_model import key_cues

        named = [s for s in segs if s.root is not None]
        last = max(1, round(self.config.opening_s / kf.hop_s))
        return key_cues(
            pcp=kf.unit.mean(axis=1), plain=kf.plain.mean(axis=1), notes=kf.notes.mean(axis=1), opening=kf.opening,
            opening_bass=kf.opening_bass, bass=kf.bass, closing=kf.unit[:, -last:].mean(axis=1), phrase=phrase,
            segments=[(s.start, s.end, s.root, TRIAD_KIND[s.quality]) for s in named],
            pitch_classes=[[(s.root + i) % 12 for i in QUALITIES[s.quality]] for s in named],
            profiles={name: _profile_matrix(name) for name in PROFILES})


def _variant(harmonic: HarmonicFrames) -> str:
    """Which fitted key model a track's harmonic content takes: its stems', or the mix's."""
    return "mix" if harmonic.source == "mix" else "stems"


@dataclass(frozen=True)
class _KeyFrames:
    """The key's pitch-class frames of the harmonic content (frames with sound and spectral
    peaks only), each frame scaled to max 1: ``plain`` (the chroma), ``notes`` (the note
    chroma), ``unit`` (their blend), ``opening`` (the blend's mean over the first opening_s
    seconds), ``opening_bass`` and ``bass`` (the bass's mean over those seconds and over the
    track: the bass stem's chroma, the mix's lowest notes without it)."""

    use: np.ndarray
    plain: np.ndarray
    notes: np.ndarray
    unit: np.ndarray
    opening: np.ndarray
    opening_bass: np.ndarray | None
    bass: np.ndarray | None
    hop_s: float

    @classmethod
    def of(cls, harmonic: HarmonicFrames, c: Tonal.Config) -> _KeyFrames:
        fr = harmonic.frames
        use = fr.active & (fr.chroma.sum(axis=0) > 0)  # frames with sound and spectral peaks
        if not use.any():
            raise ExtractorError(
                f"no spectral peaks between {c.min_hz:g} and {c.max_hz:g} Hz: nothing pitched to measure")
        # Every frame counts equally (unit max); the opening is the first opening_s seconds from
        # the first frame with pitched content.  The frames blend the plain chroma with the note
        # chroma, whose peaks on a lower note's 3rd, 5th, 6th and 7th harmonics count 0.2: a minor
        # chord's root puts its major third in the plain chroma with its 5th harmonic, but a chord
        # tone on a lower note's harmonic counts 0.2 too.  Each alone won on some held-out corpora
        # and lost on others; a quarter of the note chroma measured a little better over all of
        # them (on the mix alone never worse), and more of it read minor keys of the demo's
        # synthesiser (bass harmonics on the chord tones) as the major key a sixth up (docs/eval.md).
        frames = fr.chroma[:, use]
        plain = frames / frames.max(axis=0)
        notes = fr.note_chroma[:, use]
        notes = notes / np.maximum(notes.max(axis=0), 1e-30)
        unit = (1.0 - c.note_weight) * plain + c.note_weight * notes if c.note_weight > 0 else plain
        times = np.flatnonzero(use)
        first = times < times[0] + max(1, round(c.opening_s / fr.hop_s))
        bass_stem = harmonic.stems.get("bass")
        low = bass_stem.chroma if bass_stem is not None and bass_stem.active.any() else fr.low_chroma

        def mean_unit(x: np.ndarray) -> np.ndarray | None:
            x = x[:, x.sum(axis=0) > 0]
            return (x / x.max(axis=0)).mean(axis=1) if x.size else None

        return cls(use=use, plain=plain, notes=notes, unit=unit, opening=unit[:, first].mean(axis=1),
                   opening_bass=mean_unit(low[:, times[first & (times < low.shape[1])]]),
                   bass=mean_unit(low[:, times[times < low.shape[1]]]), hop_s=fr.hop_s)  # a bass stem may be shorter


@dataclass(frozen=True)
class HarmonicFrames:
    """The tonal frames of a track's harmonic content (``frames``: the bass+other stem sum when
    the track has those stems and they sound, else the mix; ``source`` names it) and of each
    of those stems (``stems``)."""

    frames: TonalFrames
    source: str
    stems: dict[str, TonalFrames]


def _stft_args(config: Tonal.Config, sr: int) -> dict:
    return {"n_fft": int(2 ** round(math.log2(config.frame_s * sr))), "hop": max(1, round(config.hop_s * sr)),
            "max_hz": config.max_hz}


def _frames_key(config: Tonal.Config, sr: int, median: tuple[int, int] | None = None) -> tuple:
    c = config
    return (sr, c.frame_s, c.hop_s, c.min_hz, c.max_hz, c.split_hz, c.harmonics, c.max_peaks, c.peak_floor_db,
            c.gate_db, c.relative_gate_db, c.estimate_tuning, median)


def _percussion_median(config: Tonal.Config, sr: int) -> tuple[int, int] | None:
    """The harmonic mask's median filters in (frames, bins), odd; ``None`` when configured off."""
    c = config
    if c.percussion_median_s <= 0 or c.percussion_median_hz <= 0:
        return None
    args = _stft_args(c, sr)
    return (max(1, round(c.percussion_median_s / (args["hop"] / sr))) | 1,
            max(1, round(c.percussion_median_hz / (sr / args["n_fft"]))) | 1)


def _frames_of_spectrum(config: Tonal.Config, spec: np.ndarray, sr: int,
                        median: tuple[int, int] | None = None) -> TonalFrames:
    c = config
    args = _stft_args(c, sr)
    return tonal_frames(
        spec, sr, n_fft=args["n_fft"], hop=args["hop"], min_hz=c.min_hz, max_hz=c.max_hz, split_hz=c.split_hz,
        harmonics=c.harmonics, max_peaks=c.max_peaks, peak_floor_db=c.peak_floor_db, gate_db=c.gate_db,
        relative_gate_db=c.relative_gate_db, estimate_tuning=c.estimate_tuning, percussion_median=median,
    )


def harmonic_frames(ctx: TrackContext, config: Tonal.Config | None = None, *, drums: bool = False) -> HarmonicFrames:
    """The tonal frames of the track's harmonic content, memoised on the track's signals: the
    tonal, rhythm and chords extractors share one front end per signal.

    Where the mix is the harmonic content, its drums are left out (:func:`harmonic_mask`)
    unless ``drums``: the key and the chords read the harmonic part (held out: mix-alone key
    81.0 -> 83.0 % on ``sel``, chords majmin 72.0 -> 73.7 % on ``sel``, 74.9 -> 76.8 % on
    ``cal``), the bar model the whole mix (its chroma with the drums found bars better: a crash
    on the bar line is a change too)."""
    c = config if config is not None else Tonal.Config()
    names = [s for s in HARMONIC_STEMS if s in ctx.stem_names]
    spectra: dict[str, np.ndarray] = {}  # complex band STFTs, only for this call

    def spectrum(sig: SignalContext) -> np.ndarray:
        if sig.name not in spectra:
            spectra[sig.name] = band_stft(sig.samples, sig.sr, **_stft_args(c, sig.sr))
        return spectra[sig.name]

    def frames_of(sig: SignalContext, median: tuple[int, int] | None = None) -> TonalFrames:
        return sig.memo(("tonal.frames", _frames_key(c, sig.sr, median)),
                        lambda: _frames_of_spectrum(c, spectrum(sig), sig.sr, median))

    stems = {name: frames_of(ctx.stem(name)) for name in names}
    source, frames = "mix", None
    if len(names) == 1:
        source, frames = names[0], stems[names[0]]
    elif names:
        first = ctx.stem(names[0])

        def summed() -> TonalFrames:
            parts = [spectra.pop(n, None) for n in names]
            parts = [p if p is not None else spectrum(ctx.stem(n)) for p, n in zip(parts, names)]
            spectra.clear()
            shape = (max(p.shape[0] for p in parts), max(p.shape[1] for p in parts), parts[0].shape[2])
            total = parts[0] if parts[0].shape == shape else np.zeros(shape, dtype=np.complex64)
            for p in parts if total is not parts[0] else parts[1:]:
                total[:, : p.shape[1]] += p  # a mono stem adds to every channel
            del parts
            return _frames_of_spectrum(c, total, first.sr)

        source = "+".join(names)
        frames = first.memo(("tonal.frames", source, _frames_key(c, first.sr)), summed)
    if frames is None or not frames.active.any():
        source, frames = "mix", frames_of(ctx.mix, None if drums else _percussion_median(c, ctx.mix.sr))
    spectra.clear()
    return HarmonicFrames(frames=frames, source=source, stems=stems)


@dataclass(frozen=True)
class TonalFrames:
    """Frame series of one signal, time on the last axis.

    ``chroma`` ``[12, frames]``: peak magnitudes per pitch class (0 = C), unnormalised.
    ``hpcp`` ``[12, frames]``: per-frame HPCP (unit max, non-linear), 0 in frames without peaks.
    ``note_chroma`` ``[12, frames]``: like ``chroma``, with the peaks that sit on the 3rd, 5th, 6th
    or 7th harmonic of a lower peak of the same frame mostly removed (a note's third harmonic
    is its fifth, its fifth harmonic its major third: they blur minor into major chords).
    ``low_chroma`` ``[12, frames]``: the lowest note per frame (its lowest clear peak below
    ``low_max_hz``, the bass line), weighted by its magnitude.
    ``active`` ``[frames]``: frames above the silence gates.  ``level_db`` ``[frames]``: band level
    (dBFS).  ``tuning`` (semitones): the reference shift applied, in [-0.5, 0.5).
    """

    chroma: np.ndarray
    hpcp: np.ndarray
    low_chroma: np.ndarray
    note_chroma: np.ndarray
    active: np.ndarray
    level_db: np.ndarray
    hop_s: float
    tuning: float


def band_stft(samples: np.ndarray, sr: int, *, n_fft: int, hop: int, max_hz: float) -> np.ndarray:
    """Centred Hann STFT of every channel, kept up to ``max_hz`` (plus two guard bins).

    Parameters
    ----------
    samples : float array ``[channels, frames]``
    sr : int > 0, Hz
    n_fft, hop : int > 0, samples
    max_hz : float > 0

    Returns
    -------
    complex64 ``[channels, stft frames, bins]``; frame ``t`` is centred on sample ``t * hop``.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    n_bins = min(n_fft // 2 + 1, int(max_hz * n_fft / sr) + 3)
    out = np.empty((x.shape[0], stft_frames(x.shape[1], n_fft, hop), n_bins), dtype=np.complex64)
    # transformed in blocks of 2**20 samples: the windowed frames (4 MB) and their transform stay
    # in cache (512 frames of 8192 took 0.084 s per 3-minute channel, 128 frames 0.054 s; the same values)
    step = max(1, 2 ** 20 // n_fft)
    for c, channel in enumerate(x):
        for t, z in stft_blocks(channel, n_fft, hop, block=step):
            out[c, t: t + z.shape[0]] = z[:, :n_bins]
    return out


def tonal_frames(
    spec: np.ndarray, sr: int, *, n_fft: int, hop: int, min_hz: float = 40.0, max_hz: float = 5000.0,
    split_hz: float = 500.0, harmonics: int = 8, max_peaks: int = 100, peak_floor_db: float = -60.0,
    gate_db: float = -70.0, relative_gate_db: float = -50.0, estimate_tuning: bool = True, low_max_hz: float = 250.0,
    percussion_median: tuple[int, int] | None = None,
) -> TonalFrames:
    """Chroma and HPCP frames from a band STFT (:func:`band_stft`, Hann window of ``n_fft``).

    Power is summed over channels; peaks are local maxima of that magnitude between
    ``min_hz`` and ``max_hz``, at most ``max_peaks`` per frame and within
    ``peak_floor_db`` of the frame's strongest, located by parabolic interpolation of
    the log magnitude.  ``percussion_median`` (frames, bins): the peaks are read off the
    harmonic part of the magnitude (:func:`harmonic_mask`); the silence gates still read all of it.
    """
    spec = np.asarray(spec)
    power = np.einsum("ctk,ctk->tk", spec.real, spec.real) + np.einsum("ctk,ctk->tk", spec.imag, spec.imag)
    n_frames, n_bins = power.shape
    freqs_bin = np.arange(n_bins) * sr / n_fft
    band = (freqs_bin >= min_hz) & (freqs_bin <= max_hz)
    window_energy = float(np.sum(np.hanning(n_fft + 1)[:-1] ** 2))
    mean_square = 2.0 * power[:, band].sum(axis=1) / (n_fft * window_energy * spec.shape[0])
    level_db = 10.0 * np.log10(np.maximum(mean_square, 1e-30))
    active = (level_db >= gate_db) & (level_db >= level_db.max() + relative_gate_db)

    mag = np.sqrt(power, dtype=np.float32)
    if percussion_median is not None:
        mag = harmonic_mask(mag, *percussion_median)
    m = mag[:, 1:-1]
    is_peak = (m > mag[:, :-2]) & (m >= mag[:, 2:]) & band[1:-1]
    is_peak &= active[:, None]
    frame_max = np.where(is_peak, m, 0.0).max(axis=1, initial=0.0)
    is_peak &= m >= (frame_max * 10.0 ** (peak_floor_db / 20.0))[:, None]
    counts = is_peak.sum(axis=1)
    if counts.size and counts.max() > max_peaks:
        vals = np.where(is_peak, m, 0.0)
        kth = -np.partition(-vals, max_peaks - 1, axis=1)[:, max_peaks - 1]
        is_peak &= m >= kth[:, None]
    t_idx, k_idx = np.nonzero(is_peak)
    k_idx = k_idx + 1
    la = np.log(np.maximum(mag[t_idx, k_idx - 1], 1e-30))
    lb = np.log(np.maximum(mag[t_idx, k_idx], 1e-30))
    lc = np.log(np.maximum(mag[t_idx, k_idx + 1], 1e-30))
    denom = la - 2.0 * lb + lc
    offset = np.where(denom < 0, 0.5 * (la - lc) / np.where(denom < 0, denom, -1.0), 0.0)
    freq = (k_idx + offset) * sr / n_fft
    amp = np.exp(lb - 0.25 * (la - lc) * offset)
    keep = (freq >= min_hz) & (freq <= max_hz)
    t_idx, freq, amp = t_idx[keep], freq[keep], amp[keep]

    pitch = 12.0 * np.log2(freq / C4_HZ)  # semitones above C4
    tuning = 0.0
    if estimate_tuning and pitch.size:
        z = np.sum(amp**2 * np.exp(2j * np.pi * pitch))
        if abs(z) > 0:
            tuning = float(np.angle(z) / (2 * np.pi))  # in (-0.5, 0.5]
            tuning = -0.5 if tuning >= 0.5 else tuning
    pitch = pitch - tuning
    chroma = _pitch_class_profile(pitch, amp, t_idx, n_frames, table=((0.0, 1.0),))
    notes = _pitch_class_profile(pitch, amp * _overtone_weights(t_idx, freq, amp), t_idx, n_frames,
                                 table=((0.0, 1.0),))
    low_chroma = _lowest_note_profile(pitch, freq, amp, t_idx, n_frames, max_hz=low_max_hz)
    low = freq < split_hz
    table = harmonic_table(harmonics)
    lo = _pitch_class_profile(pitch[low], amp[low] ** 2, t_idx[low], n_frames, table=table, squared=True)
    hi = _pitch_class_profile(pitch[~low], amp[~low] ** 2, t_idx[~low], n_frames, table=table, squared=True)
    hpcp = _jordi(_unit_max(_unit_max(lo) + _unit_max(hi)))
    level_db = level_db.astype(np.float32)
    for a in (chroma, hpcp, low_chroma, notes, active, level_db):
        a.flags.writeable = False  # memoised and shared
    return TonalFrames(chroma=chroma, hpcp=hpcp, low_chroma=low_chroma, note_chroma=notes, active=active,
                       level_db=level_db, hop_s=hop / sr, tuning=tuning)


def _overtone_weights(frame: np.ndarray, freq: np.ndarray, amp: np.ndarray, *, ratios=(3, 5, 6, 7),
                      tolerance: float = 0.015, min_ratio: float = 0.1, keep: float = 0.2) -> np.ndarray:
    """Per peak: ``keep`` when it lies (within ``tolerance`` of the ratio) on harmonic 3, 5, 6 or 7
    of a lower peak in the same frame that is at least ``min_ratio`` as strong, else 1.  Peaks
    come sorted by frame, then frequency (as ``np.nonzero`` gives them).

    Every lower peak of the frame counts: a chord's partials put many peaks between a low root
    and its 5th harmonic (two octaves and a major third up), and looking only 16 peaks back
    (until stop 32) often missed the root, so its major third stayed in the note chroma and
    minor chords read major.  Each peak's possible fundamentals are found by binary search in
    one sort key (frame, then log frequency), so the cost does not grow with the peaks between.
    """
    w = np.ones(freq.size)
    if freq.size < 2:
        return w
    octave = np.log2(freq)
    low = float(octave.min())
    width = float(octave.max()) - low + 1.0  # each frame's peaks keep to their own band of the key
    key = frame * width + (octave - low)
    for n in ratios:
        lo = np.maximum(octave - np.log2(n * (1 + tolerance)) - low, 0.0)
        hi = octave - np.log2(n * (1 - tolerance)) - low
        j = np.searchsorted(key, frame * width + lo, side="left")
        stop = np.where(hi < 0, j, np.searchsorted(key, frame * width + hi, side="right"))
        hit = np.zeros(freq.size, bool)
        live = np.flatnonzero(j < stop)
        while live.size:  # the peaks within the tolerance, usually none or one
            hit[live] |= amp[j[live]] >= min_ratio * amp[live]
            j[live] += 1
            live = live[j[live] < stop[live]]
        w[hit] = keep
    return w


def _lowest_note_profile(pitch, freq, amp, frame, n_frames, *, max_hz: float, floor: float = 0.1) -> np.ndarray:
    """``[12, n_frames]``: per frame, the amplitude of its lowest peak below ``max_hz`` that is at
    least ``floor`` times the strongest peak there, in that peak's pitch class (cosine weighted).
    The bass note itself, not the harmonics above it (a note's third harmonic is its fifth)."""
    low = freq < max_hz
    if not low.any():
        return np.zeros((12, n_frames))
    p, f, a, t = pitch[low], freq[low], amp[low], frame[low]
    top = np.zeros(n_frames)
    np.maximum.at(top, t, a)
    keep = a >= floor * top[t]
    p, f, a, t = p[keep], f[keep], a[keep], t[keep]
    order = np.lexsort((f, t))  # by frame, then frequency
    p, a, t = p[order], a[order], t[order]
    first = np.concatenate([[True], t[1:] != t[:-1]])
    return _pitch_class_profile(p[first], a[first], t[first], n_frames, table=((0.0, 1.0),))


def harmonic_mask(mag: np.ndarray, time_frames: int, bins: int) -> np.ndarray:
    """``mag`` ``[frames, bins]`` times a soft mask of its harmonic part (Fitzgerald's
    median-filtering separation, DAFx 2010): a bin is harmonic as far as the median over
    ``time_frames`` frames (a held note is steady in time) outweighs the median over ``bins``
    bins (a drum hit is broad in frequency), mask H² / (H² + P²).  Drum hits add peaks at every
    pitch class to the mix's chroma.  The soft mask of ``librosa.decompose.hpss(mag.T,
    kernel_size=(time_frames, bins), mask=True)`` (the same values away from the edges, which
    repeat the nearest frame here), not called because importing librosa loads numba (see
    onset_detect)."""
    from scipy.ndimage import median_filter

    h = median_filter(mag, size=(time_frames, 1), mode="nearest")
    p = median_filter(mag, size=(1, bins), mode="nearest")
    h2 = h * h
    return (mag * (h2 / np.maximum(h2 + p * p, 1e-30))).astype(np.float32)


def harmonic_table(harmonics: int) -> tuple[tuple[float, float], ...]:
    """Essentia's HPCP harmonic table: (semitones above the fundamental mod 12, strength).

    Harmonic ``h`` (1 .. harmonics+1) sits 12·log2(h) semitones up; its strength is
    1 / max(1, log2(h)/2), summed over harmonics that fold onto the same pitch class.
    """
    peaks: list[list[float]] = []
    for i in range(harmonics + 1):
        semitone = 12.0 * math.log2(i + 1.0)
        strength = 1.0 / max(1.0, semitone / 12.0 * 0.5)
        while semitone >= 12.0 - 1e-5:
            semitone -= 12.0
        for p in peaks:
            if abs(p[0] - semitone) < 1e-5:
                p[1] += strength
                break
        else:
            peaks.append([semitone, strength])
    return tuple((s, w) for s, w in peaks)


def hpcp_from_peaks(freqs: np.ndarray, mags: np.ndarray, *, reference_hz: float = C4_HZ, harmonics: int = 8,
                    min_hz: float = 40.0, max_hz: float = 5000.0, split_hz: float = 500.0) -> np.ndarray:
    """One frame's HPCP from its spectral peaks, as Essentia's ``HPCP`` with the seed's settings
    (size 12, cosine weight, window 1 semitone, bandPreset, unitMax, nonLinear); bin 0 is
    ``reference_hz``'s pitch class."""
    freqs = np.asarray(freqs, dtype=np.float64)
    mags = np.asarray(mags, dtype=np.float64)
    keep = (freqs >= min_hz) & (freqs <= max_hz)
    freqs, mags = freqs[keep], mags[keep]
    pitch = 12.0 * np.log2(freqs / reference_hz)
    table = harmonic_table(harmonics)
    zeros = np.zeros(freqs.size, dtype=np.int64)
    low = freqs < split_hz
    lo = _pitch_class_profile(pitch[low], mags[low] ** 2, zeros[low], 1, table=table, squared=True)
    hi = _pitch_class_profile(pitch[~low], mags[~low] ** 2, zeros[~low], 1, table=table, squared=True)
    return _jordi(_unit_max(_unit_max(lo) + _unit_max(hi)))[:, 0]


def _pitch_class_profile(pitch, weight, frame, n_frames, *, table, squared=False) -> np.ndarray:
    """Sum ``weight`` into the nearest pitch class of ``pitch - semitone`` for each
    (semitone, strength) of ``table``, with cosine weighting over a 1-semitone window.
    Returns ``[12, n_frames]``."""
    out = np.zeros(12 * n_frames, dtype=np.float64)
    for semitone, strength in table:
        p = pitch - semitone
        nearest = np.round(p)
        w = np.cos(np.pi * (p - nearest)) * weight * (strength**2 if squared else strength)
        idx = frame * 12 + np.mod(nearest.astype(np.int64), 12)
        out += np.bincount(idx, weights=w, minlength=12 * n_frames)
    return out.reshape(n_frames, 12).T.copy()


def _unit_max(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=0, keepdims=True)
    return np.divide(x, top, out=np.zeros_like(x), where=top > 0)


def _jordi(x: np.ndarray) -> np.ndarray:
    """Essentia's HPCP non-linear post-processing."""
    y = np.sin(x * np.pi * 0.5) ** 2
    return np.where(y < 0.6, y * (y / 0.6) ** 2, y)


def harmonic_change(chroma: np.ndarray, active: np.ndarray) -> tuple[float, float] | None:
    """(movement, variance) of chroma frames ``[12, frames]``; None with fewer than two
    consecutive active frames.

    Frames are L1-normalised.  movement = mean L2 distance between consecutive active
    frames / sqrt(2); two L1-normalised non-negative vectors are at most sqrt(2) apart,
    so movement <= 1.  variance = mean over bins of each bin's variance over the active
    frames / 0.1; since sum_i var_i <= 1 - 1/12 it is at most 11/14.4 = 0.76.
    """
    active = np.asarray(active, dtype=bool)
    totals = chroma.sum(axis=0)
    active = active & (totals > 0)
    pairs = active[1:] & active[:-1]
    if not pairs.any():
        return None
    c = np.divide(chroma, totals, out=np.zeros_like(chroma), where=totals > 0)
    step = np.linalg.norm(np.diff(c, axis=1), axis=0)[pairs]
    movement = float(step.mean() / math.sqrt(2.0))
    variance = float(c[:, active].var(axis=1).mean() / _VARIANCE_SCALE)
    return movement, variance


def tonal_interval_vector(hpcp: np.ndarray) -> np.ndarray:
    """The seed's TIV: DFT coefficients 1..6 of the sum-normalised profile, weighted by
    Bernardes et al.'s (3, 8, 11.5, 15, 14.5, 7.5), interleaved [Re1, Im1, ..., Re6, Im6]
    and L2-normalised (a flat profile gives zeros)."""
    c = np.asarray(hpcp, dtype=np.float64)
    c = c / c.sum()
    coef = np.fft.fft(c)[1:7] * _TIV_WEIGHTS
    tiv = np.empty(12)
    tiv[0::2], tiv[1::2] = coef.real, coef.imag
    norm = np.linalg.norm(tiv)
    return tiv / norm if norm > 1e-12 else np.zeros(12)


def _profile_matrix(profile: str) -> np.ndarray:
    """``[2, 12, 12]``: mode × tonic × pitch class, each row centred and unit-norm."""
    out = np.empty((2, 12, 12))
    for m, mode in enumerate(MODES):
        base = np.asarray(PROFILES[profile][mode], dtype=np.float64)
        for t in range(12):
            row = np.roll(base, t)
            row = row - row.mean()
            out[m, t] = row / np.linalg.norm(row)
    return out


def centred_unit(x: np.ndarray) -> np.ndarray:
    """``x`` less its mean, scaled to unit norm (zeros when it is flat)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    n = np.linalg.norm(x)
    return x / n if n > 0 else np.zeros_like(x)


def _correlations(pcp: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Every template's Pearson correlation with ``pcp`` (the templates centred and unit-norm)."""
    return templates @ centred_unit(pcp)


def _tonic_triads() -> np.ndarray:
    out = np.zeros((2, 12, 12))
    for mode, third in ((0, 4), (1, 3)):
        for tonic in range(12):
            t = np.zeros(12)
            t[[tonic, (tonic + third) % 12, (tonic + 7) % 12]] = 1.0
            out[mode, tonic] = centred_unit(t)
    return out


TONIC_TRIADS = _tonic_triads()  # [2 modes, 12 tonics, 12 pitch classes], centred and unit-norm


KEY_SOFTMAX_BETA = 12.0  # makes the mean confidence match the accuracy on the development corpora


def key_scores(pcp: np.ndarray, *, opening: np.ndarray | None = None, profile: str = "albrecht",
               opening_weight: float = 0.5, minor_bias: float = 0.0, opening_bass: np.ndarray | None = None,
               opening_bass_weight: float = 0.0, phrase: np.ndarray | None = None,
               phrase_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(total, correlation), each ``[2 modes, 12 tonics]``: every key's Pearson correlation of
    ``pcp`` with its rotated profile, and that plus ``opening_weight`` × the fit of its tonic
    triad to ``opening`` (the profile of the first seconds: a piece usually opens on its tonic,
    which tells a key from its relative, its dominant and its subdominant, whose scales it shares
    all but one note with), plus ``opening_bass_weight`` × the share of its tonic in
    ``opening_bass`` (the bass of the first seconds, centred and unit-norm: an opening Fm7 holds
    the A♭ major triad, but its bass is F), plus ``phrase_weight`` × the square of ``phrase``
    (``[2, 12]``: the share of phrase starts on each key's tonic triad; squared, so a chord the
    phrases keep returning to counts and a scatter of chords hardly does), plus ``minor_bias``
    for every minor key (the profiles lean major: a minor piece read as its relative major is
    the commonest error)."""
    scores = _correlations(pcp, _profile_matrix(profile))
    total = scores.copy()
    if opening is not None and np.ptp(opening) > 0 and opening_weight > 0:
        total = total + opening_weight * _correlations(opening, TONIC_TRIADS)
    if opening_bass is not None and np.ptp(opening_bass) > 0 and opening_bass_weight > 0:
        total = total + opening_bass_weight * centred_unit(opening_bass)[None, :]
    if phrase is not None and phrase_weight > 0:
        total = total + phrase_weight * np.asarray(phrase, dtype=np.float64) ** 2
    total[1] += minor_bias
    return total, scores


def key_confidence(total: np.ndarray, beta: float = KEY_SOFTMAX_BETA) -> float:
    """The chosen key's probability in a softmax over the 24 keys' total scores."""
    z = beta * (np.asarray(total, dtype=np.float64).ravel())
    z -= z.max()
    p = np.exp(z)
    return float(p.max() / p.sum())
