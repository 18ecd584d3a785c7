"""The configs ship inside the wheel: the clone keeps its top-level ``conf/`` as the one source,
and building the package copies it to ``sat_mir/conf`` (see ``sat_mir.cli.conf_dir``)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithConf(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "sat_mir" / "conf"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(HERE / "conf", target, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": BuildPyWithConf})
