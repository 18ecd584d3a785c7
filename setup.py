"""The configs and the training-time module ship inside the wheel: the clone keeps its top-level
``conf/`` and ``custom_metadata/`` as the one source, and building the package copies them to
``sat_mir/conf`` and ``sat_mir/custom_metadata`` (``sat_mir.cli.conf_dir``,
``sat_mir.build.manifest.source_dir``), so no top-level ``custom_metadata`` package is installed."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithConf(build_py):
    def run(self):
        super().run()
        # the clone's top-level folders are the sources; the wheel carries them inside sat_mir
        for folder, pattern in (("conf", "*.yaml"), ("custom_metadata", "*.py")):
            target = Path(self.build_lib) / "sat_mir" / folder
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(HERE / folder, target, ignore=_only(pattern))


def _only(pattern: str):
    """shutil.copytree's ignore: everything but folders and files matching ``pattern``."""
    import fnmatch

    def ignore(folder, names):
        return [n for n in names
                if not (Path(folder, n).is_dir() and n != "__pycache__") and not fnmatch.fnmatch(n, pattern)]

    return ignore


setup(cmdclass={"build_py": BuildPyWithConf})
