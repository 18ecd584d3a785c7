"""Tonal extractor against synthesised ground truth: single notes, all 24 keys, the demo
songs, chord changes, silence, and Essentia's HPCP."""

import os
from pathlib import Path

import numpy as np
import pytest

from sat_mir.audio import Audio, TrackContext
from sat_mir.catalog import scan_library
from sat_mir.demo import SongSpec, render_song
from sat_mir.errors import ConfigError, ExtractorError
from sat_mir.features.tonal import (
    C4_HZ,
    PITCH_CLASSES,
    Tonal,
    band_stft,
    harmonic_table,
    hpcp_from_peaks,
    tonal_frames,
)

SR = 22050


def context(signals: dict[str, np.ndarray], sr: int = SR) -> TrackContext:
    """A TrackContext over in-memory signals (mono arrays become one channel)."""
    arrays = {n: np.atleast_2d(np.asarray(x, dtype=np.float32)) for n, x in signals.items()}
    return TrackContext({n: Path(n) for n in arrays}, loader=lambda p: Audio(arrays[str(p)], sr))


def tone(midi: float, dur_s: float, *, sr: int = SR, partials: int = 6) -> np.ndarray:
    """A harmonic tone with 1/k partials below 0.45 sr, peak about 0.3."""
    t = np.arange(int(dur_s * sr)) / sr
    f0 = 440.0 * 2.0 ** ((midi - 69) / 12)
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, partials + 1) if k * f0 < 0.45 * sr)
    return 0.3 * x / np.max(np.abs(x))


def chord_track(chords: list[tuple[int, ...]], chord_s: float) -> dict[str, np.ndarray]:
    """``other``: the chords (MIDI notes) one after another; ``bass``: their roots two octaves down."""
    other = np.concatenate([sum(tone(n, chord_s) for n in ch) / len(ch) for ch in chords])
    bass = np.concatenate([tone(ch[0] - 24, chord_s) for ch in chords])
    return {"mix": other + bass, "bass": bass, "other": other}


def values_of(result, prefix: str) -> np.ndarray:
    return np.array([result.values[f"{prefix}_{i}"] for i in range(12)])


# -- pitch classes -------------------------------------------------------------------------------

@pytest.mark.parametrize("pc", range(12), ids=PITCH_CLASSES)
def test_a_single_note_peaks_at_its_pitch_class_in_chroma_and_hpcp(pc):
    for octave_midi in (36, 48, 72):  # C2.., C3.., C5..: fundamental 65 Hz to 988 Hz
        result = Tonal().compute(context({"mix": tone(octave_midi + pc, 1.0)}))
        assert np.argmax(values_of(result, "chroma")) == pc, octave_midi + pc
        assert np.argmax(values_of(result, "hpcp")) == pc, octave_midi + pc


def test_hpcp_is_essentias_hpcp_with_the_seed_settings():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    essentia = pytest.importorskip("essentia")
    essentia.log.infoActive = False
    import essentia.standard as es

    algo = es.HPCP(size=12, harmonics=8, minFrequency=40, maxFrequency=5000, weightType="cosine",
                   nonLinear=True, normalized="unitMax", referenceFrequency=261.63)
    rng = np.random.default_rng(0)
    for _ in range(5):
        freqs = np.sort(rng.uniform(30.0, 6000.0, 60)).astype(np.float32)
        mags = rng.uniform(0.0, 1.0, 60).astype(np.float32)
        np.testing.assert_allclose(hpcp_from_peaks(freqs, mags, reference_hz=261.63), algo(freqs, mags), atol=1e-4)
    assert harmonic_table(8)[0] == (0.0, pytest.approx(1 + 1 + 1 + 1 / 1.5))  # harmonics 1, 2, 4, 8


def test_tuning_is_estimated_from_the_peaks():
    x = sum(tone(n + 0.3, 2.0) for n in (60, 64, 67))  # C major, 30 cents sharp
    spec = band_stft(x[None], SR, n_fft=4096, hop=2048, max_hz=5000.0)
    frames = tonal_frames(spec, SR, n_fft=4096, hop=2048)
    assert frames.tuning == pytest.approx(0.3, abs=0.03)
    assert C4_HZ == pytest.approx(261.6256, abs=1e-4)


