"""``python -m sat_mir.models list|download|verify``: the models sat-mir uses, their files,
licences and checksums; fetching them where the internet works.

    python -m sat_mir.models list
    python -m sat_mir.models download demucs essentia
    python -m sat_mir.models verify
    python -m sat_mir.models --models-dir /data/models download audiobox

The models folder is ``--models-dir``, else ``$SAT_MIR_MODELS``, else ``~/.cache/sat-mir/models``;
the extract run reads the same folder (Hydra ``models_dir``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sat_mir.errors import SatMirError

log = logging.getLogger("sat_mir.models")


def main(argv: list[str] | None = None) -> int:
    from sat_mir.models.catalog import all_models, find_model
    from sat_mir.models.spec import default_models_dir, download, locate, verify

    parser = argparse.ArgumentParser(prog="python -m sat_mir.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="models folder (default: $SAT_MIR_MODELS or ~/.cache/sat-mir/models)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every model: where its files go, licence, whether it is here")
    p_dl = sub.add_parser("download", help="fetch models into the models folder (needs the internet)")
    p_dl.add_argument("names", nargs="+", help="model names from `list` (or `all`)")
    p_v = sub.add_parser("verify", help="check presence and checksums of local models")
    p_v.add_argument("names", nargs="*", help="model names (default: every model present)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    base = args.models_dir or default_models_dir()

    try:
        if args.command == "list":
            print(f"models folder: {base}")
            for m in all_models():
                try:
                    where = f"present: {locate(m, base)}"
                except SatMirError:
                    where = "missing"
                commercial = "" if m.commercial_use else "  ** NOT for commercial use **"
                print(f"\n{m.name}  ({where})\n  {m.description}\n  used by: {m.used_by}\n"
                      f"  folder: {base / m.folder}\n  files: {', '.join(f.path for f in m.files)}"
                      + (f"\n  Hugging Face: {m.hf_repo}" if m.hf_repo else "")
                      + f"\n  licence: {m.licence}{commercial}")
            return 0
        if args.command == "download":
            names = [m.name for m in all_models()] if args.names == ["all"] else args.names
            for name in names:
                spec = find_model(name)
                if not spec.commercial_use:
                    log.warning("%s: %s; not for commercial use", name, spec.licence)
                print(f"{name}: {download(spec, base)}")
            return 0
        specs = [find_model(n) for n in args.names] if args.names else []
        if not specs:
            for m in all_models():
                try:
                    locate(m, base)
                    specs.append(m)
                except SatMirError:
                    pass
        bad = 0
        for spec in specs:
            problems = verify(spec, base)
            bad += bool(problems)
            print(f"{spec.name}: " + ("ok" if not problems else "; ".join(problems)))
        if not specs:
            print(f"no models in {base}")
        return 1 if bad else 0
    except (SatMirError, OSError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
