"""The retry loop: exact attempt counts with the sleep patched and zero backoffs (kopf style)."""

import asyncio
import logging

import pytest

from collector.errors import (
    ApiError,
    AuthError,
    ClientApiError,
    ClusterTimeoutError,
    ConnectionLostError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    ServerApiError,
    TooManyRequestsError,
    UnreachableError,
)
from collector.kube.policy import Deadline, RequestPolicy
from collector.kube.transport import ConnectFailed, ProtocolError
from tests.collect.fakes import FakeResponse, fake_client

OK = FakeResponse(200, b'{"major": "1"}')


def status(code, body=b'{"kind":"Status","message":"nope"}', **headers):
    return FakeResponse(code, body, {"Content-Type": "application/json", **headers})


async def test_success_is_one_attempt():
    client, api, sleep = fake_client([OK])
    response = await client.get("/version")
    assert response.body == b'{"major": "1"}'
    assert response.url == "https://127.0.0.1:6443/version"
    assert len(api.calls) == 1 and sleep.delays == []


@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_5xx_retried_then_success(code):
    client, api, sleep = fake_client([status(code), status(code), OK])
    assert (await client.get("/version")).status == 200
    assert len(api.calls) == 3
    assert len(sleep.delays) == 2
    assert client.retries == 2


async def test_5xx_gives_up_after_four_retries(caplog):
    caplog.set_level(logging.DEBUG, logger="kubeinv.kube.requesting")
    client, api, sleep = fake_client([status(500)] * 10)
    with pytest.raises(ServerApiError) as info:
        await client.get("/api/v1/nodes")
    assert len(api.calls) == 5  # 1 attempt + 4 retries
    assert len(sleep.delays) == 4
    assert info.value.status == 500
    assert "HTTP 500: nope" in str(info.value)
    assert "retry 4/4 of GET /api/v1/nodes" in caplog.records[-1].getMessage()


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, ClientApiError),
        (401, AuthError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (410, GoneError),
        (422, ClientApiError),
    ],
)
async def test_other_4xx_never_retried(code, error):
    client, api, sleep = fake_client([status(code), OK])
    with pytest.raises(error):
        await client.get("/api/v1/nodes")
    assert len(api.calls) == 1 and sleep.delays == []


async def test_429_honours_retry_after():
    client, api, sleep = fake_client(
        [status(429, **{"Retry-After": "2"}), status(429, **{"Retry-After": "1"}), OK]
    )
    await client.get("/version")
    assert sleep.delays == [2.0, 1.0]
    assert len(api.calls) == 3


async def test_429_retry_after_is_bounded():
    policy = RequestPolicy(
        request_timeout=10.0, max_retries=4, backoff_base=0, backoff_max=0, retry_after_max=3
    )
    client, _api, sleep = fake_client([status(429, **{"Retry-After": "3600"}), OK], policy=policy)
    await client.get("/version")
    assert sleep.delays == [3.0]


async def test_429_exhausted_keeps_class_and_retry_after():
    client, api, _sleep = fake_client([status(429, **{"Retry-After": "0"})] * 6)
    with pytest.raises(TooManyRequestsError) as info:
        await client.get("/version")
    assert info.value.retry_after == 0.0
    assert info.value.error_class == "Throttled"
    assert len(api.calls) == 5


async def test_backoff_grows_exponentially():
    policy = RequestPolicy(request_timeout=10.0, max_retries=4, backoff_base=0.1, backoff_max=10)
    client, _api, sleep = fake_client([status(503)] * 5, policy=policy)
    with pytest.raises(ServerApiError):
        await client.get("/version")
    # rng() is 0.5: three quarters of the nominal delay
    assert sleep.delays == pytest.approx([0.075, 0.15, 0.3, 0.6])


async def test_connection_resets_and_timeouts_are_retried():
    client, api, _sleep = fake_client(
        [
            asyncio.IncompleteReadError(b"", None),
            ConnectionResetError(104, "Connection reset by peer"),
            TimeoutError(),
            ProtocolError("the connection ended inside the answer"),
            OK,
        ]
    )
    await client.get("/version")
    assert len(api.calls) == 5


async def test_connection_refused_is_not_retried():
    refused = ConnectFailed(ConnectionRefusedError(111, "Connection refused"))
    client, api, _sleep = fake_client([refused, OK])
    with pytest.raises(UnreachableError) as info:
        await client.get("/version")
    assert not isinstance(info.value, ConnectionLostError)
    assert "cannot connect: Connection refused" in str(info.value)
    assert isinstance(info.value.__cause__, ConnectFailed)  # chained
    assert len(api.calls) == 1


async def test_timeouts_translate_and_chain():
    client, api, _sleep = fake_client([TimeoutError()] * 5)
    with pytest.raises(ClusterTimeoutError) as info:
        await client.get("/version")
    assert isinstance(info.value.__cause__, TimeoutError)
    assert len(api.calls) == 5


async def test_no_retry_past_the_deadline():
    clock = [0.0]

    class Sleep:
        def __init__(self):
            self.delays = []

        async def __call__(self, delay):
            self.delays.append(delay)
            clock[0] += delay

    policy = RequestPolicy(request_timeout=10.0, max_retries=4, backoff_base=1.0, backoff_max=100)
    deadline = Deadline.after(2.5, clock=lambda: clock[0])
    sleep = Sleep()
    client, api, _ = fake_client([status(500)] * 10, policy=policy, deadline=deadline, sleep=sleep)
    with pytest.raises(ServerApiError):
        await client.get("/version")
    # delays 0.75 and 1.5 fit (total 2.25); the next (3.0) would pass the deadline
    assert sleep.delays == [0.75, 1.5]
    assert len(api.calls) == 3


async def test_request_timeout_capped_by_deadline():
    clock = [0.0]
    deadline = Deadline.after(0.5, clock=lambda: clock[0])
    client, api, _ = fake_client([OK], deadline=deadline)
    await client.get("/version")
    assert api.calls[0][1]["timeout"] == 0.5


async def test_expired_deadline_sends_nothing():
    clock = [10.0]
    deadline = Deadline(at=5.0, clock=lambda: clock[0])
    client, api, _ = fake_client([OK], deadline=deadline)
    with pytest.raises(ClusterTimeoutError, match="cluster deadline"):
        await client.get("/version")
    assert api.calls == []


async def test_request_carries_accept_query_and_auth_settings():
    client, api, _ = fake_client([OK])
    await client.get("/api", query=[("limit", 5)], accept="application/x")
    _path, kw = api.calls[0]
    assert kw["accept"] == "application/x"
    assert kw["query"] == [("limit", 5)]


async def test_close_closes_the_api_client():
    client, api, _ = fake_client([OK])
    async with client:
        pass
    assert api.closed


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (302, "ApiError"),
        (400, "ClientApiError"),
        (403, "ForbiddenError"),
        (404, "NotFoundError"),
        (410, "GoneError"),
        (418, "ClientApiError"),
        (429, "TooManyRequestsError"),
        (500, "ServerApiError"),
        (503, "ServerApiError"),
    ],
)
def test_each_status_has_its_error_class(code, error):
    assert ApiError.for_status(code).__name__ == error
