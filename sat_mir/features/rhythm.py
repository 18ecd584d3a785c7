"""Rhythm of the mix (beats, downbeats, meter, tempo, onsets, syncopation, complexity) and of the
drums, bass and other stems (onset density, syncopation, complexity against the mix's beats).

Every signal's onset envelope and the mix's beat grid are computed once per track
and shared through the analysis context.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sat_mir.audio.context import SignalContext, TrackContext
from sat_mir.audio.filterbanks import fft_frequencies
from sat_mir.audio.headroom import sample_peak
from sat_mir.errors import ExtractorError
from sat_mir.features.attack import attack_shift
from sat_mir.features.beat_grid import TRACKERS, GridConfig, UsesBeatGrid, grid_settings, resolve_tracker
from sat_mir.features.metrical import (
    Metrical,
    RhythmInputs,
    analyse,
    band_flux,
    from_beats_and_downbeats,
    noisy_highs,
    steady_beats,
    tempo_from_beats,
)
from sat_mir.features.onset_detect import onset_detect
from sat_mir.features.registry import ExtractorResult, Needs, OutputSpec, register
from sat_mir.features.tonal import HARMONIC_STEMS, harmonic_frames

__all__ = ["BEATS_FILE", "DOWNBEATS_FILE", "ONSETS_FILE", "TRACKERS", "GridConfig", "Rhythm", "StemRhythm",
           "UsesBeatGrid",
           "grid_settings",
           "metrical_of", "onset_statistics", "resolve_tracker", "rhythm_inputs"]

BEATS_FILE = "beats.txt"
DOWNBEATS_FILE = "downbeats.txt"
ONSETS_FILE = "onsets.txt"
SR, HOP = 22050, 512  # the shared onset-envelope front end
ON_BEAT_S = 0.07  # an onset within 70 ms of a beat is on the beat (the seed's tolerance)
RHYTHM_STEMS = ("drums", "bass", "other")


# The shared onset envelope comes from a centred STFT, and librosa's onset_strength shifts it
# n_fft // (2 * hop) = 2 more frames: onsets read 14 ms late on clicks and beats about 25 ms late
# on the demo songs' drums.  Reading frame k as time (k - 1) * hop / sr lands clicks 9 ms early and
# the demo downbeats within -2..+20 ms of the truth (crops are cut there, so late cuts clip attacks).
LATENCY_FRAMES = 1
# ... but that calibration was on clicks and synthesised drums.  On General-MIDI renders (sampled
# instruments, as on records) the DSP tracker's beats and downbeats still read 13 to 20 ms after
# the notes' starts on every style with drums (the held-out sel and cal corpora: median 16 ms; 25 ms
# with no drums, 50 ms on strings), and crops cut there clipped each downbeat's attack.  The times
# it reports (beats, downbeats, onsets) are moved this much earlier (the demo's synthesised
# downbeats come out 15 to 3 ms early, on their local line: metrical.steady_beats); the analysis
# itself reads its envelopes as before (moving the frames it reads moved its tempo and meter
# choices, fitted at this latency: measured worse).  The DSP tracker's beats then move onto the
# track's own attacks (attack.attack_shift): a swelling melody's beats still came out late.
ATTACK_LEAD_S = 0.016


def _times(frames: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(frames, dtype=np.float64) - LATENCY_FRAMES - ATTACK_LEAD_S * SR / HOP, 0.0) * HOP / SR


def onsets_of(sig: SignalContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(onset envelope, onset times in s, envelope strength at each onset) of a signal, memoised."""

    def compute():
        env = sig.onset_envelope(sr=SR, hop=HOP)
        frames = onset_detect(env, sr=SR, hop=HOP)
        return env, _times(frames), env[frames].astype(np.float64)

    return sig.memo(("onsets", SR, HOP), compute)


