"""Spectral shape, band levels, true peak and saturation against signals with known answers."""

from pathlib import Path

import numpy as np
import pytest

from sat_mir.audio import TrackContext
from sat_mir.audio.decode import Audio
from sat_mir.catalog import scan_library
from sat_mir.errors import ExtractorError
from sat_mir.features.peaks import Peaks, true_peak
from sat_mir.features.spectral import BANDS_HZ, Spectral

SR = 44100


def ctx_of(x: np.ndarray, sr: int = SR) -> TrackContext:
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    return TrackContext({"mix": Path("<memory>")}, loader=lambda _: Audio(x, sr))


def band_noise(lo: float, hi: float, *, seconds: float = 4.0, rms_db: float = -20.0, seed: int = 0) -> np.ndarray:
    """Stereo noise with all its energy in [lo, hi) Hz and an exact RMS."""
    n = int(seconds * SR)
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal((2, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[:, (f < lo) | (f >= hi)] = 0
    x = np.fft.irfft(spec, n, axis=1)
    return x * (10 ** (rms_db / 20) / np.sqrt(np.mean(x**2)))


@pytest.mark.parametrize("band", list(BANDS_HZ))
def test_band_levels_of_band_limited_noise_within_1_db(band):
    lo, hi = BANDS_HZ[band]
    # keep clear of the band edges, where a neighbouring band's bins begin
    x = band_noise(lo * 1.3, hi / 1.3, rms_db=-20.0)
    v = Spectral().compute(ctx_of(x)).values
    assert v[f"rms_energy_{band}"] == pytest.approx(-20.0, abs=1.0)
    for other in BANDS_HZ:
        if other != band:
            assert v[f"rms_energy_{other}"] < -45.0, other


def test_out_of_phase_content_is_not_cancelled():
    # the seed measured bands on the channel mean: this signal would read as silence there
    n = band_noise(150, 500)[0]
    v = Spectral().compute(ctx_of(np.stack([n, -n]))).values
    assert v["rms_energy_body"] == pytest.approx(-20.0, abs=1.0)


def test_flatness_of_white_noise_and_of_a_sine():
    noise = np.random.default_rng(1).standard_normal((2, SR * 3)) * 0.1
    assert Spectral().compute(ctx_of(noise)).values["spectral_flatness"] > 0.8
    t = np.arange(SR * 3) / SR
    sine = np.tile(0.5 * np.sin(2 * np.pi * 1000 * t), (2, 1))
    v = Spectral().compute(ctx_of(sine)).values
    assert v["spectral_flatness"] < 0.05
    assert v["spectral_flux"] < 0.01  # a steady tone does not change
    assert Spectral().compute(ctx_of(noise)).values["spectral_flux"] > 0.3


def test_kurtosis_is_not_clamped_at_the_seeds_limits(demo_library):
    # the seed clamped excess kurtosis to [0, 10]: pink noise (about -0.84) read 0, and busy
    # mixes of drums and chords (above 10) read 10
    rng = np.random.default_rng(0)
    n = SR * 4
    spec = np.fft.rfft(rng.standard_normal((2, n)), axis=1)
    f = np.fft.rfftfreq(n, 1 / SR)
    spec[:, 1:] /= np.sqrt(f[1:])
    spec[:, 0] = 0
    pink = np.fft.irfft(spec, n, axis=1)
    pink *= 0.1 / np.sqrt(np.mean(pink**2))
    assert Spectral().compute(ctx_of(pink)).values["spectral_kurtosis"] == pytest.approx(-0.84, abs=0.1)
    (song,) = [t for t in scan_library(demo_library) if t.name == "Demo 01 - Sunrise"]
    assert Spectral().compute(TrackContext(song.sources)).values["spectral_kurtosis"] > 10.0


def test_silence_is_an_error():
    with pytest.raises(ExtractorError, match="silent"):
        Spectral().compute(ctx_of(np.zeros((2, SR))))
    with pytest.raises(ExtractorError, match="silence"):
        Peaks().compute(ctx_of(np.zeros((2, SR))))


# EBU Tech 3341 true-peak cases at 48 kHz: (frequency, phase in degrees, amplitude) → dBTP
TRUE_PEAK_CASES = [(12000, 0.0, 0.5), (12000, 45.0, 0.5), (8000, 60.0, 0.5), (6000, 67.5, 0.5),
                   (12000, 45.0, 1.41)]


@pytest.mark.parametrize("freq,phase,amp", TRUE_PEAK_CASES)
def test_true_peak_ebu_3341(freq, phase, amp):
    sr = 48000
    t = np.arange(sr * 2) / sr
    x = np.tile(amp * np.sin(2 * np.pi * freq * t + np.radians(phase)), (2, 1))
    dbtp = 20 * np.log10(true_peak(x, sr))
    assert -0.4 <= dbtp - 20 * np.log10(amp) <= 0.2


def test_true_peak_finds_an_inter_sample_peak_the_samples_miss():
    sr = 48000
    t = np.arange(sr) / sr
    x = 0.5 * np.sin(2 * np.pi * 12000 * t + np.radians(45))  # samples at ±0.354 only
    assert np.max(np.abs(x)) == pytest.approx(0.354, abs=1e-3)
    assert true_peak(x, sr) == pytest.approx(0.5, abs=0.01)


def test_saturation_on_per_channel_peaks():
    t = np.arange(SR * 2) / SR
    clipped = np.clip(1.2 * np.sin(2 * np.pi * 100 * t), -0.97, 0.97)
    quiet = 0.05 * np.sin(2 * np.pi * 100 * t)
    # clipping in one channel only: a channel mean (the seed) halves the peak and misses it
    v = Peaks().compute(ctx_of(np.stack([quiet, clipped]))).values
    assert v["saturation_count"] == 1 and v["saturation_ratio"] > 0.95
    v = Peaks().compute(ctx_of(np.stack([quiet, quiet]))).values
    assert v["saturation_count"] == 0 and v["saturation_ratio"] == 0.0
    burst = quiet.copy()
    burst[SR // 2 : SR // 2 + SR // 10] = clipped[SR // 2 : SR // 2 + SR // 10]  # one 100 ms clipped burst
    v = Peaks().compute(ctx_of(np.stack([burst, burst]))).values
    assert v["saturation_count"] == 1 and v["saturation_ratio"] == pytest.approx(0.05, abs=0.01)


def test_demo_songs_values_are_finite_and_in_range(demo_library):
    for track in scan_library(demo_library):
        ctx = TrackContext(track.sources)
        for ex in (Spectral(), Peaks()):
            result = ex.compute(ctx)
            assert ex.check(result) == {}, (track.name, ex.name)
            assert all(np.isfinite(v) for v in result.values.values())
