"""How requests to one cluster are bounded: timeouts, retries, backoff and the cluster deadline.

Pure: no I/O, no kubernetes_asyncio. The request loop in ``requesting`` applies these rules.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from collector.errors import (
    ClusterError,
    ClusterTimeoutError,
    ConnectionLostError,
    ServerApiError,
    TLSError,
    TooManyRequestsError,
)

if TYPE_CHECKING:
    from collector.settings import CollectionSettings


@dataclass(frozen=True)
class RequestPolicy:
    """Bounds of every request made to a cluster (README, "Failure handling"). The user's
    values come from collector.settings.CollectionSettings (:meth:`of`), where their defaults
    are declared."""

    request_timeout: float  # per attempt; also bounds each exec credential plugin run
    max_retries: int  # retries after the first attempt, per request
    backoff_base: float  # seconds; doubled at every retry
    backoff_max: float  # cap of one backoff sleep
    retry_after_max: float = 10.0  # cap of one honoured Retry-After (not a setting)

    @classmethod
    def of(cls, collection: CollectionSettings) -> RequestPolicy:
        return cls(
            request_timeout=collection.timeout,
            max_retries=collection.max_retries,
            backoff_base=collection.backoff_base,
            backoff_max=collection.backoff_max,
        )


@dataclass
class Deadline:
    """The moment by which a cluster must be done, on the monotonic clock."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    @classmethod
    def never(cls) -> Deadline:
        return cls(float("inf"))

    def remaining(self) -> float:
        return self.at - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0


def is_retryable(error: ClusterError) -> bool:
    """429, 5xx, broken connections and timeouts are retried; everything else fails at once.

    A refused connection or a failed TLS handshake is not a transient fault worth the wait.
    """
    if isinstance(error, TLSError):
        return False
    return isinstance(
        error, TooManyRequestsError | ServerApiError | ConnectionLostError | ClusterTimeoutError
    )


def backoff_delay(
    retry: int, policy: RequestPolicy, *, rng: Callable[[], float] = random.random
) -> float:
    """Sleep before retry number ``retry`` (1-based): exponential, capped, with equal jitter.

    Half of the exponential delay is fixed and half is random, so that clusters failing together
    do not retry together, and a retry never comes sooner than half its nominal delay.
    """
    nominal = min(policy.backoff_max, policy.backoff_base * (2 ** (retry - 1)))
    return float(nominal / 2 + rng() * nominal / 2)


def retry_delay(
    error: ClusterError,
    retry: int,
    policy: RequestPolicy,
    *,
    rng: Callable[[], float] = random.random,
) -> float:
    """The sleep before a retry: the server's Retry-After (capped) if it sent one, else backoff."""
    if isinstance(error, TooManyRequestsError) and error.retry_after is not None:
        return min(max(error.retry_after, 0.0), policy.retry_after_max)
    return backoff_delay(retry, policy, rng=rng)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