SILENT_STEM_PEAK = 10.0 ** (-60.0 / 20.0)  # a stem quieter than -60 dBFS adds no evidence
# the flatness of the highs below which a mix has no drums: 0.06 under the lowest of 323 tracks
# with drums (the cal, sel and human-dev corpora); 102 of their 157 tracks without drums measure
# less (42 of the 56 dance tunes played by one instrument)
NO_DRUMS_FLATNESS = 0.33
# ... and at or above which it surely has them (the kick may then move the grid: metrical.kick_shift).
# It was 0.39, the lowest of those 323 tracks with drums, until a harpsichord's plucks (0.42-0.46:
# Beethoven and Clara Schumann in the `classical` pieces) struck as noise and its bass notes a
# third of a beat on moved two grids onto the off-beats (beat F 0.99 -> 0.00 on the mix alone).
# The 216 tracks with drums of `sel` and `human-dev` measure 0.467 and up, every shuffle whose grid
# the kick mends 0.51 and up; the tracks without drums reach 0.52, so no value is sure.
DRUMS_FLATNESS = 0.46


def _sounding(ctx: TrackContext, name: str) -> bool:
    if name not in ctx.stem_names:
        return False
    sig = ctx.stem(name)
    # memoised: a long track's stem let go after this is not decoded again to ask it twice
    peak = sig.memo(("peak_abs",), lambda: sample_peak(sig.samples))
    return peak >= SILENT_STEM_PEAK


def _bands(sig: SignalContext) -> dict[str, np.ndarray]:
    return sig.memo(("band_flux", SR, HOP), lambda: band_flux(sig.stft_magnitude(sr=SR, n_fft=2048, hop=HOP),
                                                              fft_frequencies(SR, 2048)))


def prepare_rhythm_inputs(ctx: TrackContext, stem: str) -> None:
    """Memoise what :func:`rhythm_inputs` reads of ``stem`` (see :meth:`Extractor.prepare`)."""
    if stem in ("drums", "bass") and _sounding(ctx, stem):
        if stem == "drums":
            _bands(ctx.stem(stem))
        else:
            ctx.stem(stem).onset_envelope(sr=SR, hop=HOP)
    harmonic = [s for s in HARMONIC_STEMS if s in ctx.stem_names]
    if harmonic and stem == harmonic[-1]:  # the others were just prepared: still held
        harmonic_frames(ctx, drums=True)


def _highs_flatness(sig: SignalContext) -> float:
    """How noise-like the mix's highs strike (:func:`sat_mir.features.metrical.noisy_highs`):
    below :data:`NO_DRUMS_FLATNESS` it has no drums, from :data:`DRUMS_FLATNESS` it surely has."""
    return sig.memo(("highs_flatness", SR, HOP), lambda: noisy_highs(
        sig.stft_magnitude(sr=SR, n_fft=2048, hop=HOP), fft_frequencies(SR, 2048)))


def rhythm_inputs(ctx: TrackContext, *, use_stems: bool = True) -> RhythmInputs:
    """What :func:`sat_mir.features.metrical.analyse` reads, from the context's shared front ends:
    the mix's onset envelope and band flux, the drums stem's band flux and the bass stem's
    onset envelope when they sound, and the chroma of the harmonic content (tonal frames).
    ``no_drums``: the stems have no drums stem that sounds, or the mix's highs are not
    noise-like; ``drums``: the mix's highs are noise-like beyond doubt (:func:`_highs_flatness`)."""
    mix = ctx.mix
    env = mix.onset_envelope(sr=SR, hop=HOP)
    drums = _sounding(ctx, "drums") if use_stems else False
    bass = _sounding(ctx, "bass") if use_stems else False
    # the mix's drums kept where it is the harmonic content (see harmonic_frames)
    harmonic = harmonic_frames(ctx if use_stems else _MixOnly(ctx), drums=True)  # type: ignore[arg-type]
    low = harmonic.stems["bass"].chroma if bass and "bass" in harmonic.stems else harmonic.frames.low_chroma
    n = env.size
    flatness = _highs_flatness(mix)
    silent_drums_stem = use_stems and bool(ctx.stem_names) and not drums
    return RhythmInputs(
        env=env, bands=_bands(mix), fps=SR / HOP, latency=float(LATENCY_FRAMES),
        chroma=harmonic.frames.chroma, bass_chroma=low, chroma_hop_s=harmonic.frames.hop_s,
        drum_bands={k: _fit(v, n) for k, v in _bands(ctx.stem("drums")).items()} if drums else None,
        bass_env=_fit(ctx.stem("bass").onset_envelope(sr=SR, hop=HOP), n) if bass else None,
        # a separation's drums stem may hold a little bleed from a melody: the mix's highs decide too
        no_drums=silent_drums_stem or flatness < NO_DRUMS_FLATNESS,
        drums=flatness >= DRUMS_FLATNESS and not silent_drums_stem,
    )


