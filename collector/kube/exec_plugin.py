"""Running exec credential plugins ourselves, as kubectl does, with a timeout and a cache.

kubernetes-asyncio's ExecProvider resolves the command against the current directory and waits
for it forever. kubeinv runs the plugin itself instead: the command comes already resolved
against the kubeconfig's directory (:mod:`collector.kubeconfig`, as kubectl does), the run is
bounded by the request timeout, and a plugin that hangs is killed together with its children.

Credentials are handled as client-go handles them (:class:`ExecCredentialCache`): one kept in
memory until its ``status.expirationTimestamp``, keyed on the command, its arguments, its
environment and the cluster, so that contexts and runs sharing a plugin share one run of it;
one without an expiry is used for the current run only (re-run every run); one the server
refuses with a 401 is dropped and the plugin run again (once per request, by the caller).
Every run is counted in :data:`RUN_COUNTS` (``kubeinv_exec_plugin_runs_total{result}``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from collector.errors import ExecPluginError
from collector.kubeconfig import EXEC_API_VERSIONS

_STDERR_TAIL = 300

# Plugin runs of this process by result ("ok", "failed"): the source of the metric
# kubeinv_exec_plugin_runs_total{result}.
RUN_COUNTS: dict[str, int] = {"ok": 0, "failed": 0}


@dataclass(frozen=True)
class ExecCredential:
    """What a plugin returned: a bearer token, or a client certificate and key (PEM)."""

    token: str | None = None
    client_certificate_data: str | None = None
    client_key_data: str | None = None
    expiration: str | None = None
    expires_at: float | None = None  # expiration as Unix time; None: no expiry

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.token, self.client_key_data) if s)


def parse_expiration(value: object, *, command: str) -> float | None:
    """``status.expirationTimestamp`` (RFC 3339) as Unix time; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            pass
        else:
            if when.tzinfo is not None:
                return when.timestamp()
    raise ExecPluginError(
        f"exec plugin {command!r}: expirationTimestamp {value!r} is not an RFC 3339 time"
    )


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


@dataclass(frozen=True)
class ExecPlan:
    """A plugin run, ready to start: a kubeconfig user's ``exec`` entry (checked by
    :func:`plan_exec_plugin`) and the cluster it is for; its argv, environment and cache key
    follow from them."""

    spec: Mapping[str, Any]
    cluster: Mapping[str, Any] | None

    @property
    def command(self) -> str:
        return str(self.spec["command"])

    @property
    def api_version(self) -> str:
        return str(self.spec["apiVersion"])

    @property
    def argv(self) -> tuple[str, ...]:
        return (self.command, *(str(a) for a in self.spec.get("args") or ()))

    @property
    def env_overrides(self) -> tuple[tuple[str, str], ...]:
        return tuple(
            (str(item["name"]), str(item.get("value", "")))
            for item in self.spec.get("env") or ()
            if isinstance(item, Mapping) and "name" in item
        )

    @cached_property
    def info(self) -> str:
        """KUBERNETES_EXEC_INFO, made once (it may read the cluster's CA file)."""
        return json.dumps(exec_info(self.spec, self.cluster), sort_keys=True)

    @property
    def cluster_server(self) -> str | None:
        server = self.cluster.get("server") if self.cluster is not None else None
        return server if isinstance(server, str) else None

    @property
    def cache_key(self) -> tuple[object, ...]:
        """Command, arguments, environment and cluster (with provideClusterInfo, all of what
        the plugin is told about it)."""
        return (self.argv, self.env_overrides, self.api_version, self.cluster_server, self.info)


def plan_exec_plugin(spec: Mapping[str, Any], *, cluster: Mapping[str, Any] | None) -> ExecPlan:
    """Check a kubeconfig user's ``exec`` entry; :class:`ExecPluginError` when unusable."""
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
    return ExecPlan(spec, cluster)


async def run_exec_plugin(
    spec: Mapping[str, Any],
    *,
    cluster: Mapping[str, Any] | None,
    timeout: float,  # noqa: ASYNC109 (a budget handed down, applied with asyncio.timeout)
    environ: Mapping[str, str] | None = None,
) -> ExecCredential:
    """Run the plugin of a kubeconfig user's ``exec`` entry; :class:`ExecPluginError` on any
    failure (missing command, non-zero exit, hang past ``timeout``, unusable output)."""
    plan = plan_exec_plugin(spec, cluster=cluster)
    return await run_plan(plan, timeout=timeout, environ=environ)


