"""BS.1770-4 / EBU R128 loudness against the EBU Tech 3341 and 3342 test signals."""

import numpy as np
import pyloudnorm
import pytest

from sat_mir.features.bs1770 import integrated_loudness, k_weighting_sos, loudness_range

SR = 48000


def tone(segments, *, sr=SR, freq=1000.0, channels=2):
    """1 kHz sine; ``segments`` = [(seconds, peak dBFS per channel)], phase-continuous."""
    n = [int(round(s * sr)) for s, _ in segments]
    t = np.arange(sum(n)) / sr
    amp = np.concatenate([np.full(k, 10.0 ** (db / 20.0)) for k, (_, db) in zip(n, segments)])
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.tile(x, (channels, 1))


def test_k_weighting_matches_the_48k_coefficients_printed_in_bs1770():
    sos = k_weighting_sos(48000)
    np.testing.assert_allclose(sos[0, :3], [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-9)
    np.testing.assert_allclose(sos[0, 4:], [-1.69065929318241, 0.73248077421585], atol=1e-9)
    np.testing.assert_allclose(sos[1, :3], [1.0, -2.0, 1.0])
    np.testing.assert_allclose(sos[1, 4:], [-1.99004745483398, 0.99007225036621], atol=1e-9)


EBU_3341 = {
    1: [(20, -23.0)],
    2: [(20, -33.0)],
    3: [(10, -36.0), (60, -23.0), (10, -36.0)],
    4: [(10, -72.0), (10, -36.0), (60, -23.0), (10, -36.0), (10, -72.0)],
    5: [(20, -26.0), (20.1, -20.0), (20, -26.0)],
}
EBU_3341_EXPECTED = {1: -23.0, 2: -33.0, 3: -23.0, 4: -23.0, 5: -23.0}


@pytest.mark.parametrize("case", sorted(EBU_3341))
def test_ebu_tech_3341_integrated_loudness(case):
    assert integrated_loudness(tone(EBU_3341[case]), SR) == pytest.approx(EBU_3341_EXPECTED[case], abs=0.1)


EBU_3342 = {
    1: ([(20, -20.0), (20, -30.0)], 10.0),
    2: ([(20, -20.0), (20, -15.0)], 5.0),
    3: ([(20, -40.0), (20, -20.0)], 20.0),
    4: ([(20, -50.0), (20, -35.0), (20, -20.0), (20, -35.0), (20, -50.0)], 15.0),
}


@pytest.mark.parametrize("case", sorted(EBU_3342))
def test_ebu_tech_3342_loudness_range(case):
    segments, expected = EBU_3342[case]
    assert loudness_range(tone(segments), SR) == pytest.approx(expected, abs=1.0)


def test_sample_rate_does_not_change_the_measurement():
    # the same -23 dBFS tone at 44.1 kHz: the K-filter is re-derived for the rate
    assert integrated_loudness(tone([(20, -23.0)], sr=44100), 44100) == pytest.approx(-23.0, abs=0.1)


def test_one_channel_reads_3_db_below_dual_mono():
    # BS.1770 sums channel powers: a mono -23 dBFS tone measured as one channel is -26 LUFS
    assert integrated_loudness(tone([(20, -23.0)], channels=1), SR) == pytest.approx(-26.0, abs=0.1)


def test_silence_and_too_short_are_not_numbers():
    assert integrated_loudness(np.zeros((2, SR * 5), np.float32), SR) == float("-inf")
    assert np.isnan(integrated_loudness(tone([(0.3, -23.0)]), SR))
    assert np.isnan(loudness_range(tone([(2.5, -23.0)]), SR))


def test_agrees_with_pyloudnorm_on_music(demo_library):
    from sat_mir.audio import load_audio

    audio = load_audio(demo_library / "Demo 02 - Night Drive" / "full_mix.flac")
    ours = integrated_loudness(audio.samples, audio.sr)
    theirs = pyloudnorm.Meter(audio.sr).integrated_loudness(audio.samples.T.astype(np.float64))
    assert ours == pytest.approx(theirs, abs=0.05)


def test_the_k_weighting_in_blocks_equals_one_pass(monkeypatch):
    from sat_mir.features import bs1770

    rng = np.random.default_rng(2)
    x = (rng.standard_normal((2, 44100 * 3 + 123)) * np.linspace(0.01, 0.5, 44100 * 3 + 123)).astype(np.float32)
    whole = bs1770.chunk_energy(x, 44100)
    assert whole.shape == (2, 30)
    monkeypatch.setattr(bs1770, "_BLOCK", 10000)  # blocks of two 100-ms chunks
    np.testing.assert_array_equal(bs1770.chunk_energy(x, 44100), whole)


@pytest.mark.parametrize(("sr", "parts"), [(44100, 10), (48000, 10), (22050, 5), (11025, 2)])
def test_chunks_summed_from_their_parts_equal_the_whole_chunks(sr, parts):
    # the loudness extractor sums 10 ms parts (which the momentary-loudness series shares) into
    # its 100 ms chunks: the same energies, whatever the rate allows the parts to be
    from sat_mir.features import bs1770

    assert bs1770.chunk_parts(sr) == parts
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, sr * 4 + 77)) * np.linspace(0.01, 0.5, sr * 4 + 77)).astype(np.float32)
    fine = bs1770.chunk_energy(x, sr, parts)
    assert fine.shape == (2, (sr * 4 + 77) // (round(0.1 * sr) // parts))
    whole = bs1770.chunk_energy(x, sr)
    np.testing.assert_allclose(bs1770.whole_chunks(fine, parts), whole, rtol=1e-5)
    assert bs1770.loudness_stats_of_chunks(bs1770.whole_chunks(fine, parts), sr) == pytest.approx(
        bs1770.loudness_stats(x, sr), abs=1e-4)
    with pytest.raises(ValueError, match="equal parts"):
        bs1770.chunk_energy(x, sr, 11)
