"""The analysis context: each signal decoded once, shared representations computed once.

Extractors receive a :class:`TrackContext` and ask it for signals
(``ctx.mix``, ``ctx.stem("drums")``) and for representations of a signal
(``sig.mono``, ``sig.at_rate(22050)``, ``sig.stft_magnitude(...)``,
``sig.onset_envelope()``).  Everything is memoised on first use, so two
extractors that need the same STFT share one computation and no extractor ever
decodes a file.  Feature families can memoise representations of their own
with :meth:`SignalContext.memo`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sat_mir.audio.decode import Audio, load_audio, probe_header
from sat_mir.audio.filterbanks import mel_filters, onset_strength, power_to_db
from sat_mir.audio.resample import resample

__all__ = ["STEM_NAMES", "SignalContext", "Spectrogram", "SIGNALS_MB", "TrackContext", "channel_mean", "stft_blocks",
           "stft_frames", "stft_magnitude"]

STEM_NAMES = ("drums", "bass", "other", "vocals")
T = TypeVar("T")


def stft_blocks(y: np.ndarray, n_fft: int, hop: int, block: int = 256):
    """``librosa.stft(y, n_fft=n_fft, hop_length=hop, window="hann", center=True)`` (zero
    padding, librosa's default) within float32 rounding, as ``(first frame, complex64
    [frames, bins])`` blocks of ``block`` frames from a strided view: the caller keeps what it
    needs of each block (a magnitude, a power), so no complex STFT of the whole signal is
    held.  Callers lay their results out ``[bins, frames]`` in C order: librosa's
    Fortran-ordered output made every reduction over frequency or channels downstream slow."""
    import scipy.fft
    from scipy.signal import get_window

    window = get_window("hann", n_fft, fftbins=True).astype(np.float32)
    padded = np.pad(np.asarray(y, dtype=np.float32), n_fft // 2)
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    for s in range(0, view.shape[0], block):
        yield s, scipy.fft.rfft(view[s:s + block] * window, axis=1)


def channel_mean(x: np.ndarray) -> np.ndarray:
    """``x.mean(axis=0, dtype=np.float32)`` of ``[channels, frames]`` samples, the same values;
    a stereo pair as one sum and one scaling in place, at half the time of the general mean."""
    if x.shape[0] != 2:
        return x.mean(axis=0, dtype=np.float32)
    out = np.add(x[0], x[1], dtype=np.float32)
    out *= np.float32(0.5)
    return out


def stft_frames(n_samples: int, n_fft: int, hop: int) -> int:
    """Frames of a centred STFT of ``n_samples`` samples."""
    return 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop


def stft_magnitude(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``np.abs(librosa.stft(y, ...))``, ``[1 + n_fft // 2, frames]`` float32, at 40 % of
    librosa's time (:func:`stft_blocks`)."""
    out = np.empty((n_fft // 2 + 1, stft_frames(np.shape(y)[-1], n_fft, hop)), dtype=np.float32)
    for s, z in stft_blocks(y, n_fft, hop):
        out[:, s:s + z.shape[0]] = np.abs(z).T
    return out


@dataclass(frozen=True)
class Spectrogram:
    """A shared STFT: ``power`` ``[channels, bins, frames]``, ``mono_magnitude`` ``[bins, frames]``.

    ``power_to_mean_square`` turns a sum of one-sided ``power`` over bins into the mean
    square of the signal in that frame (so band energies come out in dBFS).
    """

    power: np.ndarray
    mono_magnitude: np.ndarray
    freqs: np.ndarray
    hop: int
    n_fft: int
    sr: int
    power_to_mean_square: float


class SignalContext:
    """One decoded signal (the mix or one stem) and its memoised representations.

    With ``reload`` (how to decode the signal again), its samples may be let go
    (:meth:`drop_samples`) while its small memoised values stay: they are decoded again only
    when something asks for the samples or for a representation not kept."""

    def __init__(self, name: str, audio: Audio, *, source: Path | None = None,
                 reload: Callable[[], Audio] | None = None):
        self.name = name
        self.source = source
        self._audio: Audio | None = audio
        self._reload = reload
        self._sr, self._shape = audio.sr, audio.samples.shape
        self._memo: dict[Hashable, Any] = {}
        self._sizes: dict[Hashable, int] = {}

    @property
    def audio(self) -> Audio:
        if self._audio is None:
            self._audio = self._reload()
        return self._audio

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded samples (when held) and of the arrays memoised on this signal."""
        held = 0 if self._audio is None else int(self._audio.samples.nbytes)
        return held + sum(self._sizes.values())

    def drop_samples(self) -> int:
        """Let go of the decoded samples (decoded again when asked for); the bytes let go."""
        if self._audio is None or self._reload is None:
            return 0
        freed = int(self._audio.samples.nbytes)
        self._audio = None
        return freed

    def large_bytes(self, min_bytes: int = 8 * 2**20) -> int:
        """Bytes of the memoised values of at least ``min_bytes`` (what :meth:`drop_large` lets go)."""
        return sum(n for n in self._sizes.values() if n >= min_bytes)

    def drop_large(self, min_bytes: int = 8 * 2**20) -> int:
        """Forget memoised values of at least ``min_bytes`` (spectrograms, resampled copies:
        recomputed if asked for again); the bytes let go."""
        large = [k for k, n in self._sizes.items() if n >= min_bytes]
        for k in large:
            del self._memo[k]
        return sum(self._sizes.pop(k) for k in large)

    @property
    def samples(self) -> np.ndarray:
        """float32 ``[channels, frames]`` at :attr:`sr` (read-only view)."""
        view = self.audio.samples.view()
        view.flags.writeable = False
        return view

    @property
    def sr(self) -> int:
        return self._sr

    @property
    def duration_s(self) -> float:
        return self._shape[-1] / float(self._sr)

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Return the value stored under ``key``, computing it once with ``compute()``."""
        if key not in self._memo:
            value = compute()
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            self._memo[key] = value
            self._sizes[key] = _array_bytes(value)
        return self._memo[key]

    @property
    def mono(self) -> np.ndarray:
        """Channel mean at the native rate, float32 ``[frames]``, a new array on each use (30 ms
        for 10 minutes of stereo, while kept it held 100 MB per signal: a caller may scale it in
        place); a mono signal's own samples (read-only)."""
        if self._shape[0] == 1:
            return self.samples[0]
        return channel_mean(self.audio.samples)

    def at_rate(self, sr: int) -> np.ndarray:
        """All channels resampled to ``sr`` Hz, ``[channels, frames]``."""
        if sr == self.sr:
            return self.samples
        # analysis only: libsoxr's HQ preset is ~3x faster than VHQ and far below any feature's resolution
        return self.memo(("at_rate", sr), lambda: resample(self.audio.samples, sr_in=self.sr, sr_out=sr,
                                                           quality="HQ"))

    def mono_at(self, sr: int) -> np.ndarray:
        """Mono resampled to ``sr`` Hz (resampled once, then averaged)."""
        if sr == self.sr:
            return self.mono
        # averaging first and resampling one channel equals resampling all and averaging (both
        # are linear), at a fraction of the cost; reuse all channels when they are already there
        if ("at_rate", sr) in self._memo:
            return self.memo(("mono", sr), lambda: channel_mean(self.at_rate(sr)))
        return self.memo(("mono", sr), lambda: resample(self.mono, sr_in=self.sr, sr_out=sr, quality="HQ"))

    def stft_magnitude(self, *, sr: int = 22050, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
        """|STFT| of the mono signal at ``sr``, ``[1 + n_fft // 2, frames]``, Hann window, centred."""

        return self.memo(("stft_mag", sr, n_fft, hop), lambda: stft_magnitude(self.mono_at(sr), n_fft, hop))

    def spectrogram(self, *, n_fft: int = 2048, hop: int = 2048) -> Spectrogram:
        """Power per channel and mono magnitude of one native-rate STFT (Hann, centred).

        One transform serves both: the mono spectrum is the transform of the channel
        mean (linearity), the power keeps each channel's energy so out-of-phase
        content is not cancelled.
        """

        def compute() -> Spectrogram:
            x = self.audio.samples
            frames = stft_frames(x.shape[-1], n_fft, hop)
            power = np.empty((x.shape[0], n_fft // 2 + 1, frames), dtype=np.float32)
            mono = np.empty((n_fft // 2 + 1, frames), dtype=np.float32)
            # the channels a block at a time, side by side: the mono sum of a block is made and
            # written once (no complex spectrogram of the whole signal to add the channels into)
            for blocks in zip(*(stft_blocks(channel, n_fft, hop) for channel in x)):
                s, total = blocks[0][0], None
                for c, (_, z) in enumerate(blocks):
                    power[c, :, s:s + z.shape[0]] = (np.square(z.real) + np.square(z.imag)).T
                    total = z.copy() if total is None else np.add(total, z, out=total)
                mono[:, s:s + total.shape[0]] = np.abs(total / x.shape[0]).T
            freqs = np.fft.rfftfreq(n_fft, 1.0 / self.sr)
            # Parseval with a Hann window: sum(|X|^2) over bins ≈ n_fft * sum(w^2)/n_fft * frame energy
            scale = 2.0 / (n_fft * np.sum(np.hanning(n_fft + 1)[:-1] ** 2))
            return Spectrogram(power=power, mono_magnitude=mono, freqs=freqs, hop=hop, n_fft=n_fft,
                               sr=self.sr, power_to_mean_square=scale)

        return self.memo(("spectrogram", n_fft, hop), compute)

    def onset_envelope(self, *, sr: int = 22050, hop: int = 512) -> np.ndarray:
        """Spectral-flux onset strength (librosa's mel flux) of the mono signal at ``sr``."""

        def compute() -> np.ndarray:
            import scipy.sparse

            # from the shared STFT (the same spectrogram chroma and low-band flux read), not a second
            # one; librosa.feature.melspectrogram's product, in blocks so no power spectrogram of the
            # whole signal is held beside the magnitudes
            mag = self.stft_magnitude(sr=sr, n_fft=2048, hop=hop)
            # each of the 128 triangles spans a few of the 1025 bins (2,018 weights of 131,200 are
            # not zero): the sparse product is 10x faster than the dense one, the same to float32
            # rounding (6e-7 relative), as a different BLAS would give
            basis = scipy.sparse.csr_matrix(mel_filters(sr, 2048))
            mel = np.empty((basis.shape[0], mag.shape[1]), dtype=np.float32)
            for s in range(0, mag.shape[1], 2048):
                mel[:, s:s + 2048] = basis @ np.square(mag[:, s:s + 2048])
            env = onset_strength(power_to_db(mel), hop=hop)
            return env.astype(np.float32)

        return self.memo(("onset_env", sr, hop), compute)


def _array_bytes(value: Any) -> int:
    """Bytes of the numpy arrays in a memoised value (an array, a dataclass, a tuple, a dict)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_array_bytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(_array_bytes(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return sum(_array_bytes(getattr(value, f)) for f in value.__dataclass_fields__)
    return 0


# What a track's decoded signals and their shared analysis may hold before large memoised
# values, then stems' samples, are let go (recomputed or decoded again if asked for).  The
# worker measures each stem in one pass (Extractor.prepare), so stems let go are not decoded
# again: a 10-minute track with four stems held 1.2 GB and its process peaked at 2.2 GB
# unbounded; at this bound about 1.3 GB, at the same CPU time (tools/bench_memory.py).
SIGNALS_MB = 750.0


class TrackContext:
    """The signals of one track, each decoded on first use and kept for the other extractors.

    ``sources`` maps a signal name (``"mix"`` or a stem name) to its file.  Stems
    are brought to the mix's sample rate so sample indices line up across signals.

    ``signals_mb`` bounds what the signals hold (samples and memoised analysis): when a
    signal is asked for and they hold more, the large memoised values of the signals used
    longest ago are let go, then those stems themselves (recomputed or decoded again when
    asked for: the results are the same; only long tracks pay).  ``None``: no bound.  :meth:`release` lets go of signals no one needs any more.
    """

    def __init__(self, sources: dict[str, Path], *, loader: Callable[[Path], Audio] = load_audio,
                 features: dict[str, Any] | None = None, track_id: str | None = None,
                 signals_mb: float | None = SIGNALS_MB):
        if "mix" not in sources:
            raise ValueError("a track needs a 'mix' source")
        self.sources = dict(sources)
        # what is known of this item before the extractors run (sat_mir.store.item_values: a
        # crop's own values over its grid values over its track's): read-only context for
        # annotators that condition on them, e.g. prompt texts
        self.features: dict[str, Any] = dict(features or {})
        self.track_id = track_id  # the catalog id (stable across library moves), when known
        self._loader = loader
        self._signals: dict[str, SignalContext] = {}  # in order of last use
        self._failed: dict[str, Exception] = {}
        self._budget = None if signals_mb is None else int(signals_mb * 2**20)
        self.decodes = 0  # files decoded so far (more than the signals when some were let go)

    @property
    def stem_names(self) -> list[str]:
        return [name for name in self.sources if name != "mix"]

    def signal(self, name: str) -> SignalContext:
        if name in self._failed:  # a file that failed to decode fails once, not once per extractor
            raise self._failed[name]
        if name not in self._signals:
            if name not in self.sources:
                raise KeyError(f"track has no signal {name!r} (has: {', '.join(self.sources)})")
            audio = self._decode(name)
            self._signals[name] = SignalContext(name, audio, source=self.sources[name],
                                                reload=None if name == "mix" else lambda: self._decode(name))
        sig = self._signals.pop(name)
        self._signals[name] = sig  # most recently used last
        if self._budget is not None:
            self._fit(keep=name)
        return sig

    def _decode(self, name: str) -> Audio:
        """Decode one signal (at the mix's rate), first making room for it within the bound."""
        if self._budget is not None:
            header = probe_header(self.sources[name])
            if header is not None:
                self._fit(keep=name, incoming=4 * header.channels * header.frames)
        try:
            audio = self._loader(self.sources[name])
        except Exception as exc:
            self._failed[name] = exc
            raise
        self.decodes += 1
        if name != "mix" and audio.sr != self.mix.sr:
            audio = Audio(resample(audio.samples, sr_in=audio.sr, sr_out=self.mix.sr), self.mix.sr)
        return audio

    def _fit(self, keep: str, incoming: int = 0) -> None:
        """While the signals (and ``incoming`` bytes about to be decoded) hold more than the
        budget, let go of the large memoised values of the signals used longest ago (cheap to
        recompute), then of those stems' samples (a decode; never the mix's, ``keep``'s nor
        the stem used last's).
        A stem's small memoised values (onset envelopes, band fluxes, chroma) stay, so what
        was measured on it needs no second decode."""
        held = self.held_bytes + incoming
        for name in [n for n in self._signals if n != keep]:
            if held <= self._budget:
                return
            held -= self._signals[name].drop_large()
        # the stem used last stays too: a stem being measured asks for the mix in between
        # (its grid, its length), and two stems are measured together (the harmonic stems)
        for name in [n for n in self._signals if n not in ("mix", keep)][:-1]:
            if held <= self._budget:
                return
            held -= self._signals[name].drop_samples()

    def release(self, names) -> None:
        """Let go of these signals (decoded again if asked for)."""
        for name in names:
            self._signals.pop(name, None)

    def drop_large(self, names, *, beyond: int = 0) -> None:
        """Let go of the large memoised values of those of these signals that are held
        (recomputed if asked for); decodes nothing.  ``beyond``: only of a signal whose large
        values hold more than that many bytes together."""
        for name in names:
            if name in self._signals and self._signals[name].large_bytes() > beyond:
                self._signals[name].drop_large()

    @property
    def held_bytes(self) -> int:
        return sum(s.nbytes for s in self._signals.values())

    @property
    def within_bound(self) -> bool:
        """Whether the signals hold no more than ``signals_mb`` (always, unbounded)."""
        return self._budget is None or self.held_bytes <= self._budget

    @property
    def mix(self) -> SignalContext:
        return self.signal("mix")

    def stem(self, name: str) -> SignalContext:
        return self.signal(name)
