"""Decoding: every supported format, and a clear AudioReadError for every kind of bad file."""

import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from sat_mir.audio import load_audio, write_audio
from sat_mir.errors import AudioReadError

SR = 44100


@pytest.fixture(scope="module")
def sine():
    t = np.arange(SR * 2) / SR
    return np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32) * 0.5


@pytest.mark.parametrize("ext", [".wav", ".flac", ".aiff", ".ogg", ".mp3"])
def test_soundfile_formats_roundtrip(tmp_path, sine, ext):
    path = tmp_path / f"x{ext}"
    if ext == ".mp3":
        sf.write(path, sine.T, SR, format="MP3", subtype="MPEG_LAYER_III")
    else:
        write_audio(path, sine, sr=SR)
    audio = load_audio(path)
    assert audio.sr == SR and audio.channels == 2 and audio.samples.dtype == np.float32
    assert abs(audio.frames - sine.shape[1]) < SR * 0.1  # lossy codecs pad a little
    if ext in (".wav", ".flac", ".aiff"):
        np.testing.assert_allclose(audio.samples, sine, atol=1e-6)
    else:  # lossy: same level
        assert np.sqrt(np.mean(audio.samples**2)) == pytest.approx(np.sqrt(np.mean(sine**2)), rel=0.1)


def test_m4a_through_ffmpeg(tmp_path, sine):
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg must be installed (make setup installs it)"
    wav = tmp_path / "x.wav"
    write_audio(wav, sine, sr=SR)
    m4a = tmp_path / "x.m4a"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "192k", str(m4a)], check=True)
    audio = load_audio(m4a)
    assert audio.sr == SR and audio.channels == 2
    assert audio.duration_s == pytest.approx(2.0, abs=0.1)
    assert np.sqrt(np.mean(audio.samples**2)) == pytest.approx(np.sqrt(np.mean(sine**2)), rel=0.1)
    # cut off after a third, with the index at the end (the default) or at the front (faststart)
    fast = tmp_path / "fast.m4a"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(wav), "-c:a", "aac", "-movflags", "+faststart", str(fast)],
                   check=True)
    for good in (m4a, fast):
        bad = tmp_path / f"cut_{good.name}"
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
        with pytest.raises(AudioReadError, match="FFmpeg could not decode it"):
            load_audio(bad)


def test_resampling_keeps_a_tone_at_its_frequency(tmp_path, sine):
    path = tmp_path / "x.flac"
    write_audio(path, sine, sr=SR)
    audio = load_audio(path, sr=22050)
    assert audio.sr == 22050 and audio.frames == SR * 2 // 2
    spectrum = np.abs(np.fft.rfft(audio.samples[0]))
    assert np.argmax(spectrum) * 22050 / audio.frames == pytest.approx(440, abs=1)


def test_zero_byte_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(AudioReadError, match=r"e\.wav: file is empty \(0 bytes\)"):
        load_audio(tmp_path / "e.wav")


def test_text_named_mp3(tmp_path):
    (tmp_path / "t.mp3").write_text("this is a text file, not audio\n")
    with pytest.raises(AudioReadError, match="not an audio file .*text"):
        load_audio(tmp_path / "t.mp3")


def test_truncated_flac(tmp_path, sine):
    good = tmp_path / "g.flac"
    write_audio(good, np.tile(sine, (1, 5)), sr=SR)
    bad = tmp_path / "b.flac"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(AudioReadError, match=r"b\.flac: (truncated|not decodable)"):
        load_audio(bad)


def test_truncated_wav_is_caught_by_the_frame_count(tmp_path, sine):
    good = tmp_path / "g.wav"
    write_audio(good, sine, sr=SR)
    bad = tmp_path / "b.wav"
    bad.write_bytes(good.read_bytes()[:-10000])
    with pytest.raises(AudioReadError, match="truncated"):
        load_audio(bad)


def test_missing_file(tmp_path):
    with pytest.raises(AudioReadError, match="cannot open"):
        load_audio(tmp_path / "nope.wav")


@pytest.mark.parametrize("fmt,subtype,sr,ext", [("OGG", "VORBIS", SR, ".ogg"), ("OGG", "OPUS", 48000, ".opus")])
def test_truncated_ogg_and_opus(tmp_path, fmt, subtype, sr, ext):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((sr * 12, 2)) * 0.1).astype(np.float32)  # noise: no codec makes it tiny
    good = tmp_path / f"g{ext}"
    sf.write(good, x, sr, format=fmt, subtype=subtype)
    assert load_audio(good).duration_s == pytest.approx(12.0, abs=0.05)
    for cut in (3, 2):  # a third, and half: inside a page or on a page boundary
        bad = tmp_path / f"b{cut}{ext}"
        data = good.read_bytes()[: good.stat().st_size // cut]
        bad.write_bytes(data)
        with pytest.raises(AudioReadError, match="truncated"):
            load_audio(bad)
    # cut exactly after a complete page: still no end-of-stream page
    data = good.read_bytes()
    last = data.rfind(b"OggS", 0, len(data) // 2)
    (tmp_path / f"page{ext}").write_bytes(data[:last])
    with pytest.raises(AudioReadError, match="without its end-of-stream page"):
        load_audio(tmp_path / f"page{ext}")


def test_an_mp3_that_holds_only_an_id3_tag(tmp_path):
    tag = tmp_path / "tag.mp3"
    tag.write_bytes(b"ID3\x04\x00\x00\x00\x00\x02\x00" + b"\x00" * 256)  # a 256-byte tag and nothing after it
    with pytest.raises(AudioReadError, match="holds only an ID3 tag"):
        load_audio(tag)


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_a_long_file_decoded_in_blocks_equals_soundfiles_whole_read(tmp_path, channels):
    from sat_mir.audio import decode

    rng = np.random.default_rng(channels)
    x = (0.3 * rng.standard_normal((2 * decode._BLOCK + 123, channels))).astype(np.float32)
    path = tmp_path / "long.flac"
    sf.write(path, x, SR, subtype="PCM_24")
    audio = load_audio(path)
    ref, _ = sf.read(path, dtype="float32", always_2d=True)
    assert audio.samples.shape == (channels, x.shape[0]) and audio.samples.flags.c_contiguous
    np.testing.assert_array_equal(audio.samples, ref.T)
