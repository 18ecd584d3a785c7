"""Is there music in a signal?  Four cheap measures that extractors' needs are checked against.

A pure DC offset, white noise, near-silence or a file of a few samples still yields numbers
from every algorithm (a key, a tempo, a brightness), and those numbers mean nothing.  Each
extractor declares what its values need (:class:`sat_mir.features.registry.Needs`); the
runner measures the mix once with :func:`content_of` and records the extractor's keys as
absent, with the reason, when a need is not met.

- ``sound_s``: seconds of frames louder than -60 dBFS RMS once everything below 20 Hz (DC,
  drift) is left out.
- ``tonality`` in [0, 1]: the share of the 60 Hz - 5 kHz energy in spectral peaks that last
  (power averaged over 0.19 s) and stand 10 dB above the geometric mean of their
  neighbourhood (31 bins, ±160 Hz).  Noise of any colour has no such peaks.
- ``pulse_clarity`` in [0, 1]: the highest normalised autocorrelation of the onset envelope
  at lags of 0.3-2 s (30-200 BPM); 0 for a steady sound, whose envelope barely moves.

Thresholds, measured on the evaluation corpora (docs/eval.md) with this code: white, pink and
brown noise give tonality 0.000 and pulse clarity 0 (their onset envelopes are steady; before
that check their autocorrelation peaks reached 0.11); 50 rendered mixes give tonality >= 0.15
and pulse >= 0.43, 50 human-composed pieces with no drums tonality >= 0.62 and pulse >= 0.17.
``PITCHED`` = 0.05 and ``RHYTHMIC`` = 0.15 sit between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PITCHED", "RHYTHMIC", "SOUND_DB", "Content", "content_of"]

SOUND_DB = -60.0
PITCHED = 0.05
RHYTHMIC = 0.15
# the onset envelope (mel flux in dB) of a steady sound varies less than this: white noise
# 0.19, a held chord 0.10, a 50 Hz hum 0.03; the stillest of 80 chorales and tunes 0.34
STEADY = 0.25

_SR, _N_FFT, _HOP = 22050, 2048, 512  # the shared STFT and onset envelope the extractors use too
_BLOCK = 8


@dataclass(frozen=True)
class Content:
    duration_s: float
    sound_s: float
    tonality: float
    pulse_clarity: float

    @property
    def pitched(self) -> bool:
        return self.tonality >= PITCHED

    @property
    def rhythmic(self) -> bool:
        return self.pulse_clarity >= RHYTHMIC

    def describe(self) -> str:
        return (f"{self.duration_s:.2f} s long, {self.sound_s:.2f} s above {SOUND_DB:g} dBFS, "
                f"tonality {self.tonality:.2f}, pulse clarity {self.pulse_clarity:.2f}")


def content_of(sig) -> Content:
    """The content measures of a :class:`~sat_mir.audio.context.SignalContext` (memoised)."""
    return sig.memo("content", lambda: _measure(sig))


def _measure(sig) -> Content:
    import scipy.ndimage as nd

    duration = float(sig.duration_s)
    if sig.samples.shape[-1] == 0 or duration * _SR < _N_FFT:
        return Content(duration, 0.0, 0.0, 0.0)
    mag = sig.stft_magnitude(sr=_SR, n_fft=_N_FFT, hop=_HOP)
    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / _SR)
    # mean square of each frame above 20 Hz (Parseval, Hann window); float32 sums are ample
    # for a threshold, and squaring only the rows and frames each measure reads saves most
    # of this function's time
    scale = 2.0 / (_N_FFT * np.sum(np.hanning(_N_FFT + 1)[:-1] ** 2))
    above20 = mag[np.searchsorted(freqs, 20.0):]
    ms = np.einsum("ij,ij->j", above20, above20).astype(np.float64) * scale
    sounding = 10 * np.log10(ms + 1e-20) > SOUND_DB
    sound_s = float(min(np.count_nonzero(sounding) * _HOP / _SR, duration))
    if np.count_nonzero(sounding) < 4:
        return Content(duration, sound_s, 0.0, 0.0)
    band = mag[np.searchsorted(freqs, 60.0):np.searchsorted(freqs, 5000.0, side="right")][:, sounding]
    band = band.astype(np.float64) ** 2
    # power over blocks of 8 sounding frames (0.19 s): what lasts, not a transient; noise
    # averaged over 8 frames stays within a few dB of its mean in every bin
    n_blocks = max(1, band.shape[1] // _BLOCK)
    lasting = band[:, : n_blocks * _BLOCK].reshape(band.shape[0], n_blocks, -1).mean(axis=2)
    # against the geometric mean of the ±15 bins around (±160 Hz): a peak stands 10 dB above it
    around = np.exp(nd.uniform_filter1d(np.log(lasting + 1e-20), size=31, axis=0, mode="nearest"))
    total = float(lasting.sum())
    tonality = float(lasting[lasting > 10.0 * around].sum() / total) if total > 0 else 0.0
    env = np.asarray(sig.onset_envelope(sr=_SR, hop=_HOP), dtype=np.float64)
    if env.size == 0 or env.std() < STEADY:
        # a steady sound (a hum, an organ chord, noise): its tiny flux can still be periodic
        # (a 50 Hz hum beats with the hop), which is not a pulse
        return Content(duration, sound_s, round(tonality, 4), 0.0)
    env = env - env.mean()
    lo, hi = int(0.3 * _SR / _HOP), int(2.0 * _SR / _HOP)
    pulse = 0.0
    if env.size > lo + 1 and np.any(env):
        n = int(2 ** np.ceil(np.log2(2 * env.size)))
        spec = np.fft.rfft(env, n)
        ac = np.fft.irfft(spec * np.conj(spec), n)[: env.size]
        pulse = float(np.clip(ac[lo : min(hi, env.size)].max() / ac[0], 0.0, 1.0)) if ac[0] > 0 else 0.0
    return Content(duration, sound_s, round(tonality, 4), round(pulse, 4))
