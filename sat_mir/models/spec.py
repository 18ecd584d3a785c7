"""What a model's weights are, where they live, and one way to find them locally.

Every model-backed part of sat-mir describes its weights with a :class:`ModelSpec`:
the files, where they come from, their licence and (when known) checksums.  All of
them live under one models folder (``models_dir``, Hydra ``models_dir``, default
``$SAT_MIR_MODELS`` or ``~/.cache/sat-mir/models``), one sub-folder per model.
:func:`locate` finds the files without touching the network and raises one
:class:`~sat_mir.errors.WeightsError` naming the first missing file and the command
that fetches it (``python -m sat_mir.models download <name>``), which is the only
code that downloads (:func:`download`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sat_mir.errors import WeightsError
from sat_mir.fsutil import sha256_file

__all__ = ["ModelFile", "ModelSpec", "default_models_dir", "download", "locate", "package_folder", "verify"]


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: ``path`` relative to the model's folder, its source, its checksum."""

    path: str
    # https URL; "package:<package>/<path>" for a file shipped with an installed package;
    # None: the file comes with ``ModelSpec.hf_repo``
    url: str | None = None
    # the published SHA-256, or a leading part of it (Demucs names files after the first 8 hex
    # digits); None: not published, so ``verify`` only checks presence
    sha256: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A downloadable model.

    ``name`` is what ``python -m sat_mir.models download <name>`` takes; ``folder`` is its
    sub-folder of the models folder; ``files`` must all exist for the model to load.
    ``hf_repo`` (with ``hf_revision``) marks a Hugging Face model: it is downloaded with
    ``huggingface_hub.snapshot_download`` into the folder, and a copy in the Hugging Face
    cache is accepted too.
    """

    name: str
    folder: str
    files: tuple[ModelFile, ...]
    licence: str
    used_by: str  # the extractor or stage that loads it
    description: str = ""
    hf_repo: str | None = None
    hf_revision: str | None = None
    commercial_use: bool = False  # False: the licence forbids commercial use; say so to users
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def default_models_dir() -> Path:
    return Path(os.environ.get("SAT_MIR_MODELS") or Path.home() / ".cache" / "sat-mir" / "models").expanduser()


def _download_hint(spec: ModelSpec) -> str:
    return (f"run  python -m sat_mir.models download {spec.name}  where the internet works "
            f"(it writes into the models folder; set models_dir=... or SAT_MIR_MODELS to use another one)")


def locate(spec: ModelSpec, models_dir: str | Path | None = None) -> Path:
    """The folder holding every file of ``spec``; never downloads.

    Looks in ``<models_dir>/<spec.folder>``, then, for Hugging Face models, in the Hugging
    Face cache (the snapshot folder of ``hf_repo``).

    Raises
    ------
    WeightsError
        A file is missing; the message names it, where else was looked, and the command
        that fetches it.
    """
    base = Path(models_dir).expanduser() if models_dir else default_models_dir()
    folder = base / spec.folder
    missing = [f.path for f in spec.files if not (folder / f.path).is_file()]
    if not missing:
        return folder
    cached = _hf_cache_folder(spec) or package_folder(spec)
    if cached is not None:
        return cached
    where = f" or in the Hugging Face cache (repo {spec.hf_repo})" if spec.hf_repo else ""
    raise WeightsError(
        f"model {spec.name!r} ({spec.used_by}) is missing {folder / missing[0]}"
        + (f" and {len(missing) - 1} more file(s)" if len(missing) > 1 else "")
        + f"{where}; sat-mir never downloads during a run: {_download_hint(spec)}"
    )


def _hf_cache_folder(spec: ModelSpec) -> Path | None:
    if not spec.hf_repo:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # a core install: no hub client, so no hub cache to look in
        return None

    found = [try_to_load_from_cache(spec.hf_repo, f.path, revision=spec.hf_revision) for f in spec.files]
    if not all(isinstance(p, str) for p in found):
        return None
    # every file of one snapshot lies under the same snapshot folder
    first = Path(found[0])
    return Path(str(first)[: -len(spec.files[0].path)].rstrip("/\\"))


def package_folder(spec: ModelSpec) -> Path | None:
    """The installed package's folder holding every file of ``spec``, when all of them ship inside
    one installed package (``package:`` URLs); found without importing the package."""
    import importlib.util

    folders = set()
    for f in spec.files:
        if not (f.url or "").startswith("package:"):
            return None
        package, _, rel = f.url[len("package:"):].partition("/")
        try:
            found = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            return None
        if found is None or not found.submodule_search_locations:
            return None
        path = Path(list(found.submodule_search_locations)[0]) / rel
        if not path.is_file() or not rel.endswith(f.path):
            return None
        folders.add(Path(str(path)[: -len(f.path)].rstrip("/\\")))
    return folders.pop() if len(folders) == 1 else None


def verify(spec: ModelSpec, models_dir: str | Path | None = None) -> list[str]:
    """Problems with the local copy of ``spec`` (missing files, checksum mismatches); [] when fine."""
    try:
        folder = locate(spec, models_dir)
    except WeightsError as exc:
        return [str(exc)]
    problems = []
    for f in spec.files:
        if f.sha256 and not sha256_file(folder / f.path).startswith(f.sha256):
            problems.append(f"{folder / f.path}: sha256 differs from the published {f.sha256}; delete it and "
                            f"download again")
    return problems


def download(spec: ModelSpec, models_dir: str | Path | None = None) -> Path:
    """Fetch ``spec``'s files into ``<models_dir>/<spec.folder>`` (the only function that uses the network)."""
    base = Path(models_dir).expanduser() if models_dir else default_models_dir()
    folder = base / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    if spec.hf_repo:
        from sat_mir.extras import require

        require("models", f"downloading {spec.name!r} from the Hugging Face hub", ("huggingface_hub",))
        from huggingface_hub import snapshot_download

        snapshot_download(spec.hf_repo, revision=spec.hf_revision, local_dir=folder,
                          allow_patterns=spec.extra.get("allow_patterns"))
    for f in spec.files:
        if f.url is None or (folder / f.path).is_file():
            continue
        target = folder / f.path
        if f.url.startswith("package:"):  # a file that ships with an installed package
            import importlib.resources
            import importlib.util
            import shutil

            package, _, rel = f.url[len("package:"):].partition("/")
            if importlib.util.find_spec(package) is None:
                raise WeightsError(f"{f.path} of model {spec.name!r} ships inside the Python package {package}, "
                                   f"not installed here: {spec.extra.get('install', f'pip install {package}')}")
            with importlib.resources.as_file(importlib.resources.files(package).joinpath(rel)) as src:
                shutil.copyfile(src, target)
            continue
        import urllib.request

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        with urllib.request.urlopen(f.url) as resp, open(tmp, "wb") as out:  # noqa: S310 - fixed https URLs
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        if f.sha256 and not sha256_file(tmp).startswith(f.sha256):
            tmp.unlink()
            raise WeightsError(f"{f.url}: downloaded file fails its sha256 check")
        os.replace(tmp, target)
    problems = verify(spec, base)
    if problems:
        raise WeightsError("; ".join(problems))
    return folder
