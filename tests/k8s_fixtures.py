"""Real Kubernetes API documents for tests, kept once.

The documents the simulator serves live in ``collector/sim/data``; those only tests read (other
distributions' nodes, other statuses, /version bodies) in ``tests/fixtures/k8s``. Both folders'
READMEs say where each document comes from. ``K8S / "nodes" / "kind-v1.20.0-nodelist.json"``
is the file, wherever it is kept.
"""

from __future__ import annotations

from pathlib import Path

import collector.sim

BASES = (Path(__file__).parent / "fixtures" / "k8s", Path(collector.sim.__file__).parent / "data")


class FixtureDir:
    """A folder of fixtures spread over ``BASES``: ``/`` gives the file, or a sub-folder."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __truediv__(self, name: str) -> FixtureDir | Path:
        for base in BASES:
            path = base.joinpath(*self.parts, name)
            if path.is_file():
                return path
        if any(base.joinpath(*self.parts, name).is_dir() for base in BASES):
            return FixtureDir(*self.parts, name)
        return BASES[0].joinpath(*self.parts, name)  # missing: .exists() says so

    def glob(self, pattern: str) -> list[Path]:
        found = {
            p.name: p for base in reversed(BASES) for p in base.joinpath(*self.parts).glob(pattern)
        }
        return [found[name] for name in sorted(found)]


K8S = FixtureDir()
