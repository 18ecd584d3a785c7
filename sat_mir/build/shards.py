"""WebDataset shards for SAT's ``wds`` dataset type (local ``path``).

Samples are shuffled across shards with a seeded RNG (SAT's wds loader only
shuffles shard order, never samples), and there are at least as many shards as
loader workers so no worker idles.
"""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from sat_mir.fsutil import atomic_path

__all__ = ["plan_shards", "write_shards"]


def plan_shards(ids: Sequence[str], *, shard_size: int, min_shards: int, seed: int) -> list[list[str]]:
    """Shuffle ``ids`` and split them into ``max(min_shards, ceil(n / shard_size))`` shards
    (never more shards than items)."""
    order = list(ids)
    random.Random(seed).shuffle(order)
    n = max(1, min(len(order), max(min_shards, math.ceil(len(order) / max(1, shard_size)))))
    return [order[i::n] for i in range(n)]


def write_shards(
    folder: Path,
    shards: list[list[str]],
    members: Callable[[str], dict[str, bytes]],
    *,
    prefix: str = "shard",
) -> list[Path]:
    """Write ``folder/<prefix>-000000.tar`` … where sample ``key`` has members ``members(key)``
    (extension → bytes, e.g. ``{"flac": ..., "json": ...}``).  Each tar is written to a temp
    file and renamed, so a killed build leaves no partial shard under a final name."""
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{prefix}-*.tar"):
        stale.unlink()
    paths = []
    for i, keys in enumerate(shards):
        path = folder / f"{prefix}-{i:06d}.tar"
        with atomic_path(path, suffix=".tar") as tmp, tarfile.open(tmp, "w") as tar:
            for key in keys:
                if "." in key:
                    raise ValueError(f"WebDataset keys must not contain dots: {key!r}")
                for ext, data in members(key).items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    info.mtime = 0  # reproducible shards
                    tar.addfile(info, io.BytesIO(data))
        paths.append(path)
    return paths


def json_bytes(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
