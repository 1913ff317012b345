"""Exec credential plugins: resolution, timeout, failures, output parsing (real subprocesses)."""

import asyncio
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from collector.errors import ExecPluginError
from collector.kube.exec_plugin import run_exec_plugin

V1 = "client.authentication.k8s.io/v1"


def script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


TOKEN_PLUGIN = f"""
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
print(json.dumps({{"apiVersion": "{V1}", "kind": "ExecCredential",
                  "status": {{"token": "tok-" + os.environ.get("EXTRA", "") + "-" +
                              str(info["spec"]["interactive"]) + "-" +
                              info["spec"].get("cluster", {{}}).get("server", "none")}}}}))
"""


async def test_cluster_info_only_when_asked(tmp_path):
    plugin = script(tmp_path / "p", TOKEN_PLUGIN)
    cred = await run_exec_plugin(
        {"apiVersion": V1, "command": str(plugin)},
        cluster={"server": "https://127.0.0.1:1"},
        timeout=10,
    )
    assert cred.token == "tok--False-none"


async def test_client_certificate_output(tmp_path):
    plugin = script(
        tmp_path / "p",
        f"""
import json
print(json.dumps({{"apiVersion": "{V1}", "kind": "ExecCredential",
      "status": {{"clientCertificateData": "CERT", "clientKeyData": "KEY"}}}}))
""",
    )
    cred = await run_exec_plugin(
        {"apiVersion": V1, "command": str(plugin)}, cluster=None, timeout=10
    )
    assert (cred.token, cred.client_certificate_data, cred.client_key_data) == (None, "CERT", "KEY")


async def test_missing_plugin_names_it_with_install_hint(tmp_path):
    with pytest.raises(ExecPluginError, match=r"not found; install it from example.com"):
        await run_exec_plugin(
            {
                "apiVersion": V1,
                "command": str(tmp_path / "nope"),
                "installHint": "install it from example.com",
            },
            cluster=None,
            timeout=10,
        )


async def test_failing_plugin_reports_status_and_stderr(tmp_path):
    plugin = script(tmp_path / "p", "import sys; sys.stderr.write('token expired\\n'); sys.exit(3)")
    with pytest.raises(ExecPluginError, match=r"exited with status 3: token expired"):
        await run_exec_plugin(
            {"apiVersion": V1, "command": str(plugin)},
            cluster=None,
            timeout=10,
        )


async def test_hanging_plugin_is_killed_with_its_children(tmp_path):
    pidfile = tmp_path / "child.pid"
    plugin = script(
        tmp_path / "p",
        f"""
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open({str(pidfile)!r}, "w").write(str(child.pid))
time.sleep(600)
""",
    )
    started = time.monotonic()
    with pytest.raises(ExecPluginError, match=r"did not finish within 0.5s"):
        await run_exec_plugin(
            {"apiVersion": V1, "command": str(plugin)},
            cluster=None,
            timeout=0.5,
        )
    assert time.monotonic() - started < 5
    child = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the plugin's child process survived")


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("not json", "printed no JSON credential"),
        ('{"kind": "Other"}', "printed no ExecCredential"),
        (
            json.dumps(
                {
                    "kind": "ExecCredential",
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "status": {"token": "t"},
                }
            ),
            "answered apiVersion",
        ),
        (
            json.dumps({"kind": "ExecCredential", "apiVersion": V1, "status": {}}),
            "neither a token nor a client certificate",
        ),
    ],
)
async def test_unusable_output(tmp_path, output, message):
    plugin = script(tmp_path / "p", f"print({output!r})")
    with pytest.raises(ExecPluginError, match=message):
        await run_exec_plugin(
            {"apiVersion": V1, "command": str(plugin)},
            cluster=None,
            timeout=10,
        )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"apiVersion": V1}, "names no command"),
        ({"apiVersion": "v0", "command": "x"}, "unsupported apiVersion"),
        ({"apiVersion": V1, "command": "x", "interactiveMode": "Always"}, "interactive terminal"),
    ],
)
async def test_unusable_spec(spec, message):
    with pytest.raises(ExecPluginError, match=message):
        await run_exec_plugin(spec, cluster=None, timeout=10)
