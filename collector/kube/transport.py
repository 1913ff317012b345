"""The HTTP transport to one cluster: its TLS context, its session, the headers of a request.

kubeinv talks to API servers over **one** kept-alive HTTP/1.1 connection per cluster (every
further connection costs a TLS handshake on both ends, which was most of the CPU of reading a
small cluster), spoken by :class:`HTTPConnection` on asyncio streams: a GET, its headers, a
body by length or in chunks, gzip. That is all the Kubernetes API needs of kubeinv, and it
costs a fraction of a general HTTP client's CPU per request and of its import time (aiohttp
took ~0.25 s to import, a third of a dry run). Each cluster has its own
:class:`ssl.SSLContext`:

- the CA is loaded from memory (``cadata``), never from a temporary file;
- a client certificate and key given as data (kubeconfig ``*-data`` fields, an exec plugin's
  output) are loaded through an anonymous in-memory file (``memfd_create``) that is closed as
  soon as the context has read it, or, where there is no memfd, a file in a private directory
  that is created, loaded and deleted at once: no key is left in a file, open or on disk;
- contexts are shared (:class:`TLSContexts`) between targets with the same CA, client
  certificate and verification, so a fleet of contexts signed by one CA builds one.

Two functions are the seams of the transport, kept small on purpose: :func:`open_connection`
opens the connection of a cluster through the proxy kubectl's rules chose
(:func:`collector.proxies.select_proxy`: an ``http(s)://`` proxy is a CONNECT tunnel, a
``socks5://`` one a SOCKS5 connection with the host name resolved by the proxy) and
:func:`request_headers` builds the headers of each request (credential, impersonation).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import socket
import ssl
import tempfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from collector import __version__

USER_AGENT = f"kubeinv/{__version__}"


@dataclass(frozen=True)
class TLSMaterial:
    """What the TLS context of a cluster is made of (PEM bytes, or the paths of PEM files)."""

    ca: bytes | None = None  # None: the system's trust store
    cert: bytes | None = None
    key: bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False  # insecure-skip-tls-verify

    def cache_key(self) -> tuple[object, ...]:
        digest = hashlib.sha256()
        for part in (self.ca, self.cert, self.key):
            digest.update(len(part or b"").to_bytes(8, "big"))
            digest.update(part or b"")
        return (digest.digest(), self.cert_file, self.key_file, self.insecure)


def build_ssl_context(material: TLSMaterial) -> ssl.SSLContext:
    """A client TLS context; ``ssl.SSLError``/``OSError``/``ValueError`` when unusable."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if material.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif material.ca:
        ctx.load_verify_locations(cadata=material.ca.decode("ascii", "replace"))
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    ctx.set_alpn_protocols(["http/1.1"])
    if material.cert_file or material.key_file:
        ctx.load_cert_chain(material.cert_file or "", material.key_file or material.cert_file)
    elif material.cert or material.key:
        load_cert_chain_data(ctx, material.cert or b"", material.key or b"")
    return ctx


def load_cert_chain_data(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load a PEM certificate and key held in memory; no file holds them afterwards.

    OpenSSL's Python binding only loads a chain from a path: on Linux the path is an anonymous
    memory file (memfd) closed right after loading; elsewhere a file in a private directory,
    deleted right after loading.
    """
    data = cert.rstrip(b"\n") + b"\n" + key
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd_create("kubeinv-client-cert", getattr(os, "MFD_CLOEXEC", 0))
        try:
            os.write(fd, data)
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    directory = tempfile.mkdtemp(prefix="kubeinv-tls-")  # mode 0700
    try:
        path = os.path.join(directory, "client.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        ctx.load_cert_chain(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


class TLSContexts:
    """TLS contexts shared between targets with the same material, and kept from run to run.

    Bounded (least recently used first out) so that a daemon whose certificates rotate does not
    grow: a context with a CA and a client certificate takes ~24 KB and ~1 ms of CPU to build,
    so 1,024 of them hold ~25 MB.
    """

    def __init__(self, max_size: int = 1024) -> None:
        self.max_size = max_size
        self._contexts: OrderedDict[tuple[object, ...], ssl.SSLContext] = OrderedDict()
        self.built = 0  # contexts built, for tests and benchmarks

    def get(self, material: TLSMaterial) -> ssl.SSLContext:
        key = material.cache_key()
        ctx = self._contexts.get(key)
        if ctx is not None:
            self._contexts.move_to_end(key)
            return ctx
        ctx = build_ssl_context(material)
        self.built += 1
        self._contexts[key] = ctx
        while len(self._contexts) > self.max_size:
            self._contexts.popitem(last=False)
        return ctx

    def clear(self) -> None:
        self._contexts.clear()


SHARED_TLS_CONTEXTS = TLSContexts()


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach one cluster."""

    server_url: str
    ssl_context: ssl.SSLContext
    tls_server_name: str | None = None
    proxy_url: str | None = None
    disable_compression: bool = False

    @cached_property
    def parts(self) -> _UrlParts:
        return _split(self.server_url)


@dataclass(frozen=True)
class _UrlParts:
    scheme: str
    host: str  # without brackets
    port: int
    base_path: str  # a path prefix of the server URL, without the trailing "/"
    host_header: str


def _split(url: str) -> _UrlParts:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"unusable server URL {url!r}")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    return _UrlParts(
        scheme=scheme,
        host=host,
        port=port,
        base_path=parts.path.rstrip("/"),
        host_header=shown if port == default else f"{shown}:{port}",
    )