def test_anti_phase_stereo_content_is_not_cancelled():
    # The seed averaged the channels first: this chord would have been silence.
    x = sum(tone(n, 2.0) for n in (62, 66, 69))  # D major
    result = Tonal().compute(context({"mix": np.stack([x, -x])}))
    assert np.argmax(values_of(result, "chroma")) in (2, 6, 9)


def test_the_harmonic_mask_keeps_a_held_partial_and_drops_a_drum_hit():
    from sat_mir.features.tonal import harmonic_mask

    mag = np.full((40, 200), 0.01, dtype=np.float32)
    mag[:, 50] = 1.0  # a partial held through every frame
    mag[[10, 20], :] += 0.5  # two broadband hits
    out = harmonic_mask(mag, 9, 17)
    assert out[5, 50] == pytest.approx(1.0, abs=1e-3)
    assert out[10, 50] > 0.9 * 1.0  # the partial under the hit stays
    assert out[10, 120] < 0.01 * mag[10, 120]  # the hit's other bins go
    assert out[5, 120] == pytest.approx(0.5 * mag[5, 120], rel=1e-3)  # flat floor: H = P, half each


def test_the_mixs_drum_hits_are_left_out_of_its_chroma():
    rng = np.random.default_rng(0)
    chord = sum(tone(n, 6.0) for n in (57, 60, 64)) / 3  # A minor, held
    drums = np.zeros_like(chord)
    n = int(0.08 * SR)
    for k in range(12):  # a noise hit every half second, louder than the chord
        drums[int(k * 0.5 * SR): int(k * 0.5 * SR) + n] += rng.normal(0, 0.5, n) * np.exp(-np.arange(n) / (0.02 * SR))
    shares = {}
    for median_s in (0.84, 0.0):
        result = Tonal.from_mapping({"percussion_median_s": median_s}).compute(context({"mix": chord + drums}))
        chroma = values_of(result, "chroma")
        shares[median_s] = chroma[[9, 0, 4]].sum() / chroma.sum()
        assert result.values["key"] == "A minor"
    assert shares[0.84] > shares[0.0] + 0.05, shares  # measured 0.79 against 0.71
    with pytest.raises(ConfigError, match="percussion_median_s"):
        Tonal.from_mapping({"percussion_median_s": -1.0})


# -- keys ----------------------------------------------------------------------------------------

ALL_KEYS = [(tonic, mode) for mode in ("major", "minor") for tonic in range(12)]


@pytest.fixture(scope="module")
def key_results() -> dict[str, object]:
    """Every key rendered (4, 5 or 6 bars at 120 BPM), analysed with its bass and other stems."""
    out = {}
    for tonic, mode in ALL_KEYS:
        spec = SongSpec("k", bpm=120.0, beats_per_bar=4, tonic=tonic, mode=mode, bars=4 + tonic % 3,
                        seed=tonic + 12 * (mode == "minor"))
        stems, truth = render_song(spec, sr=SR)
        signals = {"mix": np.sum(list(stems.values()), axis=0), "bass": stems["bass"], "other": stems["other"]}
        out[truth.key] = Tonal().compute(context(signals))
    return out


def test_key_is_exact_on_at_least_90_percent_of_the_24_keys(key_results):
    wrong = {truth: r.values["key"] for truth, r in key_results.items() if r.values["key"] != truth}
    assert len(wrong) <= 2, wrong  # 22 of 24 = 91.7 %
    for r in key_results.values():
        assert f"{PITCH_CLASSES[r.values['key_tonic']]} {r.values['key_mode']}" == r.values["key"]


def test_a_minor_chord_whose_root_sounds_its_major_third_reads_minor_with_the_note_chroma():
    """A low A whose 5th harmonic (C#, two octaves and a major third up) is as strong as its
    fundamental, under C and E: the plain chroma holds both thirds and reads A major; the
    quarter of note chroma (peaks on a lower note's harmonics count 0.2) reads A minor."""
    t = np.arange(int(6 * SR)) / SR

    def note(midi: int, amps: list[float]) -> np.ndarray:
        f0 = 440.0 * 2.0 ** ((midi - 69) / 12)
        return sum(a * np.sin(2 * np.pi * (k + 1) * f0 * t) for k, a in enumerate(amps) if (k + 1) * f0 < SR / 2.5)

    mix = note(45, [1, .5, .4, .3, 1.0, .2]) + note(57, [.5, .3, .2]) + note(60, [.6, .2]) + note(64, [.6, .2])
    # the phrase starts' chords read the note chroma too: left out, so the key reads the frames alone
    keys = {w: Tonal.from_mapping({"key_model": "profile", "note_weight": w, "phrase_weight": 0.0})
            .compute(context({"mix": 0.2 * mix}))
            .values["key"] for w in (0.0, 0.25)}
    assert keys == {0.0: "A major", 0.25: "A minor"}
    assert Tonal.Config().note_weight == 0.25
    with pytest.raises(ConfigError, match="note_weight"):
        Tonal.from_mapping({"note_weight": 1.5})


