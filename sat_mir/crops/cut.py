"""Cut a track (mix and stems) into training crops, with a sidecar per crop.

Layout, inside the dataset's output folder::

    crops/<track id>/crops.json                 what was cut, from which inputs and settings
    crops/<track id>/<track id>_<n>.<ext>       the mix crop (n = 000, 001, ...)
    crops/<track id>/<track id>_<n>_<stem>.<ext>
    crops/<track id>/<track id>_<n>/features.json   the crop's sidecar (its work folder)

A crop's sidecar holds, besides the usual sections that the feature run fills:

* ``crop``: where the crop comes from (``source_track``, ``index``, ``mode``,
  ``start_sample``/``end_sample`` (exclusive) and ``start_s``/``end_s`` in the track,
  ``pad_samples``, ``duration_s`` (as written, padding included), ``position``
  (start / track duration), ``bars``, and the crop-local ``bpm`` and ``beat_count``
  from the track's beat grid; ``mode`` is the mode the crop was cut in: ``sequential``, with
  ``grid_doubt`` saying why, where the track's grid is below its confidence);
* ``inherited``: the track-level values that stay true of any part of the track
  (the keys whose spec says ``holds="track"``: meter, key, model tags...); a crop's own
  measured features never get overwritten by
  them (the seed copied track ``bpm``/``beat_count`` over the crop's own).

``crops.json`` is written last: a killed run finds it missing or stale and cuts the
track again; files are replaced atomically, so nothing half-written is ever read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sat_mir.audio.context import TrackContext
from sat_mir.audio.decode import probe_header
from sat_mir.audio.write import write_audio
from sat_mir.catalog import Track
from sat_mir.crops.plan import (MODES, CropSpan, bar_multiple_for, grid_doubt, no_crops_reason, plan_crops,
                                pulses_per_bar)
from sat_mir.audio.headroom import check_peak_policy, fit_full_scale
from sat_mir.audio.resample import resample
from sat_mir.errors import AudioRangeError, ConfigError, SatMirError, SidecarError
from sat_mir.features.metrical import tempo_from_beats
from sat_mir.features.registry import track_wide_keys
from sat_mir.fsutil import atomic_write_json
from sat_mir.store.dataset import INHERITED_RENAMED, crop_tracks, read_crops_manifest
from sat_mir.store.layout import crop_audio_name, crop_folder, crop_id, crop_of, crops_manifest_path, sidecar_path
from sat_mir.store.layout import track_dir
from sat_mir.store.sidecar import read_sidecar, update_sections

__all__ = ["CROPS_VERSION", "CropSettings", "cut_track"]

log = logging.getLogger("sat_mir.crops")

CROPS_VERSION = "5"  # 2: the time signature and the confidences of tempo, meter and key are inherited;
# 3: div4 counts bars of 2 beats in pairs (plan.bar_multiple_for); 4: pairs from rhythm's bar_pair_phase;
# 5: a grid below its confidence is not cut on (plan.grid_doubt; settings.doubtful_grid)

DOUBTFUL_GRID = ("sequential", "none", "grid")

@dataclass(frozen=True)
class CropSettings:
    """How to cut crops (Hydra group ``crops``; see :mod:`sat_mir.crops.plan` for the modes).

    length : samples per crop at the track's own rate (2097152 ≈ 47.5 s at 44.1 kHz).
    min_fraction : crops shorter than this fraction of ``length`` follow ``short``.
    short : "drop" or "pad" (pad with silence to ``length``).
    snap_ms : zero-crossing snap window before each downbeat cut, ms (0 = off).
    fade_ms : linear fade-in and fade-out of every crop, ms (0 = off).
    fmt : "flac" (24-bit) or "wav" (32-bit float).
    stems : which stems to cut with the mix (those the track has).
    bar_multiple : ``div4``'s bar multiple.
    silence_db : the first window louder than this (dBFS peak) starts the music.
    features : run the extractors on the crops (a run option: not part of the cut's identity).
    peak_policy : a track over full scale is "normalize"d (one gain for mix and stems, logged
        and recorded as the crop's ``gain_db``), "reject"ed (no crops) or "clip"ped.
    min_tempo_confidence, min_meter_confidence, min_downbeat_confidence : the downbeat modes cut
        on the beat grid only when the rhythm extractor's confidences are at least these
        (:func:`grid_doubt`).
    doubtful_grid : what a track whose grid is below them gets: "sequential" crops (cut from
        its first sound, no bar lines claimed), "none", or crops on the "grid" all the same.
        With "sequential", a track in which the rhythm extractor found no beat grid at all is
        cut in sequence too; otherwise it gets no crops, and the run names it with the reason.
    """

    mode: str = "div4"
    length: int = 2097152
    min_fraction: float = 0.75
    short: str = "drop"
    snap_ms: float = 10.0
    fade_ms: float = 10.0
    fmt: str = "flac"
    stems: tuple[str, ...] = ("drums", "bass", "other", "vocals")
    bar_multiple: int = 4
    silence_db: float = -72.0
    features: bool = True
    peak_policy: str = "normalize"
    min_tempo_confidence: float = 0.8
    min_meter_confidence: float = 0.5
    min_downbeat_confidence: float = 0.7
    doubtful_grid: str = "sequential"

    def __post_init__(self):
        check_peak_policy(self.peak_policy, "crops.peak_policy")
        if self.doubtful_grid not in DOUBTFUL_GRID:
            raise ConfigError(f"crops.doubtful_grid must be one of {list(DOUBTFUL_GRID)}, got {self.doubtful_grid!r}")
        for key, lo in self.min_confidence.items():
            if not isinstance(lo, (int, float)) or isinstance(lo, bool) or not 0.0 <= lo <= 1.0:
                raise ConfigError(f"crops.min_{key} must be a number in [0, 1], got {lo!r}")
        if self.mode not in MODES:
            raise ConfigError(f"crops.mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.fmt not in ("flac", "wav"):
            raise ConfigError(f"crops.fmt must be 'flac' or 'wav', got {self.fmt!r}")
        if not 0.0 < self.min_fraction <= 1.0:
            raise ConfigError(f"crops.min_fraction must be in (0, 1], got {self.min_fraction!r}")
        if self.length <= 0 or self.snap_ms < 0 or self.fade_ms < 0 or self.bar_multiple < 1:
            raise ConfigError("crops.length and crops.bar_multiple must be positive, snap_ms and fade_ms >= 0")

    @property
    def min_confidence(self) -> dict[str, float]:
        """Confidence key -> the minimum for cutting on the grid (:func:`sat_mir.crops.plan.grid_doubt`)."""
        return {"tempo_confidence": self.min_tempo_confidence, "meter_confidence": self.min_meter_confidence,
                "downbeat_confidence": self.min_downbeat_confidence}

    @property
    def needs_downbeats(self) -> bool:
        return self.mode != "sequential"

    @property
    def config_hash(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k != "features"}
        blob = json.dumps(d, sort_keys=True, default=list)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass
class CutOutcome:
    track_id: str
    crops: list[Track] = field(default_factory=list)
    cut: bool = False  # False: the crops on disk were current
    error: str | None = None
    no_crops: str | None = None  # why the track gave no crop, when it gave none
    doubt: str | None = None  # why its beat grid was not cut on (settings.doubtful_grid), when it was not


def cut_track(track: Track, output: Path, settings: CropSettings, *, overwrite: bool = False) -> CutOutcome:
    """Cut ``track`` into crops unless ``crops.json`` says the crops on disk are current.

    Needs the track's sidecar (and, for the downbeat modes, its ``downbeats.txt`` from the
    ``rhythm`` extractor).  Errors come back in the outcome, never as exceptions.
    """
    outcome = CutOutcome(track.id)
    try:
        try:
            inputs, features, grid, beats, no_grid = _track_state(track, output, settings)
        except _NoDownbeats as exc:
            outcome.no_crops = str(exc)
            return outcome
        folder = crop_folder(output, track.id)
        doubt = no_grid or (grid_doubt(features, settings.min_confidence)
                            if settings.needs_downbeats and settings.doubtful_grid != "grid" else None)
        key = {"version": CROPS_VERSION, "config_hash": settings.config_hash, "inputs": inputs,
               "grid": _digest(grid), "beats": _digest(beats), "pair_phase": features.get("bar_pair_phase"),
               "doubt": doubt}
        outcome.doubt = doubt
        manifest = read_crops_manifest(output, track.id)
        if not overwrite and manifest and all(manifest.get(k) == v for k, v in key.items()):
            outcome.crops = crop_tracks(manifest, folder)
            outcome.no_crops = manifest.get("no_crops")
            if all(p.is_file() for c in outcome.crops for p in c.sources.values()):
                return outcome
        if doubt and settings.doubtful_grid == "none":
            header = probe_header(track.mix)  # the rate for crops.json, without decoding the mix
            outcome.crops, outcome.no_crops = _no_crops(
                output, track, key, header.sr if header else TrackContext(track.sources).mix.sr,
                f"its beat grid is not trusted ({doubt}; crops.doubtful_grid=none)")
        else:
            outcome.crops, outcome.no_crops = _cut(track, output, settings, key, features, grid, beats,
                                                   "sequential" if doubt else settings.mode)
        outcome.cut = True
    except SatMirError as exc:
        outcome.error = str(exc)
    return outcome


# ----------------------------------------------------------------------------- internals


def _track_state(track: Track, output: Path, settings: CropSettings):
    """(inputs, features, downbeats, beats, why a downbeat mode has no grid to cut on: None when
    it has one or needs none)."""
    sidecar = read_sidecar(sidecar_path(output, track.id))
    inputs = {k: v.get("sha256") for k, v in (sidecar["track"].get("inputs") or {}).items()}
    if not inputs.get("mix"):
        raise SidecarError(f"{track.rel}: no features yet; run the track extractors before cutting crops")
    work = track_dir(output, track.id)
    grid = _read_times(work / "downbeats.txt")
    beats = _read_times(work / "beats.txt")
    no_grid = None
    if settings.needs_downbeats and grid is None:
        rhythm = sidecar["provenance"].get("rhythm") or {}
        absent, err = (rhythm.get("absent") or {}).get("bpm"), rhythm.get("error")
        if (absent or err) and settings.doubtful_grid == "sequential":
            # no beat found (a drone, a track too short): the surest doubt of all, and its audio
            # is still music to train on
            no_grid = f"no beat grid: {absent or err}"
        elif absent:  # not a failure: the track has no beat to cut on
            raise _NoDownbeats(f"crops.mode={settings.mode} cuts on downbeats, and the track has none: "
                               f"{absent} (crops.mode=sequential needs none)")
        else:
            raise ConfigError(f"crops.mode={settings.mode} needs the track's downbeats, and "
                              + (f"the rhythm extractor failed: {err}" if err else "the rhythm extractor has not run")
                              + " (crops.mode=sequential needs none)")
    return inputs, sidecar["features"], grid, beats, no_grid


class _NoDownbeats(SatMirError):
    """The rhythm extractor found no beat to cut on (its values are absent, with a reason)."""


def _read_times(path: Path) -> np.ndarray | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return np.array([float(t) for t in text.split()], dtype=np.float64)


def _digest(times: np.ndarray | None) -> str | None:
    return None if times is None else hashlib.sha1(np.round(times, 6).tobytes()).hexdigest()[:16]


def _cut(track: Track, output: Path, settings: CropSettings, key: dict, features: dict,
         grid: np.ndarray | None, beats: np.ndarray | None, mode: str) -> tuple[list[Track], str | None]:
    """Write the crops in ``mode`` (``settings.mode``, or "sequential" where the grid is not
    trusted); return them, and why there are none when there are none."""
    ctx = TrackContext(track.sources)
    mix = ctx.mix
    sr = mix.sr
    stems = [s for s in settings.stems if s in track.stems]
    signals = {"mix": mix.samples, **{s: _fit(_at_rate(ctx.stem(s), sr), mix.samples.shape) for s in stems}}
    try:
        signals, headroom = fit_full_scale(signals, settings.peak_policy)
    except AudioRangeError as exc:
        return _no_crops(output, track, key, sr, str(exc))
    if headroom.changed:
        log.warning("%s: %s (crops.peak_policy=%s)", track.rel, headroom.describe(), settings.peak_policy)
    min_length = int(np.ceil(settings.min_fraction * settings.length))
    pulses = pulses_per_bar(features.get("beats_per_bar"), features.get("time_signature"))
    multiple = bar_multiple_for(settings.bar_multiple, pulses)
    spans = plan_crops(
        mode, mix.mono, sr=sr, length=settings.length, min_length=min_length, downbeats_s=grid,
        snap=int(round(settings.snap_ms * 1e-3 * sr)), short=settings.short,
        bar_multiple=multiple, silence_db=settings.silence_db,
        pair_phase=features.get("bar_pair_phase") if pulses == 2 else None,
    )
    no_crops = None if spans else no_crops_reason(
        mode, mix.mono, sr=sr, length=settings.length, min_length=min_length, downbeats_s=grid,
        bar_multiple=multiple, silence_db=settings.silence_db)
    folder = crop_folder(output, track.id)
    folder.mkdir(parents=True, exist_ok=True)
    fade = int(round(settings.fade_ms * 1e-3 * sr))
    inherited = {k: features[k] for k in track_wide_keys() if k in features}
    inherited.update({new: features[old] for old, new in INHERITED_RENAMED.items() if old in features})
    duration_s = mix.samples.shape[1] / sr
    entries, crops = [], []
    for span in spans:
        cid = crop_id(track.id, span.index)
        files = {}
        for name, x in signals.items():
            fname = crop_audio_name(cid, name, settings.fmt)
            write_audio(folder / fname, _materialise(x, span, fade), sr=sr)
            files[name] = fname
        info = {**_crop_info(track.id, span, mode, sr, duration_s, beats), "gain_db": headroom.gain_db}
        if key["doubt"]:
            info["grid_doubt"] = key["doubt"]
        update_sections(sidecar_path(output, cid), crop=info, inherited=inherited)
        entries.append({"id": cid, "mix": files.pop("mix"), "stems": files, **info})
        crops.append(Track(id=cid, name=cid, rel=f"crops/{track.id}/{cid}", mix=folder / entries[-1]["mix"],
                           stems={s: folder / f for s, f in files.items()}, layout="crop"))
    _remove_stale(folder, track.id, keep={c.id for c in crops})
    manifest = {**key, "track": track.id, "sample_rate": sr, "crops": entries}
    if no_crops:
        manifest["no_crops"] = no_crops
    atomic_write_json(crops_manifest_path(output, track.id), manifest)
    return crops, no_crops


def _no_crops(output: Path, track: Track, key: dict, sr: int, reason: str) -> tuple[list[Track], str]:
    folder = crop_folder(output, track.id)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale(folder, track.id, keep=set())
    atomic_write_json(crops_manifest_path(output, track.id), {**key, "track": track.id, "sample_rate": sr, "crops": [],
                                          "no_crops": reason})
    return [], reason


def _at_rate(sig, sr: int) -> np.ndarray:
    """A stem's samples at the mix's rate: a stem file at another rate is resampled, never
    cut sample for sample against the mix."""
    return sig.samples if sig.sr == sr else resample(sig.samples, sr_in=sig.sr, sr_out=sr)


def _fit(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A stem at the mix's channel count and length (a stem a few samples off is padded or cut)."""
    ch, n = shape
    if x.shape[0] != ch:
        x = np.repeat(x.mean(axis=0, keepdims=True), ch, axis=0)
    if x.shape[1] < n:
        x = np.pad(x, ((0, 0), (0, n - x.shape[1])))
    return x[:, :n]


def _materialise(x: np.ndarray, span: CropSpan, fade: int) -> np.ndarray:
    """The span's samples with linear fades at both ends of the audio, then its padding."""
    y = np.array(x[:, span.start:span.end], dtype=np.float32)
    f = min(fade, y.shape[1] // 2)
    if f > 0:
        ramp = (np.arange(f, dtype=np.float32) + 0.5) / f
        y[:, :f] *= ramp
        y[:, -f:] *= ramp[::-1]
    if span.pad:
        y = np.pad(y, ((0, 0), (0, span.pad)))
    return y


def _crop_info(track_id: str, span: CropSpan, mode: str, sr: int, duration_s: float,
               beats: np.ndarray | None) -> dict[str, Any]:
    start_s, end_s = span.start / sr, span.end / sr
    info: dict[str, Any] = {
        "source_track": track_id, "index": span.index, "mode": mode, "sample_rate": sr,
        "start_sample": span.start, "end_sample": span.end, "pad_samples": span.pad, "samples": span.frames,
        "start_s": round(start_s, 6), "end_s": round(end_s, 6), "duration_s": round(span.frames / sr, 6),
        "position": round(start_s / duration_s, 6) if duration_s > 0 else 0.0,
        "bars": span.bars, "track_duration_s": round(duration_s, 6),
        "grid_start_s": span.grid_start, "grid_end_s": span.grid_end,
    }
    if beats is not None:
        # count on the grid the cut came from: the zero-crossing snap may move a cut a few ms
        # past the downbeat's own beat
        lo = span.grid_start if span.grid_start is not None else start_s
        hi = span.grid_end if span.grid_end is not None else end_s
        inside = beats[(beats >= lo - 1e-3) & (beats < hi - 1e-3)]
        info["beat_count"] = int(inside.size)
        # two beats give one interval: enough for a local tempo; fewer leave bpm out
        info["bpm"] = round(tempo_from_beats(inside), 3) if inside.size >= 2 else None
    return info


def _remove_stale(folder: Path, track_id: str, *, keep: set[str]) -> None:
    """Crops of an earlier cut that this cut did not make again (only sat-mir's own files)."""
    for path in folder.iterdir():
        cid = crop_of(path.name, track_id)
        if cid is None or cid in keep:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