class ConnectFailed(OSError):
    """The TCP connection to the API server (or its proxy) could not be opened."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(os_error.errno, os_error.strerror or str(os_error))
        self.os_error = os_error


class ProtocolError(ConnectionError):
    """The server's answer is not HTTP/1.1 as expected, or the connection ended mid-answer."""


async def open_connection(
    endpoint: Endpoint,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open the connection of one cluster: the one place where it is opened (TCP, through the
    proxy :func:`collector.proxies.select_proxy` chose, then TLS). ``ConnectFailed`` when it
    cannot connect; ``ssl.SSLError`` (``SSLCertVerificationError`` included) when TLS fails."""
    parts = endpoint.parts
    tls = endpoint.ssl_context if parts.scheme == "https" else None
    server_hostname = (endpoint.tls_server_name or parts.host) if tls else None
    proxy = endpoint.proxy_url
    if proxy and urlsplit(proxy).scheme.lower() in ("socks5", "socks5h"):
        sock = await _socks5_socket(proxy, parts.host, parts.port)
        try:
            return await asyncio.open_connection(
                sock=sock, ssl=tls, server_hostname=server_hostname, limit=_LIMIT
            )
        except BaseException:
            sock.close()
            raise
    if proxy:
        return await _open_through_proxy(endpoint, tls, server_hostname)
    try:
        return await asyncio.open_connection(
            parts.host, parts.port, ssl=tls, server_hostname=server_hostname, limit=_LIMIT
        )
    except ssl.SSLError:
        raise
    except OSError as exc:
        raise ConnectFailed(exc) from exc


async def _socks5_socket(proxy: str, host: str, port: int) -> socket.socket:
    """A TCP connection to ``host:port`` through a SOCKS5 proxy, the host name resolved by the
    proxy, as kubectl's SOCKS5 dialer does (an ``ssh -D`` tunnel sees the cluster's DNS)."""
    from python_socks import ProxyError  # noqa: PLC0415 (only SOCKS users pay for it)
    from python_socks.async_.asyncio import Proxy  # noqa: PLC0415

    url = proxy.replace("socks5h://", "socks5://", 1)
    try:
        return await Proxy.from_url(url, rdns=True).connect(host, port, timeout=None)
    except ProxyError as exc:
        raise ConnectFailed(OSError(f"the SOCKS5 proxy refused: {exc}")) from exc
    except OSError as exc:
        raise ConnectFailed(exc) from exc
    except TimeoutError:
        raise
    except Exception as exc:  # python-socks' own errors (timeouts, connection errors)
        raise ConnectFailed(OSError(str(exc) or type(exc).__name__)) from exc


async def _open_through_proxy(
    endpoint: Endpoint, tls: ssl.SSLContext | None, server_hostname: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An HTTP CONNECT tunnel through an ``http://`` or ``https://`` proxy, then TLS inside."""
    proxy = urlsplit(endpoint.proxy_url or "")
    scheme = proxy.scheme.lower() or "http"
    if scheme not in ("http", "https") or not proxy.hostname:
        raise ConnectFailed(OSError(f"unsupported proxy scheme {proxy.scheme!r}"))
    proxy_tls = ssl.create_default_context() if scheme == "https" else None
    try:
        reader, writer = await asyncio.open_connection(
            proxy.hostname,
            proxy.port or (443 if scheme == "https" else 80),
            ssl=proxy_tls,
            limit=_LIMIT,
        )
    except ssl.SSLError:
        raise
    except OSError as exc:
        raise ConnectFailed(exc) from exc
    parts = endpoint.parts
    authority = (
        f"[{parts.host}]:{parts.port}" if ":" in parts.host else f"{parts.host}:{parts.port}"
    )
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.username is not None:
        pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode()
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(pair).decode())
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ConnectFailed(OSError("the proxy closed the connection")) from exc
        status, _headers = _parse_head(head)
        if status != 200:
            raise ConnectFailed(OSError(f"the proxy answered CONNECT with HTTP {status}"))
        if tls is not None:
            await writer.start_tls(tls, server_hostname=server_hostname)
    except BaseException:
        writer.transport.abort()
        raise
    return reader, writer


