"""Building one authenticated client per target.

kubeinv reads the target's kubeconfig entries itself, as :mod:`collector.kubeconfig` interpreted
them (paths resolved, token files inlined and stripped, kubectl's refusals found): server, CA,
TLS settings, client certificate, token, basic auth, exec plugin, impersonation. It picks the
proxy by kubectl's rules (:func:`collector.proxies.select_proxy`, SOCKS5 included) and sends
its requests through its own transport (:mod:`collector.kube.transport`: one kept-alive
connection per cluster, a shared in-memory TLS context, no credential ever written to a
file). kubernetes-asyncio is imported
only for what it does well that kubeinv does not do itself: ``auth-provider`` users (OIDC, GCP),
whose token its kubeconfig loader obtains (and refreshes) in memory.

Exec plugins are run by :mod:`collector.kube.exec_plugin` (timeout, cache until expiry).
Nothing here writes back into the user's kubeconfig.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

from collector.errors import (
    AuthError,
    BrokenContextError,
    ClusterError,
    ExecPluginError,
)
from collector.kube.exec_plugin import (
    ExecCredential,
    ExecCredentialCache,
    ExecPlan,
    plan_exec_plugin,
    run_plan,
)
from collector.kube.policy import Deadline, RequestPolicy
from collector.kube.requesting import KubeClient, RawResponse
from collector.kube.transport import (
    SHARED_TLS_CONTEXTS,
    USER_AGENT,
    Endpoint,
    HTTPConnection,
    TLSContexts,
    TLSMaterial,
    request_headers,
)
from collector.proxies import describe_proxy, proxy_secrets, select_proxy

if TYPE_CHECKING:
    from collector.targets import Target

# Exec credentials of this process: shared by every context and run (a daemon's runs included).
SHARED_EXEC_CREDENTIALS = ExecCredentialCache()


@dataclass(frozen=True)
class Ticket:
    """The credential a request was sent with (to tell, after a 401, which one was refused)."""

    authorization: str | None
    cert: bytes | None = None
    key: bytes | None = None
    exec_credential: ExecCredential | None = None


class StaticAuth:
    """A credential fixed for the client's life: token, basic auth, client certificate,
    auth-provider token."""

    def __init__(self, authorization: str | None) -> None:
        self._ticket = Ticket(authorization)
        self.secrets: tuple[str, ...] = ()

    async def ticket(self) -> Ticket:
        return self._ticket

    async def refused(self, ticket: Ticket) -> bool:
        return False  # nothing new to try


@dataclass(eq=False, repr=False)
class ExecAuth:
    """An exec plugin's credential: from the cache while valid, else from a plugin run."""

    plan: ExecPlan
    _: KW_ONLY
    cache: ExecCredentialCache
    policy: RequestPolicy
    deadline: Deadline
    secrets: tuple[str, ...] = field(default=(), init=False)  # what the plugin returned

    async def _run(self) -> ExecCredential:
        timeout = max(0.0, min(self.policy.request_timeout, self.deadline.remaining()))
        return await run_plan(self.plan, timeout=timeout)

    async def ticket(self) -> Ticket:
        credential = await self.cache.get(self.plan.cache_key, self._run)
        for secret in credential.secrets:
            if secret not in self.secrets:
                self.secrets = (*self.secrets, secret)
        if credential.token:
            return Ticket(f"Bearer {credential.token}", exec_credential=credential)
        assert credential.client_certificate_data and credential.client_key_data
        return Ticket(
            None,
            cert=credential.client_certificate_data.encode(),
            key=credential.client_key_data.encode(),
            exec_credential=credential,
        )

    async def refused(self, ticket: Ticket) -> bool:
        """After a 401: drop the refused credential, so that the next ticket runs the plugin."""
        self.cache.invalidate(self.plan.cache_key, ticket.exec_credential)
        return True


Auth = StaticAuth | ExecAuth