class _MixOnly:
    """A view of a track context with its stems hidden (the mix-only analysis)."""

    def __init__(self, ctx: TrackContext):
        self.mix = ctx.mix
        self.stem_names: list[str] = []


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """A stem's series cut or zero-padded to the mix's length."""
    return x[:n] if x.size >= n else np.pad(x, (0, n - x.size))


def metrical_of(ctx: TrackContext, *, tightness: float = 100.0, use_stems: bool = True, tracker: str = "dsp",
                models_dir: str | None = None, device: str = "auto") -> Metrical:
    """The track's beats, bars and their confidences, memoised: every extractor that needs the
    beat grid (rhythm, stem_rhythm, chords, drums_midi) gets the same one.  ``tracker`` is
    resolved by :func:`resolve_tracker`."""
    engine = resolve_tracker(tracker, None if models_dir is None else str(models_dir))
    stems = tuple(s for s in ("drums", "bass", "other") if use_stems and s in ctx.stem_names)

    def compute() -> Metrical:
        inp = rhythm_inputs(ctx, use_stems=use_stems)
        if engine == "dsp":
            grid = analyse(inp, tightness=tightness)
            beats = steady_beats(grid.beats) - ATTACK_LEAD_S
            # then onto this track's own attacks (a swelling melody's beats came out late)
            shift = attack_shift(ctx.mix.mono_at(SR), SR, np.maximum(beats, 0.0), no_drums=inp.no_drums)
            beats = np.maximum(beats + (shift or 0.0), 0.0)
            downbeats = beats[np.searchsorted(grid.beats, grid.downbeats)]  # the downbeats are beats
            return replace(grid, beats=beats, downbeats=downbeats)
        from sat_mir.models.beat_this import SAMPLE_RATE, load_tracker

        beats, downbeats, beat_p, downbeat_p = load_tracker(models_dir, device)(ctx.mix.mono_at(SAMPLE_RATE))
        return from_beats_and_downbeats(inp, beats, downbeats, beat_p, downbeat_p)

    return ctx.mix.memo(("metrical", stems, tightness, engine), compute)


def onset_statistics(onsets: np.ndarray, strengths: np.ndarray, beats: np.ndarray) -> dict[str, float]:
    """Syncopation, on-beat ratio, complexity, evenness and inter-onset statistics.

    syncopation: share of onset *strength* more than 70 ms from every beat (the seed
    passed no strengths, so its value was just 1 − on_beat_ratio);
    rhythmic_complexity: mean of the IOI histogram entropy normalised by its maximum
    (the seed divided by 5, so its term never passed 0.78) and min(CV / 2, 1);
    rhythmic_evenness: 1 / (1 + CV of the inter-onset intervals).
    """
    out: dict[str, float] = {}
    if onsets.size and beats.size:
        dist = np.min(np.abs(onsets[:, None] - beats[None, :]), axis=1)
        on = dist <= ON_BEAT_S
        total = float(strengths.sum())
        out["on_beat_ratio"] = float(on.mean())
        out["syncopation"] = float(strengths[~on].sum() / total) if total > 0 else float(1.0 - on.mean())
    ioi = np.diff(np.sort(onsets))
    if ioi.size >= 2:
        mean, std = float(ioi.mean()), float(ioi.std())
        cv = std / mean if mean > 0 else 0.0
        bins = 50
        hist, _ = np.histogram(ioi, bins=bins)
        p = hist[hist > 0] / hist.sum()
        entropy = float(-(p * np.log(p)).sum() / np.log(bins))
        out.update(rhythmic_complexity=(entropy + min(cv / 2.0, 1.0)) / 2.0, rhythmic_evenness=1.0 / (1.0 + cv),
                   ioi_mean=mean, ioi_std=std)
    return out


