"""The one place where transport exceptions and HTTP error statuses become kubeinv errors.

Everything raised out of ``collector.kube`` is a :class:`collector.errors.ClusterError`, chained
with ``from`` to the library exception it replaces. Messages name the request (method and URL)
but never a credential: URLs carry no secrets, and response bodies are reduced to the
``message`` of a Kubernetes ``Status``, cut short.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Mapping

import msgspec

from collector.errors import (
    ApiError,
    AuthError,
    ClusterError,
    ClusterTimeoutError,
    ConnectionLostError,
    MalformedResponseError,
    TLSError,
    TooManyRequestsError,
    UnreachableError,
)
from collector.kube.policy import parse_retry_after
from collector.kube.transport import ConnectFailed, ProtocolError

_MAX_DETAIL = 300


class _Status(msgspec.Struct):
    """The part of a Kubernetes ``Status`` body worth showing to a user."""

    message: str | None = None
    reason: str | None = None


_status_decoder = msgspec.json.Decoder(_Status)


def status_detail(body: bytes) -> str:
    """A short, printable summary of an error response body."""
    if not body:
        return ""
    try:
        status = _status_decoder.decode(body)
    except msgspec.MsgspecError:
        text = body[:_MAX_DETAIL].decode("utf-8", "replace")
        return " ".join(text.split())
    detail = status.message or status.reason or ""
    return detail[:_MAX_DETAIL]


def response_error(
    status: int,
    *,
    method: str,
    url: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
) -> ClusterError:
    """The error for a non-2xx response."""
    detail = status_detail(body)
    message = f"{method} {url}: HTTP {status}" + (f": {detail}" if detail else "")
    if status == 401:
        return AuthError(message)
    cls = ApiError.for_status(status)
    retry_after = None
    if cls is TooManyRequestsError:
        retry_after = parse_retry_after(headers.get("Retry-After"))
    return cls(message, status=status, path=path, retry_after=retry_after)


def transport_error(
    exc: BaseException, *, method: str, url: str, proxy: str | None = None
) -> ClusterError:
    """Translate an exception raised while sending a request or reading its response;
    ``proxy`` (without credentials) is named when the request went through one."""
    where = f"{method} {url}" + (f" via proxy {proxy}" if proxy else "")
    if isinstance(exc, ClusterError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSError(f"{where}: TLS verification failed: {exc.verify_message or _reason(exc)}")
    if isinstance(exc, ssl.SSLError):
        return TLSError(f"{where}: TLS handshake failed: {_reason(exc)}")
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ClusterTimeoutError(f"{where}: no answer before the request timeout")
    if isinstance(exc, ConnectFailed):
        os_error = exc.os_error
        if isinstance(os_error, socket.gaierror):
            return UnreachableError(f"{where}: cannot connect: cannot resolve the host")
        return UnreachableError(f"{where}: cannot connect: {_reason(os_error)}")
    if isinstance(exc, ProtocolError):
        return ConnectionLostError(f"{where}: connection lost: {_reason(exc)}")
    if isinstance(exc, asyncio.IncompleteReadError):
        return ConnectionLostError(f"{where}: connection lost: the server closed the connection")
    if isinstance(exc, ConnectionError | EOFError):
        return ConnectionLostError(f"{where}: connection lost: {_reason(exc)}")
    if isinstance(exc, OSError):
        return UnreachableError(f"{where}: {_reason(exc)}")
    return UnreachableError(f"{where}: unexpected {type(exc).__name__}: {_reason(exc)}")


def malformed(what: str, url: str, exc: BaseException) -> MalformedResponseError:
    return MalformedResponseError(f"GET {url}: undecodable {what}: {_reason(exc)}"[:500])


# user:password@ in a URL (a library may name a proxy URL, credentials included, in its errors)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")


def _reason(exc: BaseException) -> str:
    text = _URL_USERINFO.sub(r"\1", str(exc).strip())
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text[:_MAX_DETAIL] or type(exc).__name__
