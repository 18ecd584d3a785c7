"""Decode audio files into float32 ``[channels, frames]`` arrays.

libsndfile (via soundfile) handles wav/flac/aiff/ogg/opus/mp3; FFmpeg's command
line decodes what libsndfile cannot (m4a/aac/mp4).  Every failure is an
:class:`~sat_mir.errors.AudioReadError` naming the file and the reason, so the
runner can log one line and move on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from sat_mir.audio.resample import resample
from sat_mir.errors import AudioReadError

__all__ = ["Audio", "FFMPEG_ONLY_SUFFIXES", "Header", "load_audio", "probe_frames", "probe_header"]

# Containers libsndfile has no decoder for.
FFMPEG_ONLY_SUFFIXES = frozenset({".m4a", ".aac", ".mp4"})


@dataclass(frozen=True)
class Audio:
    """Decoded audio: ``samples`` is float32 ``[channels, frames]`` at ``sr`` Hz."""

    samples: np.ndarray
    sr: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[-1])

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.sr)


def load_audio(path: str | Path, *, sr: int | None = None) -> Audio:
    """Decode ``path`` completely; resample to ``sr`` Hz when given.

    Raises
    ------
    AudioReadError
        The file is missing, empty, not audio, truncated, or holds no samples.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioReadError(path, f"cannot open ({exc.strerror or exc})") from exc
    if size == 0:
        raise AudioReadError(path, "file is empty (0 bytes)")
    _sniff(path, size)
    _check_riff_complete(path, size)
    _check_ogg_complete(path, size)
    if path.suffix.lower() in FFMPEG_ONLY_SUFFIXES:
        samples, native_sr = _decode_ffmpeg(path)
    else:
        samples, native_sr = _decode_soundfile(path)
    if samples.shape[-1] == 0:
        raise AudioReadError(path, "holds no audio frames")
    if not _all_finite(samples):
        raise AudioReadError(path, "decoded samples contain NaN or infinity")
    if sr is not None and sr != native_sr:
        samples = resample(samples, sr_in=native_sr, sr_out=sr)
        native_sr = sr
    return Audio(samples=samples, sr=int(native_sr))


@dataclass(frozen=True)
class Header:
    """What a file's header says: frames, sample rate (Hz) and channels."""

    frames: int
    sr: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.frames / float(self.sr)


def probe_header(path: str | Path) -> Header | None:
    """The header of ``path`` without decoding, or None when unknown (unreadable, or a
    container whose length only decoding tells)."""
    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - any header problem means "unknown"
        return None
    if info.frames <= 0 or info.samplerate <= 0:
        return None
    return Header(int(info.frames), int(info.samplerate), int(info.channels))


def probe_frames(path: str | Path) -> tuple[int, int] | None:
    """(frames, sr) from the header without decoding, or None when unknown."""
    h = probe_header(path)
    return (h.frames, h.sr) if h else None


# Frames decoded per read: the whole file is never held twice (a 10-minute stereo track read
# at once and then transposed held 2 x 200 MB, the peak of a long track's extraction).
_BLOCK = 1 << 18


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(str(path)) as f:
            declared = f.frames
            native_sr = f.samplerate
            if declared <= 0:  # a stream that does not say its length: read it whole
                data = np.ascontiguousarray(f.read(dtype="float32", always_2d=True).T)
            else:
                data = np.empty((f.channels, declared), dtype=np.float32)
                got = 0
                while got < declared:
                    block = f.read(min(_BLOCK, declared - got), dtype="float32", always_2d=True)
                    if block.shape[0] == 0:
                        break
                    data[:, got:got + block.shape[0]] = block.T
                    got += block.shape[0]
                # A truncated FLAC/WAV declares more frames in its header than it holds;
                # libsndfile then returns fewer without complaint.
                if got < declared:
                    raise AudioReadError(path, f"truncated (decoded {got} of {declared} frames declared in the header)")
    except sf.LibsndfileError as exc:
        raise AudioReadError(path, f"not decodable as audio ({_clean(exc)})") from exc
    except RuntimeError as exc:  # soundfile raises plain RuntimeError for some read errors
        raise AudioReadError(path, f"decoding failed ({_clean(exc)})") from exc
    return data, int(native_sr)


