"""A cluster's deadline must not pay for work that is not the cluster's.

kubernetes_asyncio.client takes ~0.5 s to import on an idle machine and several seconds on a
busy one. Imported lazily inside the first target's deadline, it made that target fail with
Timeout instead of its real outcome (seen in the fault matrix: a foreign-CA cluster reported
Timeout, not TLS, under load).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from .harness import REPO, cli_env

_PROBE = textwrap.dedent(
    """
    import asyncio, sys
    from collector import gathering
    from collector.targets import targets_from_config

    seen = []
    original = gathering.Deadline.after

    def after(seconds, *args, **kwargs):
        seen.append("kubernetes_asyncio.client" in sys.modules)
        return original(seconds, *args, **kwargs)

    gathering.Deadline.after = after
    doc = {
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "a", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "a", "user": {"token": "x" * 20}}],
        "contexts": [{"name": "a", "context": {"cluster": "a", "user": "a"}}],
    }
    targets = targets_from_config(doc, path="/nonexistent/kubeconfig")
    assert "kubernetes_asyncio.client" not in sys.modules
    options = gathering.GatherOptions(request_timeout=1, cluster_timeout=2, max_retries=0)
    result = asyncio.run(gathering.gather(targets, options))
    print(seen, result.outcomes[0].error_class)
    """
)


def test_library_import_happens_before_any_deadline_starts(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=cli_env(tmp_path / "home"),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["[True]", "Unreachable"], proc.stdout
