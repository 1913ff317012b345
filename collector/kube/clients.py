"""Building one authenticated client per target with kubernetes-asyncio.

kubernetes-asyncio loads the target's self-contained kubeconfig (client certificates, tokens,
OIDC, basic auth; TLS settings, tls-server-name), which :mod:`collector.kubeconfig` has already
interpreted (paths resolved, token files inlined and stripped, kubectl's refusals found). Around
the loader:

- exec plugins are run by :mod:`collector.kube.exec_plugin` (with a timeout), and the loader
  gets the credential they return;
- the session follows kubectl's proxy rules (:func:`collector.proxies.select_proxy`, SOCKS5
  included) and sends the target's impersonation headers (:mod:`collector.kube.routing`);
- the certificate files the loader writes for ``*-data`` fields go into a private directory
  (:class:`CredentialFiles`) that is removed when the run ends.

Nothing here writes back into the user's kubeconfig.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import os
import shutil
import ssl
import tempfile
from typing import TYPE_CHECKING, Any

from collector import __version__
from collector.errors import (
    AuthError,
    BrokenContextError,
    ClusterError,
    ExecPluginError,
)
from collector.kube.exec_plugin import run_exec_plugin
from collector.kube.policy import Deadline, RequestPolicy
from collector.kube.requesting import KubeClient
from collector.kube.routing import open_session, request_proxy, tls_context
from collector.proxies import describe_proxy, proxy_secrets, select_proxy

if TYPE_CHECKING:
    from collector.targets import Target

USER_AGENT = f"kubeinv/{__version__}"


class CredentialFiles:
    """A private directory for the key and certificate files the kubeconfig loader writes.

    kubernetes-asyncio writes every ``*-data`` field to a temporary file (its TLS stack wants
    paths) and caches them in a module-level dict until the process exits. Pointing the loader
    here and removing the directory afterwards keeps keys off the disk once a run is over.
    """

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="kubeinv-credentials-")

    def cleanup(self) -> None:
        _close_descriptors_under(self.path)
        with contextlib.suppress(Exception):
            from kubernetes_asyncio.config import kube_config  # noqa: PLC0415

            cache: dict[str, str] = kube_config._temp_files
            for key, name in list(cache.items()):
                if os.path.dirname(name) == self.path:
                    del cache[key]
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> CredentialFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _close_descriptors_under(directory: str) -> None:
    """Close this process's descriptors of files in ``directory``.

    kubernetes-asyncio 36.x creates each credential file with ``tempfile.mkstemp`` and never
    closes the descriptor it returns: without this, every run leaks one descriptor per
    ``*-data`` field (still readable through ``/proc/PID/fd`` after the file is deleted).
    Nothing else opens files there, and the loader is done with them when the run ends.
    """
    prefix = os.path.join(directory, "")
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # no procfs: nothing to find
        return
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith(prefix):
                os.close(int(name))
        except (OSError, ValueError):
            continue


def load_library() -> None:
    """Import kubernetes_asyncio's client now (~0.5 s, far more on a busy machine).

    Call it before any cluster deadline starts: imported lazily inside :func:`open_client`, the
    import blocks the event loop within the first target's deadline, which then fails with a
    Timeout instead of its real outcome (e.g. a TLS error).
    """
    from kubernetes_asyncio.client import ApiClient  # noqa: PLC0415, F401
    from kubernetes_asyncio.config.kube_config import KubeConfigLoader  # noqa: PLC0415, F401


async def open_client(
    target: Target,
    *,
    policy: RequestPolicy,
    deadline: Deadline,
    credential_files: CredentialFiles | None = None,
    max_connections: int = 2,
    **client_options: Any,
) -> KubeClient:
    """An authenticated :class:`KubeClient` for ``target``; must run inside the event loop.

    ``max_connections`` bounds the client's keep-alive pool (kubernetes-asyncio's default is
    5 per CPU): every connection costs a TLS handshake on both ends, which is most of the CPU of
    reading a small cluster, while two already carry its requests with little queueing.

    Raises :class:`BrokenContextError` for unusable kubeconfig entries (missing files, bad
    keys), :class:`ExecPluginError` for a failing plugin and :class:`AuthError` for a credential
    provider that fails otherwise.
    """
    if target.problem:
        raise BrokenContextError(target.problem)
    # Imported here: kubernetes_asyncio.client costs ~0.5 s to import (every model class).
    from kubernetes_asyncio.client import ApiClient, Configuration  # noqa: PLC0415
    from kubernetes_asyncio.config.config_exception import ConfigException  # noqa: PLC0415
    from kubernetes_asyncio.config.kube_config import KubeConfigLoader  # noqa: PLC0415

    config = copy.deepcopy(dict(target.config))
    user: dict[str, Any] = config["users"][0]["user"]
    cluster: dict[str, Any] = config["clusters"][0]["cluster"]

    secrets: tuple[str, ...] = ()
    if user.get("exec") and (user.get("auth-provider") or {}).get("name") not in ("gcp", "oidc"):
        credential = await run_exec_plugin(
            user["exec"],
            cluster=cluster,
            timeout=max(0.0, min(policy.request_timeout, deadline.remaining())),
        )
        secrets = credential.secrets
        del user["exec"]
        if credential.token:
            user["token"] = credential.token
        else:
            assert credential.client_certificate_data and credential.client_key_data
            for key in ("client-certificate", "client-key"):
                user.pop(key, None)
            user["client-certificate-data"] = base64.b64encode(
                credential.client_certificate_data.encode()
            ).decode()
            user["client-key-data"] = base64.b64encode(credential.client_key_data.encode()).decode()

    configuration = Configuration()
    loader = KubeConfigLoader(
        config_dict=config,
        active_context=target.context_name,
        config_base_path=os.path.dirname(target.kubeconfig_path) or None,
        temp_file_path=credential_files.path if credential_files else None,
    )
    try:
        # OIDC refresh talks to the identity provider: bounded like any request.
        async with asyncio.timeout(max(0.0, min(policy.request_timeout, deadline.remaining()))):
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

    configuration.connection_pool_maxsize = max(1, max_connections)
    try:
        api_client = ApiClient(configuration=configuration)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise BrokenContextError(
            f"cannot load the TLS certificates or key of the kubeconfig: {exc}"
        ) from exc
    api_client.user_agent = USER_AGENT
    proxy = select_proxy(str(configuration.host), target.proxy_url)
    await _route(api_client, configuration, proxy, target.impersonation)
    return KubeClient(
        api_client,
        server_url=str(configuration.host),
        proxy=describe_proxy(proxy) if proxy else None,
        policy=policy,
        deadline=deadline,
        secrets=(*secrets, *proxy_secrets(proxy)),
        **client_options,
    )


async def _route(
    api_client: Any, configuration: Any, proxy: str | None, headers: tuple[tuple[str, str], ...]
) -> None:
    """Replace the REST client's session by one that follows kubectl's proxy rules and sends
    the impersonation headers (the hook of :mod:`collector.kube.routing`)."""
    rest = api_client.rest_client
    await rest.pool_manager.close()
    rest.pool_manager = open_session(
        ssl_context=tls_context(configuration),
        limit=configuration.connection_pool_maxsize,
        proxy=proxy,
        headers=headers,
    )
    rest.proxy = request_proxy(proxy)


__all__ = ["USER_AGENT", "CredentialFiles", "ExecPluginError", "load_library", "open_client"]
