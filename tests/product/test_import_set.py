"""A dry run imports only what it uses: start-up is most of the CPU of a small collection.

`kubeinv collect --dry-run` reaches real (simulated) clusters over HTTPS with certificate, token
and exec users, and must not import the database driver, the embedded PostgreSQL, the
Kubernetes client library, a general HTTP client, the scheduler or the metrics library. Should
one of them enter this import set (e.g. a module-level import added somewhere), this fails.
"""

from __future__ import annotations

import asyncio
import sys

from collector.sim import ClusterSpec

from .conftest import REPO

HEAVY = (
    "kubernetes_asyncio",
    "asyncpg",
    "pgserver",
    "aiohttp",
    "apscheduler",
    "prometheus_client",
    "cryptography",
)

_PROBE = """
import runpy, sys
sys.argv = ["kubeinv", "collect", "--dry-run", "--kubeconfig", sys.argv[1]]
code = 0
try:
    runpy.run_module("collector", run_name="__main__")
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2:] or HEAVY))
print("EXIT", code, "HEAVY", heavy, file=sys.stderr)
"""


async def test_collect_dry_run_imports_nothing_heavy(sim_fleet, tmp_path):
    fleet = await sim_fleet(
        clusters=[ClusterSpec(users=(kind,)) for kind in ("cert-data", "token", "exec")]
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"HEAVY = {HEAVY!r}\n{_PROBE}",
        str(fleet.kubeconfig),
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 120)
    text = err.decode()
    assert "EXIT 0 HEAVY []" in text, text[-3000:]