class ClusterTransport:
    """Sends the requests of one :class:`KubeClient` over one kept-alive connection.

    An exec plugin that returns a client certificate may return a new one when its credential
    expires: the transport then opens a connection with the new certificate (the old one is
    closed with the client). ``connections`` > 1 spreads requests over that many connections.
    """

    def __init__(
        self,
        *,
        server_url: str,
        tls: TLSMaterial,
        auth: Auth,
        tls_contexts: TLSContexts,
        tls_server_name: str | None = None,
        proxy_url: str | None = None,
        disable_compression: bool = False,
        connections: int = 1,
        impersonation: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.impersonation = tuple(impersonation)
        self.tls = tls
        self.auth = auth
        self.tls_contexts = tls_contexts
        self.tls_server_name = tls_server_name
        self.proxy_url = proxy_url
        self.disable_compression = disable_compression
        self.connections = connections
        self._pools: dict[tuple[bytes | None, bytes | None], list[HTTPConnection]] = {}
        self.closed = False

    @property
    def secrets(self) -> tuple[str, ...]:
        return (*self.auth.secrets, *proxy_secrets(self.proxy_url))

    def _pool(self, ticket: Ticket) -> list[HTTPConnection]:
        key = (ticket.cert, ticket.key)
        pool = self._pools.get(key)
        if pool is None:
            material = self.tls
            if ticket.cert is not None:
                material = TLSMaterial(
                    ca=material.ca, cert=ticket.cert, key=ticket.key, insecure=material.insecure
                )
            try:
                ssl_context = self.tls_contexts.get(material)
            except (ssl.SSLError, OSError, ValueError) as exc:
                raise BrokenContextError(
                    f"cannot load the TLS certificates or key of the kubeconfig: {exc}"
                ) from exc
            endpoint = Endpoint(
                server_url=self.server_url,
                ssl_context=ssl_context,
                tls_server_name=self.tls_server_name,
                proxy_url=self.proxy_url,
                disable_compression=self.disable_compression,
            )
            try:
                endpoint.parts  # noqa: B018 (checks the URL now)
            except ValueError as exc:
                raise BrokenContextError(str(exc)) from exc
            pool = self._pools[key] = [HTTPConnection(endpoint)]
        return pool

    @property
    def connections_opened(self) -> int:
        return sum(c.opened for pool in self._pools.values() for c in pool)

    async def authorize(self) -> Ticket:
        """The credential for the next request (runs an exec plugin when needed)."""
        if self.closed:
            raise RuntimeError("KubeClient is closed")
        ticket = await self.auth.ticket()
        self._pool(ticket)  # TLS problems surface here, before any request
        return ticket

    async def refused(self, ticket: Ticket) -> bool:
        """A 401 answered ``ticket``: True when a new credential may be worth one more try."""
        return await self.auth.refused(ticket)

    async def fetch(
        self,
        ticket: Ticket,
        path: str,
        *,
        query: Sequence[tuple[str, str | int]],
        accept: str,
        timeout: float,  # noqa: ASYNC109 (the caller also bounds the whole attempt)
    ) -> RawResponse:
        pool = self._pool(ticket)
        connection = min(pool, key=lambda c: c.waiting)
        if connection.waiting and len(pool) < self.connections:
            connection = HTTPConnection(connection.endpoint)
            pool.append(connection)
        headers = request_headers(ticket.authorization, accept, self.impersonation)
        response = await connection.get(path, query, headers)
        return RawResponse(response.status, response.headers, response.body)

    async def close(self) -> None:
        self.closed = True
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            for connection in pool:
                await connection.close()


def needs_library(targets: Sequence[Target]) -> bool:
    """Whether any target needs kubernetes-asyncio (an ``auth-provider`` user)."""
    return any(t.auth_kind == "auth-provider" and not t.problem for t in targets)


def load_library() -> None:
    """Import kubernetes_asyncio's kubeconfig loader now (~0.5 s, far more on a busy machine).

    Only ``auth-provider`` users need it. Call it before any cluster deadline starts: imported
    lazily inside :func:`open_client`, the import would block the event loop within the first
    target's deadline.
    """
    from kubernetes_asyncio.config.kube_config import KubeConfigLoader  # noqa: PLC0415, F401


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise BrokenContextError(f"{what} {path}: {exc.strerror or exc}") from exc


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=False)
    except ValueError as exc:
        raise BrokenContextError(f"{what} is not valid base64") from exc


def _client_tls(target: Target, user: Mapping[str, Any]) -> TLSMaterial:
    cert: bytes | None = None
    key: bytes | None = None
    if user.get("client-certificate-data"):
        cert = _b64(user["client-certificate-data"], "client-certificate-data")
    elif isinstance(user.get("client-certificate"), str):
        cert = _read(user["client-certificate"], "client-certificate")
    if user.get("client-key-data"):
        key = _b64(user["client-key-data"], "client-key-data")
    elif isinstance(user.get("client-key"), str):
        key = _read(user["client-key"], "client-key")
    return TLSMaterial(
        ca=target.ca_bytes, cert=cert, key=key, insecure=target.insecure_skip_tls_verify
    )