@register
class Rhythm(UsesBeatGrid):
    name = "rhythm"
    needs = Needs(min_seconds=5.0, min_sound_s=5.0, rhythmic=True)
    # 2: onset envelope no longer shifted 2 frames late; 3: metrical analysis (beat level, meter and
    # downbeats chosen by a fitted model over the mix and the stems), confidences, time signature;
    # 4: the grid reaches back to the first sound, bar models per input (stems / mix alone), the
    # kick band in the beat level; 5: a half-beat slip of the grid mended; 6: bar models refitted on
    # the corrected human-composed truth, the durational accent moves a drumless separated grid;
    # 7: bar_pair_phase, beat candidates at 3/4 and 4/3 of the tempo estimate; 8: the kick moves a
    # grid locked on a shuffle's off-beats; compound read off the mix alone (the drums stem's votes
    # called swung pop 12/8), and a drumless jig in bars of 4 pulses is 12/8 (was 4/4); 9: the
    # beat level and the bars from the average of two fits (metrical.choose); 10: beats, downbeats
    # and onsets reported ATTACK_LEAD_S earlier, on the notes' starts; 11: the reported beats and
    # downbeats on their local line where it keeps time (metrical.steady_beats); 12: downbeat_confidence;
    # 13: the beats and downbeats moved onto the track's own attacks (attack.attack_shift); 14: a mix
    # whose highs measure 0.39-0.46 is no longer sure to have drums (rhythm.DRUMS_FLATNESS); 15: the
    # kick moves a grid only onto onsets, and with a drums stem where its kick is 4 times stronger;
    # 16: where the tempo steps, the tracker's period follows it (metrical.local_tempo); 17: bar models
    # refitted with the kick's place in the bar (metrical.METER_FEATURES); 18: bar models refitted
    # with drum-machine kicks (every kick of a bar alike) in their corpora
    version = "18"
    signals = ("mix", "stems")
    outputs = (
        OutputSpec("bpm", "BPM", "tempo of the beat grid (the felt pulse: the dotted quarter in 6/8 and 12/8)",
                   (30.0, 300.0), confidence="tempo_confidence"),
        OutputSpec("tempo_confidence", "probability",
                   "how sure the beat level is: the model's probability for the tempo chosen (within 4 %) "
                   "against its half, double, third, triple, 2/3, 3/2, 3/4 and 4/3", (0.0, 1.0), holds="track"),
        OutputSpec("bpm_is_defined", "bool", "1 when the beat grid is long and regular enough to trust bpm",
                   (0, 1), kind="int"),
        OutputSpec("beat_count", "beats", f"beats in the grid ({BEATS_FILE})", (0, 100000), kind="int"),
        OutputSpec("beat_regularity", "score", "1 − coefficient of variation of the inter-beat intervals "
                   "(1 = perfectly even; the seed stored a std in seconds under this name)", (0.0, 1.0)),
        OutputSpec("beats_per_bar", "beats", "meter: the time signature's numerator (6 for 6/8, 12 for 12/8, "
                   "where a bar holds 2 or 4 of the grid's beats)", (2, 12), kind="int", confidence="meter_confidence",
                   holds="track"),
        OutputSpec("time_signature", "meter", "e.g. '4/4', '3/4', '5/4', '6/8', '12/8' (compound meters over 8, "
                   "the others over 4: audio cannot tell 3/4 from 3/8)", kind="str", confidence="meter_confidence",
                   holds="track"),
        OutputSpec("meter_confidence", "probability",
                   "how sure the meter is: the model's probability for the pulses per bar chosen (2 to 7), "
                   "summed over where the bar starts", (0.0, 1.0), holds="track"),
        OutputSpec("beat_tracker", "engine", "what found the beats and bars: 'dsp' (sat-mir's metrical analysis) "
                   "or 'beat_this' (the Beat This! model, when its weights are in the models folder)", kind="str",
                   holds="track"),
        OutputSpec("downbeat_count", "bars", f"downbeats found ({DOWNBEATS_FILE})", (0, 100000), kind="int"),
        OutputSpec("downbeat_confidence", "probability",
                   "how sure the bar lines are where they are, the meter given: the model's probability for "
                   "where the bar starts, as a share of the meter's (Beat This!: its mean downbeat probability "
                   "at its downbeats); crops are cut on the downbeats only from crops.min_downbeat_confidence",
                   (0.0, 1.0), holds="track"),
        OutputSpec("bar_pair_phase", "index", f"bars of 2 beats (2/4, 6/8): the downbeat (0 or 1 in {DOWNBEATS_FILE}) "
                   "that starts a pair of bars, where the kick comes in; div4 crops count pairs "
                   "from it", (0, 1), kind="int"),
        OutputSpec("onset_count", "onsets", f"onsets detected in the mix ({ONSETS_FILE})", (0, 1_000_000),
                   kind="int"),
        OutputSpec("onset_density", "Hz", "onsets per second", (0.0, 50.0)),
        OutputSpec("onset_strength_mean", "flux", "mean onset-envelope strength at the onsets", (0.0, 100.0)),
        OutputSpec("onset_strength_std", "flux", "std of the onset-envelope strength at the onsets", (0.0, 100.0)),
        OutputSpec("syncopation", "ratio", "share of onset strength more than 70 ms from any beat", (0.0, 1.0)),
        OutputSpec("on_beat_ratio", "ratio", "share of onsets within 70 ms of a beat", (0.0, 1.0)),
        OutputSpec("rhythmic_complexity", "score", "mean of normalised IOI entropy and min(IOI CV / 2, 1)",
                   (0.0, 1.0)),
        OutputSpec("rhythmic_evenness", "score", "1 / (1 + coefficient of variation of inter-onset intervals)",
                   (0.0, 1.0)),
        OutputSpec("ioi_mean", "s", "mean inter-onset interval", (0.0, 60.0)),
        OutputSpec("ioi_std", "s", "standard deviation of the inter-onset intervals", (0.0, 60.0)),
    )

    @dataclass(frozen=True)
    class Config(GridConfig):
        min_beats: int = 8  # fewer beats: no tempo at all (an error, not a number)
        defined_min_beats: int = 15  # the seed's bpm_is_defined conditions
        defined_max_cv: float = 0.1

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        c = self.config
        env, onsets, strengths = onsets_of(ctx.mix)
        if not np.any(env > 0):
            raise ExtractorError("no onsets: the mix has no rhythmic content to track")
        grid = metrical_of(ctx, **grid_settings(c))
        beats = grid.beats
        if beats.size < c.min_beats:
            raise ExtractorError(f"only {beats.size} beats found (need at least {c.min_beats})")
        ibi = np.diff(beats)
        cv = float(ibi.std() / ibi.mean())
        downbeats = grid.downbeats
        duration = ctx.mix.duration_s
        values = {
            "bpm": round(tempo_from_beats(beats), 3),
            "tempo_confidence": round(grid.tempo_confidence, 4),
            "bpm_is_defined": int(beats.size >= c.defined_min_beats and cv <= c.defined_max_cv),
            "beat_count": int(beats.size),
            "beat_regularity": round(max(0.0, 1.0 - cv), 6),
            "beats_per_bar": int(grid.beats_per_bar),
            "time_signature": f"{grid.beats_per_bar}/{8 if grid.compound else 4}",
            "meter_confidence": round(grid.meter_confidence, 4),
            "beat_tracker": grid.engine,
            "downbeat_count": int(downbeats.size),
            "downbeat_confidence": round(grid.downbeat_confidence, 4),
            "onset_count": int(onsets.size),
            "onset_density": round(onsets.size / duration, 6),
        }
        if grid.pair_phase is not None:
            values["bar_pair_phase"] = int(grid.pair_phase)
        if onsets.size:
            values["onset_strength_mean"] = round(float(strengths.mean()), 6)
            values["onset_strength_std"] = round(float(strengths.std()), 6)
        values.update({k: round(v, 6) for k, v in onset_statistics(onsets, strengths, beats).items()})
        result = ExtractorResult(values=values, artifacts={
            BEATS_FILE: "".join(f"{t:.6f}\n" for t in beats),
            DOWNBEATS_FILE: "".join(f"{t:.6f}\n" for t in downbeats),
            ONSETS_FILE: "".join(f"{t:.6f}\n" for t in onsets),
        })
        if grid.pair_phase is None:
            result.absent["bar_pair_phase"] = (f"bars of {grid.pulses_per_bar} beats, not 2" if grid.pulses_per_bar != 2
                                               else "the kick comes in between two downbeats")
        for key in ("rhythmic_complexity", "rhythmic_evenness", "ioi_mean", "ioi_std"):
            if key not in values:
                result.absent[key] = "fewer than three onsets"
        return result


