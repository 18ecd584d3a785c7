"""stable-audio-tools ``custom_metadata_module`` written by sat-mir — standard library only.

SAT loads this file by path (``custom_metadata_module`` in the dataset config)
and calls :func:`get_custom_metadata` on every fetch.  It reads ``manifest.json``
(the seed, the prompt recipe, the bins: a few KB) and looks each item up in
``items.sqlite``, and samples prompts with ``prompts.py``, all beside it, so the
folder works in a SAT environment where sat_mir is not installed.

The items are never parsed whole: SAT imports this module in every training rank and
every loader worker, and a dataset of 200,000 items would otherwise cost each of them
the whole manifest in memory.  Each process opens the SQLite file read-only on its first
lookup (its own connection: one inherited through ``fork`` is not used) and reads one row
per fetch.

Per item it returns a freshly drawn ``prompt``, every configured numeric
conditioning as a float, and ``seconds_start``/``seconds_total`` of the item in
its source track.  Prompts are seeded by (manifest seed, item id, how many times
this process has fetched the item, which loader worker and training rank this
process is), so each epoch draws a different prompt for the same item even when
SAT's loader workers and DDP ranks each keep their own fetch counts, and a run
with the same seed and layout (workers, ranks) draws the same prompts.  Unknown
items are rejected (``__reject__``) rather than trained on without conditioning.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sqlite3
import sys
import threading
import urllib.parse

__all__ = ["ITEMS_DB", "MANIFEST", "get_custom_metadata", "item_id", "item_ids", "lookup", "process_layout"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_prompts():
    spec = importlib.util.spec_from_file_location("sat_mir_prompts", os.path.join(_HERE, "prompts.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_manifest() -> dict:
    with open(os.path.join(_HERE, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


_prompts = _load_prompts()
MANIFEST = _load_manifest()
ITEMS_DB = os.path.join(_HERE, MANIFEST.get("store", "items.sqlite"))
_COUNTS: dict = {}
_LOCK = threading.Lock()
_CONNECTIONS: dict = {}  # pid -> this process's read-only connection


def _db() -> sqlite3.Connection:
    pid = os.getpid()
    conn = _CONNECTIONS.get(pid)
    if conn is None:
        _CONNECTIONS.clear()  # a parent's connection, inherited through fork: never used here
        # immutable: the file never changes while training reads it, so no locks (shared filesystems)
        uri = "file:" + urllib.parse.quote(ITEMS_DB) + "?mode=ro&immutable=1"
        conn = _CONNECTIONS[pid] = sqlite3.connect(uri, uri=True, check_same_thread=False)
    return conn


def lookup(iid: str) -> dict | None:
    """The manifest entry of one item (track_id, seconds_start, seconds_total, numbers, gain_db,
    material), or None for an id this dataset does not hold."""
    with _LOCK:
        row = _db().execute("SELECT item FROM items WHERE id = ?", (iid,)).fetchone()
    return json.loads(row[0]) if row else None


def item_ids():
    """``(item id, track id)`` of every item, in build order (for previews; training looks items up)."""
    with _LOCK:
        rows = _db().execute("SELECT id, track_id FROM items ORDER BY n").fetchall()
    return rows


def item_id(info: dict) -> str | None:
    """The sat-mir item id of a SAT ``info`` dict, whatever the dataset type."""
    if info.get("sat_mir_id"):
        return str(info["sat_mir_id"])
    for key in ("relpath", "latent_filename", "path"):
        value = info.get(key)
        if isinstance(value, str) and value:
            return os.path.splitext(os.path.basename(value))[0]
    return None


# Environment variables naming this process's place in a distributed run (torchrun,
# Lightning's DDP launcher, SLURM); any one that differs between two processes is enough.
_RANK_VARIABLES = ("RANK", "NODE_RANK", "LOCAL_RANK", "SLURM_PROCID")


def process_layout() -> str:
    """Which loader worker of which training rank this process is.

    Every DataLoader worker and every DDP rank keeps its own fetch counts (they are separate
    processes), so without this each of them would repeat the others' draws.  The worker part
    is torch's per-worker seed: the loader's base seed (drawn from the training process's
    torch RNG, so fixed by the run's seed) plus the worker id; without persistent workers the
    base seed is new every epoch, which keeps draws fresh although the counts restart.
    Without torch (or in the main process) only the rank is named.
    """
    worker = ""
    # a DataLoader worker has torch loaded already; anywhere else there is no worker to name
    data = sys.modules.get("torch.utils.data")
    info = data.get_worker_info() if data is not None else None
    if info is not None:
        worker = str(info.seed)
    rank = ",".join(os.environ.get(v, "") for v in _RANK_VARIABLES)
    return f"{worker}|{rank}"


def get_custom_metadata(info: dict, audio) -> dict:
    iid = item_id(info)
    item = lookup(iid) if iid else None
    if item is None:
        return {"__reject__": True}
    with _LOCK:
        fetch = _COUNTS[iid] = _COUNTS.get(iid, -1) + 1
    rng = random.Random(f"{MANIFEST['seed']}:{iid}:{fetch}:{process_layout()}")
    out = {
        "prompt": _prompts.sample_prompt(item["material"], rng, MANIFEST.get("recipe")),
        "seconds_start": item["seconds_start"],
        "seconds_total": item["seconds_total"],
        "sat_mir_id": iid,
    }
    out.update(item["numbers"])
    return out
