"""A cluster's deadline must not pay for work that is not the cluster's.

kubernetes_asyncio.client takes ~0.5 s to import on an idle machine and several seconds on a
busy one. Imported lazily inside the first target's deadline, it made that target fail with
Timeout instead of its real outcome (seen in the fault matrix: a foreign-CA cluster reported
Timeout, not TLS, under load). Only auth-provider users need it now: for them it is imported
before any deadline starts; for everyone else, not at all.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap

import pytest

from .harness import REPO, cli_env

_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    from collector import gathering
    from collector.settings import CollectionSettings
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
        "users": [{"name": "a", "user": json.loads(sys.argv[1])}],
        "contexts": [{"name": "a", "context": {"cluster": "a", "user": "a"}}],
    }
    targets = targets_from_config(doc, path="/nonexistent/kubeconfig")
    assert "kubernetes_asyncio.client" not in sys.modules
    settings = CollectionSettings(timeout=1, cluster_timeout=2, max_retries=0)
    options = gathering.GatherOptions(settings)
    result = asyncio.run(gathering.gather(targets, options))
    print(seen, result.outcomes[0].error_class, "kubernetes_asyncio" in sys.modules)
    """
)

_FAR_FUTURE = base64.urlsafe_b64encode(json.dumps({"exp": 4102444800}).encode()).decode()
_OIDC = {
    "auth-provider": {
        "name": "oidc",
        "config": {"id-token": f"e30.{_FAR_FUTURE.rstrip('=')}.c2ln", "client-id": "kubeinv"},
    }
}


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"token": "x" * 20}, ["[False]", "Unreachable", "False"]),
        (_OIDC, ["[True]", "Unreachable", "True"]),
    ],
    ids=["token: never imported", "auth-provider: imported before"],
)
def test_library_import_happens_before_any_deadline_starts(tmp_path, user, expected):
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(user)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=cli_env(tmp_path / "home"),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == expected, proc.stdout
