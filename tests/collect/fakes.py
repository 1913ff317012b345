"""A scripted stand-in for a cluster's transport, for tests of the request loop.

Only the retry and paging logic is tested with it; everything that talks HTTP is tested against
the simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collector.kube.policy import Deadline, RequestPolicy
from collector.kube.requesting import KubeClient


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


Step = FakeResponse | BaseException | Callable[[str, dict[str, Any]], FakeResponse]


class FakeApiClient:
    """Answers each request with the next scripted step (a response, or an exception to raise).

    Each call is recorded as (path, {"query": ..., "accept": ..., "timeout": ...}).
    """

    secrets: tuple[str, ...] = ()

    def __init__(self, steps: list[Step] | Callable[[str, dict[str, Any]], Step]) -> None:
        self.steps = steps
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    async def authorize(self) -> None:
        return None

    async def refused(self, ticket: object) -> bool:
        return False

    async def fetch(
        self,
        ticket: object,
        path: str,
        *,
        query: Any,
        accept: str,
        timeout: float,  # noqa: ASYNC109 (the transport's signature)
    ) -> FakeResponse:
        assert timeout > 0
        kw = {"query": list(query), "accept": accept, "timeout": timeout}
        self.calls.append((path, kw))
        step = self.steps(path, kw) if callable(self.steps) else self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(path, kw)
        return step

    async def close(self) -> None:
        self.closed = True


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def fake_client(
    steps: Any,
    *,
    policy: RequestPolicy | None = None,
    deadline: Deadline | None = None,
    sleep: RecordingSleep | None = None,
) -> tuple[KubeClient, FakeApiClient, RecordingSleep]:
    api = FakeApiClient(steps)
    sleep = sleep or RecordingSleep()
    client = KubeClient(
        api,
        server_url="https://127.0.0.1:6443",
        policy=policy
        or RequestPolicy(request_timeout=10.0, max_retries=4, backoff_base=0.0, backoff_max=0.0),
        deadline=deadline or Deadline.never(),
        sleep=sleep,
        rng=lambda: 0.5,
    )
    return client, api, sleep
