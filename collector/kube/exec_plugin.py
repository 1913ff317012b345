"""Running exec credential plugins ourselves, as kubectl does, with a timeout.

kubernetes-asyncio's ExecProvider resolves the command against the current directory and waits
for it forever. kubeinv runs the plugin itself instead: the command comes already resolved
against the kubeconfig's directory (:mod:`collector.kubeconfig`, as kubectl does), the run is
bounded by the request timeout, and a plugin that hangs is killed together with its children.
The credential it returns is handed to the kubeconfig loader as a plain token or client
certificate, so the loader never runs it again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.errors import ExecPluginError
from collector.kubeconfig import EXEC_API_VERSIONS

_STDERR_TAIL = 300


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin returned: a bearer token, or a client certificate and key (PEM)."""

    token: str | None = None
    client_certificate_data: str | None = None
    client_key_data: str | None = None
    expiration: str | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.token, self.client_key_data) if s)


def exec_info(spec: Mapping[str, Any], cluster: Mapping[str, Any] | None) -> dict[str, Any]:
    """The KUBERNETES_EXEC_INFO document given to the plugin."""
    info_spec: dict[str, Any] = {"interactive": False}
    if spec.get("provideClusterInfo") and cluster is not None:
        info_cluster: dict[str, Any] = {"server": cluster.get("server", "")}
        for key in (
            "certificate-authority-data",
            "tls-server-name",
            "insecure-skip-tls-verify",
            "proxy-url",
            "disable-compression",
        ):
            if key in cluster:
                info_cluster[key] = cluster[key]
        if "certificate-authority-data" not in cluster and cluster.get("certificate-authority"):
            with contextlib.suppress(OSError), open(cluster["certificate-authority"], "rb") as f:
                info_cluster["certificate-authority-data"] = base64.b64encode(f.read()).decode()
        for ext in cluster.get("extensions") or ():
            if isinstance(ext, Mapping) and ext.get("name") == "client.authentication.k8s.io/exec":
                info_cluster["config"] = ext.get("extension")
        info_spec["cluster"] = info_cluster
    return {
        "apiVersion": spec.get("apiVersion"),
        "kind": "ExecCredential",
        "spec": info_spec,
    }


async def run_exec_plugin(
    spec: Mapping[str, Any],
    *,
    cluster: Mapping[str, Any] | None,
    timeout: float,  # noqa: ASYNC109 (a budget handed down, applied with asyncio.timeout)
    environ: Mapping[str, str] | None = None,
) -> ExecCredential:
    """Run the plugin of a kubeconfig user's ``exec`` entry; :class:`ExecPluginError` on any
    failure (missing command, non-zero exit, hang past ``timeout``, unusable output)."""
    command = spec.get("command")
    api_version = spec.get("apiVersion")
    if not isinstance(command, str) or not command:
        raise ExecPluginError("exec plugin: the kubeconfig names no command")
    if api_version not in EXEC_API_VERSIONS:
        raise ExecPluginError(f"exec plugin {command!r}: unsupported apiVersion {api_version!r}")
    if spec.get("interactiveMode") == "Always":
        raise ExecPluginError(
            f"exec plugin {command!r} needs an interactive terminal (interactiveMode: Always)"
        )
    args = spec.get("args") or []
    if not isinstance(args, Sequence) or isinstance(args, str):
        raise ExecPluginError(f"exec plugin {command!r}: args must be a list")
    argv = [command, *(str(a) for a in args)]

    env = dict(os.environ if environ is None else environ)
    for item in spec.get("env") or ():
        if isinstance(item, Mapping) and "name" in item:
            env[str(item["name"])] = str(item.get("value", ""))
    env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info(spec, cluster))

    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # its own process group: a hang is killed with its children
        )
    except FileNotFoundError as exc:
        hint = spec.get("installHint")
        raise ExecPluginError(
            f"exec plugin {argv[0]!r} not found" + (f"; {str(hint).strip()}" if hint else "")
        ) from exc
    except OSError as exc:
        raise ExecPluginError(f"exec plugin {argv[0]!r} cannot run: {exc.strerror}") from exc

    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate()
    except TimeoutError as exc:
        await _kill(proc)
        raise ExecPluginError(
            f"exec plugin {command!r} did not finish within {timeout:g}s"
        ) from exc
    except BaseException:
        await _kill(proc)
        raise

    if proc.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        raise ExecPluginError(
            f"exec plugin {command!r} exited with status {proc.returncode}"
            + (f": {tail}" if tail else "")
        )
    return parse_exec_output(stdout, command=command, api_version=str(api_version))


def parse_exec_output(stdout: bytes, *, command: str, api_version: str) -> ExecCredential:
    try:
        doc = json.loads(stdout)
    except ValueError as exc:
        raise ExecPluginError(f"exec plugin {command!r} printed no JSON credential") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "ExecCredential":
        raise ExecPluginError(f"exec plugin {command!r} printed no ExecCredential")
    if doc.get("apiVersion") != api_version:
        raise ExecPluginError(
            f"exec plugin {command!r} answered apiVersion {doc.get('apiVersion')!r}, "
            f"expected {api_version!r}"
        )
    status = doc.get("status")
    if not isinstance(status, dict):
        raise ExecPluginError(f"exec plugin {command!r}: ExecCredential has no status")
    token = status.get("token")
    cert = status.get("clientCertificateData")
    key = status.get("clientKeyData")
    if isinstance(token, str) and token:
        return ExecCredential(token=token, expiration=status.get("expirationTimestamp"))
    if isinstance(cert, str) and cert and isinstance(key, str) and key:
        return ExecCredential(
            client_certificate_data=cert,
            client_key_data=key,
            expiration=status.get("expirationTimestamp"),
        )
    raise ExecPluginError(
        f"exec plugin {command!r}: ExecCredential has neither a token nor a client certificate "
        "and key"
    )


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if sys.platform != "win32":
                os.killpg(proc.pid, signal.SIGKILL)
            else:  # pragma: no cover
                proc.kill()
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 5)