SHARP_KEYS = ["C# major", "D# major", "F# major", "A# major", "G# minor", "D# minor"]


def test_sharp_keys_are_named_and_found(key_results):
    # The seed read Essentia's A-based key names against a C-based HPCP: every tonic came
    # out 3 semitones low, and the flat names (Bb, Eb, Ab) were not in its list, so these
    # keys read as A# -> "G", C -> "A", ... or collapsed to C.
    found = [key for key in SHARP_KEYS if key_results[key].values["key"] == key]
    assert len(found) >= 5, {k: key_results[k].values["key"] for k in SHARP_KEYS}
    for key in SHARP_KEYS:
        r = key_results[key]
        assert r.values["key"] == f"{PITCH_CLASSES[r.values['key_tonic']]} {r.values['key_mode']}"
        assert 0.5 < r.values["key_strength"] <= 1.0 and 0.0 < r.values["key_confidence"] <= 1.0


@pytest.fixture(scope="module")
def demo_results(demo_library):
    return {t.name: Tonal().compute(TrackContext(t.sources)) for t in scan_library(demo_library)}


def test_demo_songs_key_exact(demo_results, demo_truth):
    for title, result in demo_results.items():
        truth = demo_truth[title]
        assert result.values["key"] == truth["key"], title
        assert result.values["key_tonic"] == truth["tonic"], title
        assert result.values["key_mode"] == truth["mode"], title


def test_demo_values_are_finite_inside_their_ranges_and_complete(demo_results):
    ex = Tonal()
    expected = {s.key for s in ex.outputs if not s.per_stem}
    expected |= {f"harmonic_{k}_{s}" for k in ("movement", "variance") for s in ("bass", "other")}
    for title, result in demo_results.items():
        assert set(result.values) == expected, title
        assert result.absent == {}
        assert ex.check(result) == {}, title  # declared keys, finite, no range flags
        assert sum(values_of(result, "chroma")) == pytest.approx(1.0, abs=1e-5)
        assert max(values_of(result, "hpcp")) == 1.0
        assert np.linalg.norm(values_of(result, "tiv")) == pytest.approx(1.0, abs=1e-5)
        for key, value in result.values.items():
            assert isinstance(value, str) or np.isfinite(value), (title, key)


# -- harmonic movement ---------------------------------------------------------------------------

def test_harmonic_movement_grows_with_the_rate_of_chord_changes():
    changes = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62), (52, 55, 59), (50, 53, 57),
               (58, 62, 65), (56, 60, 63)]
    static = Tonal().compute(context(chord_track([(60, 64, 67)], 8.0)))
    slow = Tonal().compute(context(chord_track(changes, 2.0)))  # a chord every 2 s
    fast = Tonal().compute(context(chord_track(changes * 2, 0.5)))  # a chord every beat at 120 BPM
    for stem in ("bass", "other"):
        move = [r.values[f"harmonic_movement_{stem}"] for r in (static, slow, fast)]
        var = [r.values[f"harmonic_variance_{stem}"] for r in (static, slow, fast)]
        assert 0.0 <= move[0] < 0.02 and 2 * move[0] < move[1] and 2 * move[1] < move[2] <= 1.0, (stem, move)
        # variance measures how spread the harmony is, not how fast it changes
        assert var[0] < 0.01 and var[1] > 0.05 and var[2] > 0.05 and var[1] == pytest.approx(var[2], rel=0.3)
    assert Tonal().check(fast) == {}


