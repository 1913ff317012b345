"""The aiohttp session of one cluster: its proxy (HTTP CONNECT or SOCKS5) and fixed headers.

Which proxy to use is decided by :func:`collector.proxies.select_proxy` (kubectl's rules); the
headers are the target's ``Impersonate-*`` headers. The session never reads the environment
itself (``trust_env=False``): aiohttp's rules differ from kubectl's.

- an ``http://`` or ``https://`` proxy is given per request (:func:`request_proxy`);
- a ``socks5://`` proxy is a connector of its own (aiohttp-socks), through which TLS to the
  API server runs as usual; host names are resolved by the proxy, as kubectl's SOCKS5 dialer
  does (an ``ssh -D`` tunnel sees the cluster's DNS, the laptop may not).
"""

from __future__ import annotations

import ssl
import urllib.parse
from collections.abc import Sequence
from typing import Any

import aiohttp
from multidict import CIMultiDict

from collector.proxies import SOCKS_SCHEMES

__all__ = ["connector", "open_session", "request_proxy", "tls_context"]

_READ_BUFSIZE = 2**21  # as kubernetes-asyncio: large objects exceed aiohttp's default


def _scheme(proxy: str) -> str:
    return urllib.parse.urlsplit(proxy).scheme.lower()


def request_proxy(proxy: str | None) -> str | None:
    """The ``proxy=`` of each request: HTTP(S) proxies only (SOCKS is in the connector)."""
    if proxy and _scheme(proxy) not in SOCKS_SCHEMES:
        return proxy
    return None


def tls_context(configuration: Any) -> ssl.SSLContext:
    """The client TLS context of a kubernetes-asyncio ``Configuration`` (its public fields),
    built as its REST client builds it."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def connector(proxy: str | None, **tcp_options: Any) -> aiohttp.TCPConnector:
    """A connector for one cluster: through a SOCKS5 ``proxy`` (aiohttp-socks, host names
    resolved by the proxy), else direct. ``tcp_options`` are ``aiohttp.TCPConnector``'s
    (``ssl``, ``limit``, ...); must be called inside the running loop."""
    if proxy and _scheme(proxy) in SOCKS_SCHEMES:
        from aiohttp_socks import ProxyConnector  # noqa: PLC0415 (only SOCKS users pay for it)

        socks: aiohttp.TCPConnector = ProxyConnector.from_url(proxy, rdns=True, **tcp_options)
        return socks
    return aiohttp.TCPConnector(**tcp_options)


def open_session(
    *,
    ssl_context: ssl.SSLContext,
    limit: int,
    proxy: str | None,
    headers: Sequence[tuple[str, str]] = (),
) -> aiohttp.ClientSession:
    """A session for one cluster: never reading the environment, sending ``headers`` (the
    impersonation headers; a name may repeat) with every request."""
    return aiohttp.ClientSession(
        connector=connector(proxy, ssl=ssl_context, limit=limit),
        trust_env=False,
        headers=CIMultiDict(headers),
        read_bufsize=_READ_BUFSIZE,
    )
