"""The separation stage of ``extract``: stems for every track that has none.

Tracks whose stems the user provides (the seed layout, or ``<name>_<stem>`` files) are
never separated.  Generated stems go into the track's work folder,
``tracks/<id>/stems/<stem>.<ext>``, with ``stems/separation.json`` written last
(model, settings, the mix's SHA-256, the files).  A track whose ``separation.json``
matches its mix and the settings is not separated again; a killed run redoes only the
track it was in.  The model is loaded once, in this process (one GPU, one copy of the
weights), or once per Ray actor (``executor=ray``: one per GPU), and only when some track
needs it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from sat_mir.audio.decode import load_audio
from sat_mir.catalog import Track
from sat_mir.errors import AudioReadError, SatMirError
from sat_mir.fsutil import atomic_write_json
from sat_mir.run.executor import LOCAL, ExecutorSettings, execute_batches
from sat_mir.run.pool import Crashed
from sat_mir.store.sidecar import fingerprint_inputs, read_sidecar, sidecar_path, track_dir

__all__ = ["SeparationSettings", "SeparationSummary", "attach_stems", "separate_tracks", "stems_folder"]

log = logging.getLogger("sat_mir.separation")

MANIFEST = "separation.json"
STAGE_VERSION = "1"


@dataclass(frozen=True)
class SeparationSettings:
    """Hydra group ``separation`` (see ``conf/separation/htdemucs.yaml`` for each option)."""

    enabled: bool = True
    model: str = "htdemucs"
    models_dir: str | None = None  # the sat-mir models folder; Demucs reads its demucs/ sub-folder
    device: str = "auto"
    segment: float | None = None
    overlap: float = 0.25
    shifts: int = 0
    keep_extra: bool = False
    batch_segments: int | None = None
    fmt: str = "flac"
    subtype: str | None = None
    clip: str = "rescale"
    bitrate_kbps: int | None = None
    compression_level: float | None = None

    @property
    def config_hash(self) -> str:
        # device and the models folder change where and how fast, not what comes out
        d = {k: v for k, v in dataclasses.asdict(self).items()
             if k not in ("enabled", "device", "models_dir", "batch_segments")}
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class SeparationSummary:
    separated: int = 0
    current: int = 0  # generated earlier and still current
    provided: int = 0  # the user's own stems
    failed: dict[str, str] = field(default_factory=dict)  # track rel → reason
    unavailable: str | None = None  # the model could not be loaded (said once)

    def line(self) -> str:
        text = (f"separation: {self.separated} separated, {self.current} already separated, "
                f"{self.provided} with their own stems")
        if self.failed:
            text += f", {len(self.failed)} failed"
        return text


def stems_folder(output: Path, track_id: str) -> Path:
    return track_dir(output, track_id) / "stems"


def attach_stems(tracks: list[Track], output: Path, settings: SeparationSettings) -> tuple[list[Track], list[Track]]:
    """(tracks with stems attached where current generated stems exist, tracks still lacking stems)."""
    out, missing = [], []
    for t in tracks:
        if t.stems:
            out.append(t)
            continue
        stems = _current_stems(t, output, settings)
        if stems is None:
            missing.append(t)
            out.append(t)
        else:
            out.append(dataclasses.replace(t, stems=stems))
    return out, missing


def separate_tracks(tracks: list[Track], output: Path, settings: SeparationSettings, *,
                    progress: bool = True, executor: ExecutorSettings = LOCAL
                    ) -> tuple[list[Track], SeparationSummary]:
    """Separate every track without stems; return the tracks with their stems attached.

    ``executor``: in this process (local), or on Ray actors that load the model once each
    (``executor.num_gpus`` GPUs per actor, one per GPU by default; :mod:`sat_mir.run.executor`).
    """
    summary = SeparationSummary(provided=sum(1 for t in tracks if t.stems))
    tracks, missing = attach_stems(tracks, output, settings)
    summary.current = sum(1 for t in tracks if t.stems) - summary.provided
    if not missing:
        return tracks, summary
    try:
        from sat_mir.extras import require

        require("separation", f"stem separation (separation={settings.model})")
        if executor.kind == "local":
            device = str(_separator(settings).device)
        else:
            device = f"Ray actors ({executor.num_gpus:g} GPU each)"
    except SatMirError as exc:
        summary.unavailable = str(exc)
        log.error("separation cannot run, so %d track(s) without stems get no stem features this run: %s",
                  len(missing), exc)
        return tracks, summary
    log.info("separating %d track(s) with Demucs %s on %s", len(missing), settings.model, device)
    done: dict[str, Track] = {}
    work = functools.partial(separate_batch, output=output, settings=settings)
    with tqdm(total=len(missing), desc="separate", unit="track", disable=not progress, dynamic_ncols=True) as bar:
        for batch, results in execute_batches(work, [[t] for t in missing], executor):
            if isinstance(results, Crashed):
                results = [results.reason] * len(batch)
            for t, result in zip(batch, results):
                if isinstance(result, Track):
                    done[t.id] = result
                    summary.separated += 1
                elif isinstance(result, _Unavailable):  # the actors could not load the model
                    summary.unavailable = str(result)
                else:
                    summary.failed[t.rel] = result
                    log.error("FAILED %s: separation: %s", t.rel, result)
            bar.update(len(batch))
    _SEPARATORS.clear()  # the model's memory goes back before the features run
    if summary.unavailable:
        log.error("separation cannot run, so %d track(s) without stems get no stem features this run: %s",
                  len(missing) - summary.separated, summary.unavailable)
    return [done.get(t.id, t) for t in tracks], summary


class _Unavailable(str):
    """The model could not be loaded where the batch ran (said once, not once per track)."""


_SEPARATORS: dict[str, object] = {}


def _separator(settings: SeparationSettings):
    """The Demucs separator for ``settings``, loaded once per process (an actor keeps it)."""
    key = json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)
    if key not in _SEPARATORS:
        from sat_mir.separation.demucs_separator import load_separator

        _SEPARATORS.clear()  # one model in memory at a time
        _SEPARATORS[key] = load_separator(
            settings.model, models_dir=_demucs_dir(settings), device=_device(settings), segment=settings.segment,
            overlap=settings.overlap, shifts=settings.shifts, keep_extra=settings.keep_extra,
            batch_segments=settings.batch_segments)
    return _SEPARATORS[key]


def separate_batch(tracks: list[Track], *, output: Path, settings: SeparationSettings) -> list[Track | str]:
    """Separate each track (in this process, or on a Ray actor): the track with its stems, or
    the reason it failed."""
    try:
        separator = _separator(settings)
    except SatMirError as exc:
        return [_Unavailable(str(exc))] * len(tracks)
    out: list[Track | str] = []
    for t in tracks:
        try:
            out.append(_separate_one(t, output, settings, separator))
        except SatMirError as exc:
            out.append(exc.reason if isinstance(exc, AudioReadError) else str(exc))
    return out


def _demucs_dir(settings: SeparationSettings) -> Path | None:
    """``<models_dir>/demucs`` when it exists (a Demucs local repository), else None: the caches."""
    from sat_mir.models.spec import default_models_dir

    base = Path(settings.models_dir).expanduser() if settings.models_dir else default_models_dir()
    folder = base / "demucs"
    return folder if folder.is_dir() else None


def _device(settings: SeparationSettings) -> str | None:
    return None if settings.device in (None, "auto") else settings.device


def _mix_hash(track: Track, output: Path) -> str:
    try:
        known = read_sidecar(sidecar_path(output, track.id))["track"].get("inputs")
    except SatMirError:
        known = None
    try:
        return fingerprint_inputs({"mix": track.mix}, known)["mix"]["sha256"]
    except OSError as exc:
        raise AudioReadError(track.mix, exc.strerror or str(exc)) from exc


def _current_stems(track: Track, output: Path, settings: SeparationSettings) -> dict[str, Path] | None:
    folder = stems_folder(output, track.id)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if manifest.get("version") != STAGE_VERSION or manifest.get("config_hash") != settings.config_hash:
        return None
    stems = {s: folder / f for s, f in manifest.get("stems", {}).items()}
    if not stems or not all(p.is_file() for p in stems.values()):
        return None
    try:
        if manifest.get("mix_sha256") != _mix_hash(track, output):
            return None
    except SatMirError:
        return None
    return stems


def _separate_one(track: Track, output: Path, settings: SeparationSettings, separator) -> Track:
    from sat_mir.separation.stem_io import write_stems

    mix_sha = _mix_hash(track, output)
    audio = load_audio(track.mix)
    stems = separator.separate(audio.samples, audio.sr)
    folder = stems_folder(output, track.id)
    (folder / MANIFEST).unlink(missing_ok=True)  # stale until the new stems are all written
    written = write_stems(stems, folder, sr=audio.sr, fmt=settings.fmt, subtype=settings.subtype,
                          clip=settings.clip, bitrate_kbps=settings.bitrate_kbps,
                          compression_level=settings.compression_level)
    atomic_write_json(folder / MANIFEST, {
        "version": STAGE_VERSION, "config_hash": settings.config_hash, "model": settings.model,
        "settings": dataclasses.asdict(settings), "mix_sha256": mix_sha, "gain": written.gain,
        "device": str(separator.device), "stems": {s: p.name for s, p in written.paths.items()},
    })
    return dataclasses.replace(track, stems=dict(written.paths))
