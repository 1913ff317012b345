"""Build step: ship the top-level ``sql/`` folder inside the package, as ``collector/_sql``.

Everything else is configured in pyproject.toml. The migrations and named queries live in the
repository's top-level ``sql/`` (where they are read, linted and run by hand); a wheel has no
such folder, so ``build_py`` copies it into the built package. ``collector.store.queries``
finds the repository's ``sql/`` in a source checkout or an editable install, and
``collector/_sql`` in an installed wheel.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithSql(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's sql/ itself
        source = ROOT / "sql"
        if not (source / "schema.sql").is_file():
            raise RuntimeError(f"no schema.sql in {source}: cannot build kubeinv without sql/")
        target = Path(self.build_lib) / "collector" / "_sql"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*~", ".*"))


setup(cmdclass={"build_py": BuildPyWithSql})
