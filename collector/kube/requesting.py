"""GET requests to one cluster: one attempt, and the retry loop around it.

Every request goes through kubernetes-asyncio's configured ``ApiClient`` (so its auth and TLS
apply) with ``_preload_content=False`` and an explicit ``_request_timeout``; the raw bytes are
returned for ``collector.normalize`` to decode. Errors are translated in ``translating``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from collector.errors import ClusterError, ClusterTimeoutError
from collector.kube.policy import Deadline, RequestPolicy, is_retryable, retry_delay
from collector.kube.translating import response_error, transport_error

logger = logging.getLogger(__name__)

Query = Sequence[tuple[str, str | int]]
Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True)
class Response:
    status: int
    content_type: str
    body: bytes
    url: str


class KubeClient:
    """Reads one cluster through one kubeconfig context.

    Owns its ``ApiClient`` (and so its aiohttp session): close it with :meth:`close`, or use the
    client as an async context manager.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        server_url: str,
        policy: RequestPolicy,
        deadline: Deadline,
        secrets: tuple[str, ...] = (),
        proxy: str | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._api = api_client
        self.server_url = server_url
        self.policy = policy
        self.deadline = deadline
        self.secrets = secrets  # credentials learned at runtime (exec plugin output), for redaction
        self.proxy = proxy  # the proxy requests go through, without credentials (for errors)
        self._sleep = sleep
        self._rng = rng
        self.attempts = 0  # HTTP attempts made, retries included
        self.retries = 0

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._api is not None:
            api, self._api = self._api, None
            await api.close()

    def url(self, path: str) -> str:
        return self.server_url.rstrip("/") + path

    async def get(
        self, path: str, *, query: Query = (), accept: str = "application/json"
    ) -> Response:
        """GET ``path``, retrying 429, 5xx, broken connections and timeouts within the policy
        and never past the deadline. Raises a :class:`ClusterError` for anything but 2xx."""
        retry = 0
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
        timeout: float,  # noqa: ASYNC109 (also passed to aiohttp as _request_timeout)
    ) -> Response:
        """One attempt, bounded by ``timeout`` seconds from the start to the last byte."""
        if self._api is None:
            raise RuntimeError("KubeClient is closed")
        self.attempts += 1
        url = self.url(path)
        try:
            async with asyncio.timeout(timeout):
                resp = await self._api.call_api(
                    path,
                    "GET",
                    query_params=list(query) or None,
                    header_params={"Accept": accept},
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _request_timeout=timeout,
                )
                try:
                    body: bytes = await resp.read()
                finally:
                    resp.release()
        except Exception as exc:
            raise transport_error(exc, method="GET", url=url, proxy=self.proxy) from exc
        status = int(resp.status)
        if not 200 <= status <= 299:
            raise response_error(
                status, method="GET", url=url, path=path, body=body, headers=resp.headers
            )
        return Response(
            status=status, content_type=resp.headers.get("Content-Type", ""), body=body, url=url
        )


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