_LIMIT = 1 << 20  # longest header block accepted


class _Headers(dict[str, str]):
    """Response headers; keys are lower case, ``get`` ignores case."""

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def _parse_head(head: bytes) -> tuple[int, _Headers]:
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.1 answer: {lines[0][:60]!r}")
    try:
        status = int(rest[:3])
    except ValueError as exc:
        raise ProtocolError(f"bad status line {lines[0][:60]!r}") from exc
    headers = _Headers()
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ProtocolError(f"bad header line {line[:60]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return status, headers


@dataclass(frozen=True)
class HTTPResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class HTTPConnection:
    """One kept-alive HTTP/1.1 connection to a cluster, used by one request at a time.

    A connection the server closed while idle is reopened once, transparently, as browsers and
    client-go do; a failure during a request closes it (the next request opens a new one).
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.waiting = 0
        self.opened = 0  # connections opened (each a TLS handshake)

    async def get(
        self,
        path: str,
        query: Sequence[tuple[str, str | int]],
        headers: Sequence[tuple[str, str]],
    ) -> HTTPResponse:
        endpoint = self.endpoint
        parts = endpoint.parts
        target = parts.base_path + path
        if query:
            target += "?" + urlencode([(k, str(v)) for k, v in query])
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.host_header}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if not endpoint.disable_compression:
            lines.append("Accept-Encoding: gzip")
        text = "\r\n".join(lines)
        if "\n" in text.replace("\r\n", "") or "\r" in text.replace("\r\n", ""):
            raise ValueError("a request header contains a line break")
        request = (text + "\r\n\r\n").encode("latin-1")
        self.waiting += 1  # requests queued for this connection, for choosing among several
        queued = True
        try:
            async with self._lock:
                self.waiting -= 1
                queued = False
                return await self._exchange(request)
        finally:
            if queued:
                self.waiting -= 1

    async def _exchange(self, request: bytes) -> HTTPResponse:
        reused = self._writer is not None
        try:
            if self._writer is None:
                self._reader, self._writer = await open_connection(self.endpoint)
                self.opened += 1
            try:
                return await self._send(request)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                # ProtocolError: the answer had begun, so the request reached the server.
                if not reused or isinstance(exc, ProtocolError):
                    raise
            # The server closed the idle connection before answering: open it again, once.
            self._drop()
            self._reader, self._writer = await open_connection(self.endpoint)
            self.opened += 1
            return await self._send(request)
        except BaseException:
            self._drop()
            raise

    async def _send(self, request: bytes) -> HTTPResponse:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        writer.write(request)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial == b"":
                raise  # closed before any byte of the answer
            raise ProtocolError("the connection ended inside the answer's headers") from exc
        status, headers = _parse_head(head)
        try:
            body = await _read_body(reader, status, headers)
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError(
                f"the connection ended inside the answer ({len(exc.partial)} bytes of "
                f"{exc.expected if exc.expected is not None else 'more'})"
            ) from exc
        if headers.get("connection", "").lower() == "close" or headers.get("_until_eof"):
            self._drop()
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        return HTTPResponse(status, headers, body)

    def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.transport.abort()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 0.5)
            if not writer.transport.is_closing():
                writer.transport.abort()


async def _read_body(reader: asyncio.StreamReader, status: int, headers: _Headers) -> bytes:
    if status in (204, 304) or 100 <= status < 200:
        return b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise ProtocolError("bad chunk size in the answer") from exc
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            if await reader.readexactly(2) != b"\r\n":
                raise ProtocolError("bad chunk end in the answer")
    length = headers.get("content-length")
    if length is not None:
        try:
            return await reader.readexactly(int(length))
        except ValueError as exc:
            raise ProtocolError(f"bad Content-Length {length[:30]!r}") from exc
    headers["_until_eof"] = "1"
    return await reader.read()


def request_headers(
    authorization: str | None, accept: str, impersonation: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """The headers of one request: the one place where they are built. ``impersonation`` are
    the target's ``Impersonate-*`` headers (a name may repeat)."""
    headers = [("Accept", accept), ("User-Agent", USER_AGENT)]
    if authorization:
        headers.append(("Authorization", authorization))
    headers.extend(impersonation)
    return headers


__all__ = [
    "SHARED_TLS_CONTEXTS",
    "USER_AGENT",
    "ConnectFailed",
    "Endpoint",
    "HTTPConnection",
    "HTTPResponse",
    "ProtocolError",
    "TLSContexts",
    "TLSMaterial",
    "build_ssl_context",
    "load_cert_chain_data",
    "open_connection",
    "request_headers",
]