def test_a_silent_or_missing_stem_has_no_harmony_values_and_says_why():
    chord = sum(tone(n, 2.0) for n in (57, 60, 64))
    result = Tonal().compute(context({"mix": chord, "bass": np.zeros_like(chord), "drums": 0.1 * chord}))
    assert "silent" in result.absent["harmonic_movement_bass"]
    assert "silent" in result.absent["harmonic_variance_bass"]
    assert "no other stem" in result.absent["harmonic_movement_other"]
    assert not any(k.startswith("harmonic_") for k in result.values)
    # the bass stem is silent, so the harmonic content falls back to the mix
    assert np.argmax(values_of(result, "chroma")) in (9, 0, 4)


def test_stems_of_other_lengths_and_channel_counts_are_summed():
    bass = tone(33, 2.0)[None]  # mono A1, shorter
    chord = sum(tone(n, 2.5) for n in (57, 60, 64))
    other = np.stack([chord, 0.5 * chord])
    result = Tonal().compute(context({"mix": other, "bass": bass, "other": other}))
    assert result.values["key"] in ("A minor", "C major")
    assert np.argmax(values_of(result, "chroma")) in (9, 0, 4)


# -- errors --------------------------------------------------------------------------------------

def test_silence_raises():
    silent = np.zeros((2, SR * 2), dtype=np.float32)
    with pytest.raises(ExtractorError, match="no harmonic content"):
        Tonal().compute(context({"mix": silent}))
    with pytest.raises(ExtractorError, match="no harmonic content: the mix and the bass\\+other stems"):
        Tonal().compute(context({"mix": silent, "bass": silent, "other": silent}))


def test_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match="'edmx'"):
        Tonal.from_mapping({"profile": "edmx"})


def test_the_minor_bias_adds_to_every_minor_key_and_can_turn_a_relative_major_into_its_minor():
    from sat_mir.features.tonal import key_scores

    pcp = np.zeros(12)
    pcp[[0, 2, 4, 5, 7, 9, 11]] = 1.0  # the C major scale: C major and A minor share it
    plain, corr = key_scores(pcp, minor_bias=0.0)
    assert np.unravel_index(np.argmax(plain), plain.shape) == (0, 0)  # C major
    margin = plain[0, 0] - plain[1, 9]
    assert 0 < margin < 0.2
    biased, corr2 = key_scores(pcp, minor_bias=margin + 0.01)
    np.testing.assert_allclose(biased[1] - plain[1], margin + 0.01)
    np.testing.assert_allclose(biased[0], plain[0])
    np.testing.assert_allclose(corr2, corr)  # the reported key strength is the profile fit alone
    assert np.unravel_index(np.argmax(biased), biased.shape) == (1, 9)  # A minor


def test_the_opening_bass_tells_a_minor_seventh_opening_from_its_relative_major():
    from sat_mir.features.tonal import key_scores

    pcp = np.zeros(12)
    pcp[[5, 7, 8, 10, 0, 1, 3]] = 1.0  # F minor's notes = A-flat major's
    pcp[[5, 8, 0]] += 0.1  # ... and the tonic triad a little more often
    opening = np.zeros(12)
    opening[[5, 8, 0, 3]] = 1.0  # the song opens on Fm7 (F Ab C Eb): it holds the Ab major triad
    plain, _ = key_scores(pcp, opening=opening, minor_bias=0.0)
    assert np.unravel_index(np.argmax(plain), plain.shape) == (0, 8)  # read as A-flat major ...
    assert 0 < plain[0, 8] - plain[1, 5] < 0.05  # ... by a hair over F minor
    bass = np.zeros(12)
    bass[5] = 1.0  # the opening's bass is F
    with_bass, _ = key_scores(pcp, opening=opening, minor_bias=0.0, opening_bass=bass, opening_bass_weight=0.05)
    assert np.unravel_index(np.argmax(with_bass), with_bass.shape) == (1, 5)  # F minor
    # each key gains by the share of its tonic in the bass: F major and F minor alike, A-flat not at all
    gain = with_bass - plain
    np.testing.assert_allclose(gain[:, 5], 0.05 * 11 / np.sqrt(132))
    np.testing.assert_allclose(gain[0, 8], -0.05 / np.sqrt(132))
    # a flat bass profile says nothing
    flat, _ = key_scores(pcp, opening=opening, minor_bias=0.0, opening_bass=np.ones(12), opening_bass_weight=0.05)
    np.testing.assert_allclose(flat, plain)


