from datetime import UTC, datetime

import pytest

from collector.errors import (
    AuthError,
    ClientApiError,
    ClusterTimeoutError,
    ConnectionLostError,
    ForbiddenError,
    GoneError,
    MalformedResponseError,
    ServerApiError,
    TLSError,
    TooManyRequestsError,
    UnreachableError,
)
from collector.kube.policy import (
    Deadline,
    RequestPolicy,
    backoff_delay,
    is_retryable,
    parse_retry_after,
    retry_delay,
)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TooManyRequestsError(status=429), True),
        (ServerApiError(status=500), True),
        (ServerApiError(status=503), True),
        (ConnectionLostError(), True),
        (ClusterTimeoutError(), True),
        (UnreachableError(), False),  # connection refused, DNS: not transient
        (TLSError(), False),
        (AuthError(), False),
        (ForbiddenError(status=403), False),
        (GoneError(status=410), False),
        (ClientApiError(status=400), False),
        (MalformedResponseError(), False),
    ],
)
def test_what_is_retried(error, retryable):
    assert is_retryable(error) is retryable


def test_backoff_is_exponential_capped_and_jittered():
    policy = RequestPolicy(request_timeout=10.0, max_retries=4, backoff_base=0.2, backoff_max=1.0)
    low = [backoff_delay(n, policy, rng=lambda: 0.0) for n in range(1, 6)]
    high = [backoff_delay(n, policy, rng=lambda: 1.0) for n in range(1, 6)]
    assert low == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    assert high == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0])


def test_retry_after_is_honoured_and_capped():
    policy = RequestPolicy(
        backoff_max=5.0, request_timeout=10.0, max_retries=4, backoff_base=0.2, retry_after_max=3.0
    )
    assert retry_delay(TooManyRequestsError(retry_after=2.0), 1, policy) == 2.0
    assert retry_delay(TooManyRequestsError(retry_after=120.0), 1, policy) == 3.0
    # without Retry-After, a 429 backs off like any retry
    assert retry_delay(TooManyRequestsError(), 1, policy, rng=lambda: 1.0) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header, seconds):
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


def test_deadline():
    clock = [100.0]
    deadline = Deadline.after(5, clock=lambda: clock[0])
    assert deadline.remaining() == 5
    clock[0] = 106.0
    assert deadline.expired()
    assert Deadline.never().remaining() == float("inf")