async def run_plan(
    plan: ExecPlan,
    *,
    timeout: float,  # noqa: ASYNC109 (a budget handed down, applied with asyncio.timeout)
    environ: Mapping[str, str] | None = None,
) -> ExecCredential:
    """Run a planned plugin once (counted in :data:`RUN_COUNTS`)."""
    try:
        credential = await _run(plan, timeout=timeout, environ=environ)
    except ExecPluginError:
        RUN_COUNTS["failed"] += 1
        raise
    RUN_COUNTS["ok"] += 1
    return credential


async def _run(
    plan: ExecPlan,
    *,
    timeout: float,  # noqa: ASYNC109
    environ: Mapping[str, str] | None,
) -> ExecCredential:
    spec, command, argv = plan.spec, plan.command, plan.argv
    env = dict(os.environ if environ is None else environ)
    env.update(plan.env_overrides)
    env["KUBERNETES_EXEC_INFO"] = plan.info

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
    return parse_exec_output(stdout, command=command, api_version=plan.api_version)


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
    expiration = status.get("expirationTimestamp")
    expires_at = parse_expiration(expiration, command=command)
    if isinstance(token, str) and token:
        return ExecCredential(token=token, expiration=expiration, expires_at=expires_at)
    if isinstance(cert, str) and cert and isinstance(key, str) and key:
        return ExecCredential(
            client_certificate_data=cert,
            client_key_data=key,
            expiration=expiration,
            expires_at=expires_at,
        )
    raise ExecPluginError(
        f"exec plugin {command!r}: ExecCredential has neither a token nor a client certificate "
        "and key"
    )


@dataclass
class _Entry:
    credential: ExecCredential
    run: int  # the run (generation) it was obtained in


class ExecCredentialCache:
    """Exec credentials kept in memory, as client-go keeps them.

    A credential with an expiry is used until then (by any context and any run with the same
    plugin command, arguments, environment and cluster); one without an expiry only within the
    run that obtained it (:meth:`new_run` starts the next one). Concurrent requests for the same
    key share one plugin run. Nothing is ever written to a file.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.run = 0
        self._entries: dict[tuple[object, ...], _Entry] = {}
        self._inflight: dict[tuple[object, ...], asyncio.Future[ExecCredential]] = {}

    def new_run(self) -> None:
        """A new collection run: drop credentials without expiry and expired ones."""
        self.run += 1
        now = self.clock()
        for key, entry in list(self._entries.items()):
            expires_at = entry.credential.expires_at
            if expires_at is None or expires_at <= now:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def valid(self, credential: ExecCredential, run: int | None = None) -> bool:
        if credential.expires_at is None:
            return run is None or run == self.run
        return self.clock() < credential.expires_at

    def cached(self, key: tuple[object, ...]) -> ExecCredential | None:
        entry = self._entries.get(key)
        if entry is not None and self.valid(entry.credential, entry.run):
            return entry.credential
        return None

    def invalidate(self, key: tuple[object, ...], credential: ExecCredential | None) -> None:
        """Drop ``credential`` (refused by a server) unless another one replaced it already."""
        entry = self._entries.get(key)
        if entry is not None and (credential is None or entry.credential == credential):
            del self._entries[key]

    async def get(
        self, key: tuple[object, ...], run: Callable[[], Awaitable[ExecCredential]]
    ) -> ExecCredential:
        """The cached credential of ``key``, or the result of ``run()`` (one at a time)."""
        while True:
            credential = self.cached(key)
            if credential is not None:
                return credential
            pending = self._inflight.get(key)
            if pending is None:
                break
            await asyncio.wait([pending])  # never raises: the runner's outcome is read below
            if not pending.cancelled() and pending.exception() is not None:
                raise pending.exception()  # type: ignore[misc]
            if not pending.cancelled():
                return pending.result()  # even when already expired: used once, as client-go
        future: asyncio.Future[ExecCredential] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            credential = await run()
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning
            else:
                future.cancel()
            raise
        else:
            self._entries[key] = _Entry(credential, self.run)
            future.set_result(credential)
            return credential
        finally:
            self._inflight.pop(key, None)


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