def test_the_chord_that_starts_the_phrases_tells_a_key_from_its_relative():
    from sat_mir.features.tonal import key_scores

    pcp = np.zeros(12)
    pcp[[0, 2, 4, 5, 7, 9, 11]] = 1.0  # the C major scale: C major and A minor share it
    plain, corr = key_scores(pcp, minor_bias=0.0)
    assert np.unravel_index(np.argmax(plain), plain.shape) == (0, 0)  # C major
    phrase = np.zeros((2, 12))
    phrase[1, 9], phrase[0, 5] = 0.75, 0.25  # 3 phrases of 4 start on Am, one on F
    total, corr2 = key_scores(pcp, minor_bias=0.0, phrase=phrase, phrase_weight=0.3)
    np.testing.assert_allclose(total - plain, 0.3 * phrase ** 2)  # squared: the chord they keep returning to
    np.testing.assert_allclose(corr2, corr)
    assert np.unravel_index(np.argmax(total), total.shape) == (1, 9)  # A minor
    with pytest.raises(ConfigError, match="phrase_weight"):
        Tonal.from_mapping({"phrase_weight": -0.1})
    with pytest.raises(ConfigError, match="phrase_bars"):
        Tonal.from_mapping({"phrase_bars": 0})


def test_a_minor_loop_read_on_its_beat_grid_is_minor_where_its_pitch_classes_say_the_relative_major():
    from sat_mir.features.chords import QUALITIES

    beat = 0.5
    t = np.arange(int(SR * beat * 4)) / SR

    def bar(root: int | None, quality: str = "maj") -> np.ndarray:
        """A bar of 4 beats: clicks (the first louder) under a sine triad, or clicks alone."""
        x = np.zeros_like(t)
        for k, i in enumerate(QUALITIES[quality] if root is not None else ()):
            x += np.sin(2 * np.pi * 440.0 * 2 ** ((root + i - 69) / 12) * t) * np.exp(-t * 0.5) / (1 + k)
        env = np.zeros_like(t)
        for b in range(4):
            s = int(b * beat * SR)
            env[s:s + 200] = np.hanning(400)[200:] * (2.0 if b == 0 else 1.0)
        return 0.3 * x + 0.5 * env * np.random.default_rng(root or 0).standard_normal(t.size)

    # a bar of clicks, then Am F C G three times: the notes of C major, the phrases on Am
    mix = np.concatenate([bar(None)] + [bar(*c) for c in [(57, "min"), (53, "maj"), (48, "maj"), (55, "maj")] * 3])

    def key(**options) -> str:
        config = Tonal.Config(**{"tracker": "dsp", "key_model": "profile", "opening_weight": 0.0, **options})
        return Tonal(config).compute(context({"mix": mix.astype(np.float32)})).values["key"]

    assert key(phrase_weight=0.0) == "C major"
    assert key() == "A minor"
    assert key(key_model="fitted") == "A minor"  # the fitted model reads the phrases, and the chords' time


def test_a_partial_on_a_lower_peaks_harmonic_counts_less_however_many_peaks_lie_between():
    from sat_mir.features.tonal import _overtone_weights

    root = 110.0  # A2; its 5th harmonic is C#5 (550 Hz)
    between = list(np.geomspace(160.0, 175.0, 30))  # 30 peaks between, none a fundamental of those above
    freq = np.array([root] + between + [550.0 * 1.01, 700.0])  # C#5 1 % sharp: within 1.5 %
    amp = np.ones(freq.size)
    amp[0] = 0.15  # the root a sixth as strong as its harmonic: still a root
    one_frame = np.zeros(freq.size, int)
    w = _overtone_weights(one_frame, freq, amp)
    assert w[-2] == pytest.approx(0.2)  # 31 peaks above the root: found all the same
    assert w[-1] == 1.0  # 700 Hz is no harmonic 3, 5, 6 or 7 of a peak below
    assert (w[:-2] == 1.0).all()
    weak = amp.copy()
    weak[0] = 0.05  # a twentieth as strong: not its fundamental
    assert _overtone_weights(one_frame, freq, weak)[-2] == 1.0
    # the root in the frame before is no fundamental of this frame's peaks
    assert _overtone_weights(np.array([0] + [1] * (freq.size - 1)), freq, amp)[-2] == 1.0
