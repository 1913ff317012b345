"""GET requests to one cluster: one attempt, and the retry loop around it.

Every request goes through the client's transport (``collector.kube.clients``: one kept-alive
connection, the credential of the moment) with an explicit timeout; the raw bytes are returned
for ``collector.normalize`` to decode. Errors are translated in ``translating``. A 401 is
answered as client-go answers it: when the credential can be renewed (an exec plugin), it is,
and the request is sent once more.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collector.errors import AuthError, ClusterError, ClusterTimeoutError
from collector.kube.policy import Deadline, RequestPolicy, is_retryable, retry_delay
from collector.kube.translating import response_error, transport_error
from collector.logging_setup import get_logger

logger = get_logger(__name__)

Query = Sequence[tuple[str, str | int]]
Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    url: str


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """What a :class:`KubeClient` sends its requests through (``clients.ClusterTransport``)."""

    @property
    def secrets(self) -> tuple[str, ...]: ...

    async def authorize(self) -> Any:
        """The credential for the next request (a ticket handed back to fetch/refused)."""

    async def refused(self, ticket: Any) -> bool:
        """A 401 answered ``ticket``: True when a renewed credential is worth one more try."""

    async def fetch(
        self,
        ticket: Any,
        path: str,
        *,
        query: Query,
        accept: str,
        timeout: float,  # noqa: ASYNC109
    ) -> RawResponse: ...

    async def close(self) -> None: ...


class KubeClient:
    """Reads one cluster through one kubeconfig context.

    Owns its transport (and so its connection): close it with :meth:`close`, or use the client
    as an async context manager.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        server_url: str,
        policy: RequestPolicy,
        deadline: Deadline,
        proxy: str | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._transport: Transport | None = transport
        self._secrets_of_closed: tuple[str, ...] = ()
        self.server_url = server_url
        self.proxy = proxy  # the proxy requests go through, without credentials (for errors)
        self.policy = policy
        self.deadline = deadline
        self._sleep = sleep
        self._rng = rng
        self.attempts = 0  # HTTP attempts made, retries included
        self.retries = 0
        self.reauthentications = 0  # credentials renewed after a 401

    @property
    def secrets(self) -> tuple[str, ...]:
        """Credentials learned at runtime (exec plugin output), for redaction."""
        if self._transport is not None:
            return self._transport.secrets
        return self._secrets_of_closed

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            self._secrets_of_closed = transport.secrets
            await transport.close()

    def url(self, path: str) -> str:
        return self.server_url.rstrip("/") + path

    async def get(
        self, path: str, *, query: Query = (), accept: str = "application/json"
    ) -> Response:
        """GET ``path``, retrying 429, 5xx, broken connections and timeouts within the policy
        and never past the deadline. Raises a :class:`ClusterError` for anything but 2xx.

        A 401 renews a renewable credential (an exec plugin's) and sends the request once more.
        """
        retry = 0
        reauthenticated = False
        while True:
            remaining = self.deadline.remaining()
            if remaining <= 0:
                raise ClusterTimeoutError(f"GET {self.url(path)}: cluster deadline reached")
            try:
                return await self.get_once(
                    path,
                    query=query,
                    accept=accept,
                    timeout=min(self.policy.request_timeout, remaining),
                )
            except _Unauthorized as refusal:
                if reauthenticated or not await self._refused(refusal.ticket):
                    raise refusal.error from None
                reauthenticated = True
                self.reauthentications += 1
                logger.info("GET %s: HTTP 401, renewing the credential once", self.url(path))
                continue
            except ClusterError as error:
                if not is_retryable(error) or retry >= self.policy.max_retries:
                    raise
                retry += 1
                delay = retry_delay(error, retry, self.policy, rng=self._rng)
                if delay >= self.deadline.remaining():
                    raise
                logger.debug(
                    "retry %d/%d of GET %s in %.3fs after %s",
                    retry,
                    self.policy.max_retries,
                    path,
                    delay,
                    error.error_class,
                )
                self.retries += 1
                await self._sleep(delay)

    async def get_once(
        self,
        path: str,
        *,
        query: Query = (),
        accept: str = "application/json",
        timeout: float,  # noqa: ASYNC109 (applied with asyncio.timeout)
    ) -> Response:
        """One attempt, bounded by ``timeout`` seconds from the start to the last byte (the
        credential is obtained first: an exec plugin run has its own timeout)."""
        transport = self._transport
        if transport is None:
            raise RuntimeError("KubeClient is closed")
        url = self.url(path)
        try:
            ticket = await transport.authorize()
        except Exception as exc:
            raise transport_error(exc, method="GET", url=url, proxy=self.proxy) from exc
        self.attempts += 1
        try:
            async with asyncio.timeout(timeout):
                resp = await transport.fetch(
                    ticket, path, query=query, accept=accept, timeout=timeout
                )
        except Exception as exc:
            raise transport_error(exc, method="GET", url=url, proxy=self.proxy) from exc
        status = resp.status
        if not 200 <= status <= 299:
            error = response_error(
                status, method="GET", url=url, path=path, body=resp.body, headers=resp.headers
            )
            if isinstance(error, AuthError) and status == 401:
                raise _Unauthorized(error, ticket)
            raise error
        return Response(
            status=status,
            content_type=resp.headers.get("Content-Type", ""),
            body=resp.body,
            url=url,
        )

    async def _refused(self, ticket: Any) -> bool:
        transport = self._transport
        return transport is not None and await transport.refused(ticket)


class _Unauthorized(AuthError):
    """A 401, with the credential it refused (caught by :meth:`KubeClient.get`)."""

    def __init__(self, error: AuthError, ticket: Any) -> None:
        super().__init__(error.message)
        self.error = error
        self.ticket = ticket


async def all_or_first_error(*aws: Awaitable[Any]) -> list[Any]:
    """Run awaitables concurrently; return all results, or raise the first error (unwrapped,
    unlike a TaskGroup's ExceptionGroup) after cancelling the others."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task in done and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
