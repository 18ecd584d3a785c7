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
    less = []
    for name in names:
        a, b = REGISTRY[name]().compute(free), REGISTRY[name]().compute(tight)
        assert a.values == b.values, name
        assert a.artifacts == b.artifacts, name
        assert tight.held_bytes <= free.held_bytes  # the mix and the two stems used last at most
        less.append(tight.held_bytes < free.held_bytes)
    assert sum(less) >= len(names) - 2
    assert free.decodes == len(song)  # each file decoded once
    assert tight.decodes > len(song)  # stems let go were decoded again
    free.release(free.stem_names)
    assert set(free._signals) == {"mix"}


def test_a_stem_let_go_keeps_its_small_results_and_decodes_again_only_for_its_samples(song):
    one_stem = song["drums"].samples.nbytes / 2**20
    ctx = _context(song, 2.5 * one_stem)  # room for the mix and one stem
    drums = ctx.stem("drums")
    env = drums.onset_envelope()
    first = drums.samples.copy()
    for name in ("bass", "other"):
        ctx.stem(name).onset_envelope()
    assert drums.nbytes < one_stem * 2**20  # its samples were let go ...
    decodes = ctx.decodes
    assert drums.onset_envelope() is env  # ... its onset envelope was not
    assert ctx.decodes == decodes
    np.testing.assert_array_equal(drums.samples, first)  # the samples come back, decoded again
    assert ctx.decodes == decodes + 1


def test_stems_measured_one_after_the_other_are_decoded_once_within_a_tight_bound(song):
    from sat_mir.run.worker import _prepare_stems

    names = ["loudness", "rhythm", "stem_rhythm", "tonal", "chords", "series"]
    one_stem = song["drums"].samples.nbytes / 2**20
    free, tight = _context(song, None), _context(song, 3.5 * one_stem)  # the mix and about two stems
    extractors = [REGISTRY[name]() for name in names]
    _prepare_stems(tight, extractors)
    assert tight.decodes == len(song)
    for ex in extractors:
        a, b = ex.compute(free), ex.compute(tight)
        assert a.values == b.values, ex.name
        assert a.artifacts == b.artifacts, ex.name
    assert tight.decodes == len(song)  # what compute read of the stems was measured in the one pass
    unprepared = _context(song, 3.5 * one_stem)
    for ex in extractors:
        ex.compute(unprepared)
    assert unprepared.decodes > len(song)  # the same bound without it decodes stems again


def test_a_signals_large_values_are_let_go_only_where_they_hold_more_than_asked(song):
    ctx = _context(song, None)
    env = ctx.mix.onset_envelope()
    large = ctx.mix.memo(("test", "large"), lambda: np.ones(3 * 2**20, dtype=np.float32))  # 12 MB
    assert ctx.mix.large_bytes() == large.nbytes  # the envelope is small
    ctx.drop_large(["mix"], beyond=large.nbytes)  # holding no more than that: kept
    assert ctx.mix.memo(("test", "large"), lambda: None) is large
    ctx.drop_large(["mix"], beyond=large.nbytes - 1)  # more than that: let go, the small kept
    assert ctx.mix.large_bytes() == 0
    assert ctx.mix.memo(("test", "large"), lambda: None) is None
    assert ctx.mix.onset_envelope() is env
    assert ctx.within_bound  # unbounded
    tight, roomy = _context(song, 8.0), _context(song, 64.0)  # less and more than the mix's 11 MB
    for c in (tight, roomy):
        c.mix.onset_envelope()
    assert not tight.within_bound and roomy.within_bound