@register
class StemRhythm(UsesBeatGrid):
    name = "stem_rhythm"
    needs = Needs(min_seconds=5.0, min_sound_s=5.0, rhythmic=True)
    # 2: onset envelope no longer shifted 2 frames late; 3: the metrical analysis's beats; 4: its grid
    # reaches back to the first sound; 5: its half-beat slip mended; 6: the durational accent and the
    # refitted bar models; 7: beat candidates at 3/4 and 4/3 of the tempo estimate; 8: kick_shift;
    # 9: the metrical models' average of two fits; 10: onsets on the notes' starts (ATTACK_LEAD_S);
    # 11: the mix's beats on their local line (metrical.steady_beats); 12: on the track's own attacks;
    # 13: drums sure from a flatness of 0.46 (DRUMS_FLATNESS); 14: the kick moves a grid only onto
    # onsets, and with a drums stem where its kick is 4 times stronger (metrical.kick_shift);
    # 15: where the tempo steps, the tracker's period follows it (metrical.local_tempo); 16: bar models
    # refitted with the kick's place in the bar; 17: bar models refitted with drum-machine kicks
    version = "17"
    signals = ("mix", "stems")

    @dataclass(frozen=True)
    class Config(GridConfig):
        stems: tuple[str, ...] = RHYTHM_STEMS
        window_s: float = 4.0
        hop_s: float = 2.0

    outputs = (
        OutputSpec("onset_density_average_{stem}", "Hz", "mean onsets per second over 4 s windows (2 s hop)",
                   (0.0, 50.0)),
        OutputSpec("onset_density_variance_{stem}", "Hz²", "variance of the windowed onset density", (0.0, 2500.0)),
        OutputSpec("syncopation_{stem}", "ratio", "share of the stem's onset strength off the mix's beats",
                   (0.0, 1.0)),
        OutputSpec("rhythmic_complexity_{stem}", "score", "rhythmic complexity of the stem's onsets", (0.0, 1.0)),
        OutputSpec("rhythmic_evenness_{stem}", "score", "rhythmic evenness of the stem's onsets", (0.0, 1.0)),
    )

    warmup = Rhythm.warmup

    def prepare(self, ctx: TrackContext, stem: str) -> None:
        super().prepare(ctx, stem)
        if stem in self.config.stems:
            onsets_of(ctx.stem(stem))

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        c = self.config
        result = ExtractorResult()
        wanted = [s for s in c.stems if s in ctx.stem_names]
        for s in c.stems:
            if s not in ctx.stem_names:
                for spec in self.outputs:
                    result.absent[spec.key.format(stem=s)] = f"the track has no {s} stem"
        if not wanted:
            return result
        beats = metrical_of(ctx, **grid_settings(c)).beats
        for s in wanted:
            sig = ctx.stem(s)
            env, onsets, strengths = onsets_of(sig)
            if not np.any(env > 0) or onsets.size == 0:
                for spec in self.outputs:
                    result.absent[spec.key.format(stem=s)] = f"the {s} stem has no onsets (silent?)"
                continue
            dens = _windowed_density(onsets, sig.duration_s, c.window_s, c.hop_s)
            result.values[f"onset_density_average_{s}"] = round(float(dens.mean()), 6)
            result.values[f"onset_density_variance_{s}"] = round(float(dens.var()), 6)
            stats = onset_statistics(onsets, strengths, beats)
            for key in ("syncopation", "rhythmic_complexity", "rhythmic_evenness"):
                if key in stats:
                    result.values[f"{key}_{s}"] = round(stats[key], 6)
                else:
                    result.absent[f"{key}_{s}"] = f"too few onsets in the {s} stem"
        return result


def _windowed_density(onsets: np.ndarray, duration: float, window: float, hop: float) -> np.ndarray:
    """Onsets per second in windows of ``window`` s every ``hop`` s (the last one may be shorter)."""
    starts = np.arange(0.0, max(duration - 1e-9, 1e-9), hop)
    ends = np.minimum(starts + window, duration)
    counts = np.searchsorted(onsets, ends) - np.searchsorted(onsets, starts)
    return counts / np.maximum(ends - starts, 1e-9)
