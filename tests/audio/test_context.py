"""The analysis context: shared STFTs equal librosa's, and a bounded context gives the same
values as an unbounded one while holding less."""

from pathlib import Path

import numpy as np
import pytest

from sat_mir.audio.context import TrackContext, stft_magnitude
from sat_mir.audio.decode import Audio
from sat_mir.demo import SongSpec, render_song
from sat_mir.features import REGISTRY


def test_the_stft_magnitude_is_librosas():
    import librosa

    rng = np.random.default_rng(3)
    for n in (100, 2048, 22050 * 7 + 13):
        y = rng.standard_normal(n).astype(np.float32)
        ref = np.abs(librosa.stft(y, n_fft=2048, hop_length=512, window="hann", center=True))
        mine = stft_magnitude(y, 2048, 512)
        assert mine.shape == ref.shape and mine.flags.c_contiguous
        np.testing.assert_allclose(mine, ref, rtol=0, atol=2e-6 * float(ref.max()))


@pytest.fixture(scope="module")
def song():
    stems, _ = render_song(SongSpec("ctx", bpm=118.0, beats_per_bar=4, tonic=9, mode="minor", bars=16, seed=4))
    signals = {"mix": np.sum(list(stems.values()), axis=0), **stems}
    return {name: Audio(x, 44100) for name, x in signals.items()}


def _context(song, signals_mb):
    return TrackContext({name: Path(f"<{name}>") for name in song},
                        loader=lambda path: song[path.name.strip("<>")], signals_mb=signals_mb)


def test_a_bounded_context_gives_the_same_values_holding_less(song):
    names = ["tonal", "rhythm", "stem_rhythm", "chords", "loudness", "series", "spectral", "timbral"]
    free, tight = _context(song, None), _context(song, 8.0)  # 8 MB: less than the signals themselves
    for name in names:
        a, b = REGISTRY[name]().compute(free), REGISTRY[name]().compute(tight)
        assert a.values == b.values, name
        assert a.artifacts == b.artifacts, name
        assert tight.held_bytes < free.held_bytes
    assert free.decodes == len(song)  # each file decoded once
    assert tight.decodes > len(song)  # stems let go were decoded again
    free.release(free.stem_names)
    assert set(free._signals) == {"mix"}
