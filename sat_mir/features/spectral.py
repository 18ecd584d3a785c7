"""Spectral shape of the mix and its energy in four bands, from one shared native-rate STFT.

Shape statistics (flatness, flux, skewness, kurtosis) are taken per frame on the
mono magnitude spectrum and summarised by their median over frames that are not
silent.  Band energies use the per-channel power, so content that is out of phase
between channels still counts (a channel mean would cancel it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sat_mir.audio.context import Spectrogram, TrackContext
from sat_mir.errors import ExtractorError
from sat_mir.features.registry import Extractor, ExtractorResult, Needs, OutputSpec, register

__all__ = ["BANDS_HZ", "Spectral", "band_levels_dbfs", "shape_statistics"]

# The seed's bands: bass, body, mid, air.
BANDS_HZ = {"bass": (20.0, 120.0), "body": (120.0, 600.0), "mid": (600.0, 2500.0), "air": (2500.0, 22000.0)}
# Frames quieter than this (dBFS, mean square over the frame) do not enter the medians.
SILENT_FRAME_DBFS = -80.0


def shape_statistics(mag: np.ndarray, freqs: np.ndarray, active: np.ndarray) -> dict[str, float]:
    """Median over ``active`` frames of flatness, flux, skewness and excess kurtosis.

    ``mag``: magnitude ``[bins, frames]``.  Flatness is the ratio of geometric to
    arithmetic mean of the magnitudes (white noise ≈ 0.85, a sine ≈ 0); flux is the
    L2 distance between consecutive unit-norm spectra (0 … √2, level-independent);
    skewness and kurtosis describe the spectrum as a distribution over frequency.
    """
    eps = 1e-12
    m = mag[:, active]
    freqs = np.asarray(freqs, dtype=np.float64)
    flat = np.exp(np.mean(np.log(m + np.float32(eps)), axis=0, dtype=np.float64)) / (
        np.mean(m, axis=0, dtype=np.float64) + eps)
    unit = m / (np.linalg.norm(m, axis=0, keepdims=True) + np.float32(eps))
    flux = np.concatenate([[0.0], np.linalg.norm(np.diff(unit, axis=1), axis=0)])
    # Moments from four matrix-vector products instead of elementwise powers of [bins, frames]
    # arrays; frequencies are taken relative to the median centroid to keep the sums small.
    w = m.astype(np.float64)
    w /= w.sum(axis=0, keepdims=True) + eps
    g = freqs - float(np.median(freqs @ w))
    r1, r2, r3, r4 = (g**k @ w for k in (1, 2, 3, 4))
    var = np.maximum(r2 - r1**2, 0.0)
    sd = np.sqrt(var) + eps
    skew = (r3 - 3 * r1 * r2 + 2 * r1**3) / sd**3
    kurt = (r4 - 4 * r1 * r3 + 6 * r1**2 * r2 - 3 * r1**4) / sd**4 - 3.0
    # flux between consecutive active frames; the first has no predecessor
    return {
        "spectral_flatness": float(np.median(flat)),
        "spectral_flux": float(np.median(flux[1:])) if flux.size > 1 else 0.0,
        "spectral_skewness": float(np.median(skew)),
        "spectral_kurtosis": float(np.median(kurt)),
    }


def band_levels_dbfs(spec: Spectrogram, bands: dict[str, tuple[float, float]]) -> dict[str, float | None]:
    """Mean-square level (dBFS, all channels' energy) of the signal inside each band; None when 0."""
    per_frame = spec.power.mean(axis=0)  # channel mean of power: energy, no phase cancellation
    out: dict[str, float | None] = {}
    for name, (lo, hi) in bands.items():
        sel = (spec.freqs >= lo) & (spec.freqs < hi)
        ms = float(per_frame[sel].sum(axis=0).mean() * spec.power_to_mean_square)
        out[name] = 10.0 * np.log10(ms) if ms > 0 else None
    return out


@register
class Spectral(Extractor):
    name = "spectral"
    needs = Needs(min_sound_s=0.1)  # a few full frames of sound, not a DC offset
    version = "1"
    signals = ("mix",)
    outputs = (
        OutputSpec("spectral_flatness", "ratio", "median spectral flatness (geometric/arithmetic mean)", (0.0, 1.0)),
        OutputSpec("spectral_flux", "unit-norm L2", "median frame-to-frame change of the normalised spectrum",
                   (0.0, 1.4143)),
        OutputSpec("spectral_skewness", "ratio", "median skewness of the spectrum over frequency", (-10.0, 200.0)),
        OutputSpec("spectral_kurtosis", "ratio", "median excess kurtosis of the spectrum over frequency",
                   (-3.0, 50000.0)),
        OutputSpec("rms_energy_bass", "dBFS", "level of the 20–120 Hz band (all channels' energy)", (-140.0, 6.0)),
        OutputSpec("rms_energy_body", "dBFS", "level of the 120–600 Hz band", (-140.0, 6.0)),
        OutputSpec("rms_energy_mid", "dBFS", "level of the 600–2500 Hz band", (-140.0, 6.0)),
        OutputSpec("rms_energy_air", "dBFS", "level of the 2.5–22 kHz band", (-140.0, 6.0)),
    )

    @dataclass(frozen=True)
    class Config:
        n_fft: int = 2048
        hop: int = 2048  # medians and band means need no overlap; half the frames of hop 1024

    def compute(self, ctx: TrackContext) -> ExtractorResult:
        spec = ctx.mix.spectrogram(n_fft=self.config.n_fft, hop=self.config.hop)
        frame_ms = spec.power.mean(axis=0).sum(axis=0) * spec.power_to_mean_square
        active = frame_ms > 10.0 ** (SILENT_FRAME_DBFS / 10.0)
        if not active.any():
            raise ExtractorError(f"the mix is silent (every frame below {SILENT_FRAME_DBFS:.0f} dBFS)")
        result = ExtractorResult(values={k: round(v, 6) for k, v in
                                         shape_statistics(spec.mono_magnitude, spec.freqs, active).items()})
        for band, level in band_levels_dbfs(spec, BANDS_HZ).items():
            if level is None:
                result.absent[f"rms_energy_{band}"] = f"no energy in the {band} band"
            else:
                result.values[f"rms_energy_{band}"] = round(level, 4)
        return result