def _all_finite(x: np.ndarray) -> bool:
    """``np.isfinite(x).all()`` a block at a time (no boolean copy of the whole signal)."""
    return all(np.isfinite(x[:, s:s + _BLOCK]).all() for s in range(0, x.shape[-1], _BLOCK))


def _decode_ffmpeg(path: Path) -> tuple[np.ndarray, int]:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioReadError(
            path, f"decoding {path.suffix} needs FFmpeg, which is not installed (apt-get install ffmpeg)"
        )
    # A float WAV in a private temp folder carries channels and rate with it; -xerror makes
    # a damaged stream fail instead of decoding to a silently shorter result.
    with tempfile.TemporaryDirectory(prefix="sat-mir-decode-") as tmp:
        out = Path(tmp) / "decoded.wav"
        proc = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-v", "error", "-xerror", "-i", str(path),
             "-map", "0:a:0", "-c:a", "pcm_f32le", str(out)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not out.exists():
            lines = proc.stderr.strip().splitlines()
            reason = lines[-1] if lines else f"exit status {proc.returncode}"
            raise AudioReadError(path, f"FFmpeg could not decode it ({reason})")
        try:
            return _decode_soundfile(out)
        except AudioReadError as exc:
            raise AudioReadError(path, exc.reason) from exc


# Leading bytes of the containers we read.  Checked before decoding so that a
# text file named .mp3 gets a plain answer instead of a decoder's resync chatter.
_MAGIC = (b"RIFF", b"RF64", b"FORM", b"fLaC", b"OggS", b"ID3", b"caff")


def _sniff(path: Path, size: int) -> None:
    with open(path, "rb") as f:
        head = f.read(12)
    if head.startswith(b"ID3") and len(head) >= 10:
        # an ID3v2 tag's size is a 28-bit "syncsafe" integer; a file that ends inside it
        # holds a tag and no audio (libsndfile calls that "not a regular file")
        tag = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
        if tag >= size:
            raise AudioReadError(path, f"holds only an ID3 tag ({size} bytes), no audio frames")
        return
    if head.startswith(_MAGIC) or head[4:8] == b"ftyp":
        return
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:  # MPEG audio frame sync
        return
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    kind = "text" if head and printable == len(head) else f"bytes {head[:4].hex(' ')}"
    raise AudioReadError(path, f"not an audio file (its content starts with {kind}, no audio container signature)")


def _check_riff_complete(path: Path, size: int) -> None:
    """libsndfile quietly shortens a WAV whose data chunk runs past the end of the file;
    a cut-off download must be an error, not a shorter track."""
    with open(path, "rb") as f:
        if f.read(4) != b"RIFF":
            return
        f.seek(12)
        while True:
            header = f.read(8)
            if len(header) < 8:
                return
            chunk, length = header[:4], int.from_bytes(header[4:], "little")
            if chunk == b"data":
                if length != 0xFFFFFFFF and f.tell() + length > size:
                    have = size - f.tell()
                    raise AudioReadError(path, f"truncated (data chunk declares {length} bytes, file holds {have})")
                return
            f.seek(length + (length & 1), 1)


def _check_ogg_complete(path: Path, size: int) -> None:
    """An Ogg stream (Vorbis, Opus, FLAC in Ogg) ends with a page flagged end-of-stream;
    libsndfile decodes a cut-off file to a shorter track without a word, so look for it."""
    with open(path, "rb") as f:
        if f.read(4) != b"OggS":
            return
        tail_start = max(0, size - 65536 - 282)  # the largest page: 27 + 255 + 255 * 255 bytes
        f.seek(tail_start)
        tail = f.read()
    at = tail.rfind(b"OggS")
    while at >= 0:
        page = tail[at:]
        if len(page) >= 27 and page[4] == 0:  # stream structure version 0: a real page header
            n_seg = page[26]
            body = sum(page[27:27 + n_seg]) if len(page) >= 27 + n_seg else None
            complete = body is not None and 27 + n_seg + body <= len(page)
            if complete and page[5] & 0x04:
                return
            raise AudioReadError(path, "truncated (the Ogg stream stops "
                                 + ("inside a page" if not complete else "without its end-of-stream page") + ")")
        at = tail.rfind(b"OggS", 0, at)
    raise AudioReadError(path, "truncated (no complete Ogg page at its end)")


def _clean(exc: Exception) -> str:
    text = str(exc)
    # libsndfile repeats the path; keep only the reason
    return text.split(": ", 1)[-1] if ": " in text else text