async def _auth_provider_token(
    target: Target,
    cluster: Mapping[str, Any],
    user: Mapping[str, Any],
    timeout: float,  # noqa: ASYNC109 (a budget handed down, applied with asyncio.timeout)
) -> str | None:
    """The ``Authorization`` of an auth-provider user, from kubernetes-asyncio's loader.

    The loader is given the provider alone (no certificate data, no CA), so it writes no file.
    """
    from kubernetes_asyncio.client import Configuration  # noqa: PLC0415
    from kubernetes_asyncio.config.config_exception import ConfigException  # noqa: PLC0415
    from kubernetes_asyncio.config.kube_config import KubeConfigLoader  # noqa: PLC0415

    provider = user.get("auth-provider")
    name = target.context_name
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": str(cluster.get("server", ""))}}],
        "users": [{"name": "u", "user": {"auth-provider": _deep_copy(provider)}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": "u"}}],
        "current-context": name,
    }
    configuration = type.__call__(Configuration)  # a fresh one, not a copy of the global default
    loader = KubeConfigLoader(
        config_dict=config,
        active_context=name,
        config_base_path=os.path.dirname(target.kubeconfig_path) or None,
    )
    try:
        # OIDC refresh talks to the identity provider: bounded like any request.
        async with asyncio.timeout(timeout):
            await loader.load_and_set(configuration)
    except TimeoutError as exc:
        raise AuthError("the credential provider did not answer in time") from exc
    except ConfigException as exc:
        raise BrokenContextError(f"unusable kubeconfig entry: {exc}") from exc
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
        raise BrokenContextError(f"unusable kubeconfig entry: {exc}") from exc
    except ImportError as exc:
        raise BrokenContextError(f"auth provider needs a missing package: {exc.name}") from exc
    except ClusterError:
        raise
    except Exception as exc:
        raise AuthError(f"the credential provider failed: {exc}") from exc
    token = configuration.api_key.get("BearerToken")
    return token if isinstance(token, str) and token else None


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value


async def open_client(
    target: Target,
    *,
    policy: RequestPolicy,
    deadline: Deadline,
    max_connections: int = 1,
    exec_credentials: ExecCredentialCache | None = None,
    tls_contexts: TLSContexts | None = None,
    **client_options: Any,
) -> KubeClient:
    """An authenticated :class:`KubeClient` for ``target``; must run inside the event loop.

    ``max_connections`` bounds the client's keep-alive connections: every connection costs a
    TLS handshake on both ends, which is most of the CPU of reading a small cluster.

    Raises :class:`BrokenContextError` for unusable kubeconfig entries (missing files, bad
    keys), :class:`ExecPluginError` for a failing plugin and :class:`AuthError` for a credential
    provider that fails otherwise.
    """
    if target.problem:
        raise BrokenContextError(target.problem)
    cluster, user = target.cluster_entry, target.user_entry
    server = target.server_url or cluster.get("server")
    if not isinstance(server, str) or not server:
        raise BrokenContextError("the cluster has no server")
    exec_spec = user.get("exec")
    provider = user.get("auth-provider")
    auth: Auth
    tls = _client_tls(target, user)
    if isinstance(provider, Mapping) and provider.get("name"):
        timeout = max(0.0, min(policy.request_timeout, deadline.remaining()))
        auth = StaticAuth(await _auth_provider_token(target, cluster, user, timeout))
    elif isinstance(exec_spec, Mapping) and exec_spec:
        plan = plan_exec_plugin(exec_spec, cluster=cluster)
        auth = ExecAuth(
            plan,
            cache=exec_credentials if exec_credentials is not None else SHARED_EXEC_CREDENTIALS,
            policy=policy,
            deadline=deadline,
        )
    elif user.get("token"):
        auth = StaticAuth(f"Bearer {str(user['token']).strip()}")
    elif user.get("username") or user.get("password"):
        basic = f"{user.get('username', '')}:{user.get('password', '')}".encode()
        auth = StaticAuth("Basic " + base64.b64encode(basic).decode())
    else:
        auth = StaticAuth(None)
    proxy = select_proxy(server, target.proxy_url)
    transport = ClusterTransport(
        server_url=server,
        tls=tls,
        auth=auth,
        tls_contexts=tls_contexts if tls_contexts is not None else SHARED_TLS_CONTEXTS,
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy_url=proxy,
        disable_compression=bool(cluster.get("disable-compression")),
        connections=max_connections,
        impersonation=target.impersonation,
    )
    try:
        await transport.authorize()  # a failing plugin or an unusable key fails here
    except BaseException:
        await transport.close()
        raise
    return KubeClient(
        transport,
        server_url=server.rstrip("/"),
        proxy=describe_proxy(proxy) if proxy else None,
        policy=policy,
        deadline=deadline,
        **client_options,
    )


__all__ = [
    "SHARED_EXEC_CREDENTIALS",
    "USER_AGENT",
    "ClusterTransport",
    "ExecAuth",
    "ExecPluginError",
    "StaticAuth",
    "Ticket",
    "load_library",
    "needs_library",
    "open_client",
]
