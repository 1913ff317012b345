"""The one exception tree of kubeinv.

Every class carries its default message in its docstring and, in its class line, a stable
``error_class`` string that is stored in the ledger (``inventory.cluster_collection.error_class``)
and, for the top-level kinds, the process exit code that it maps to (README, "Failure
handling": exit codes). A class that names neither has its base's.

Library exceptions (network and TLS, kubernetes_asyncio, asyncpg, yaml) are translated into
these in exactly one place per layer, always chained with ``raise ... from exc``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3


class KubeinvError(Exception):
    """kubeinv failed."""

    error_class: ClassVar[str] = "Error"
    exit_code: ClassVar[int] = EXIT_PARTIAL

    def __init_subclass__(
        cls, *, error_class: str | None = None, exit_code: int | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if error_class is not None:
            cls.error_class = error_class
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message())

    @classmethod
    def default_message(cls) -> str:
        """The first line of the class's docstring."""
        doc = (cls.__doc__ or "").strip().splitlines()
        return doc[0] if doc else cls.__name__

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- configuration and usage (exit 2) -------------------------------------------------------


class ConfigError(KubeinvError, error_class="Config", exit_code=EXIT_USAGE):
    """Invalid configuration."""


class SettingsError(ConfigError, error_class="Settings"):
    """Invalid settings."""


class KubeconfigError(ConfigError, error_class="Kubeconfig"):
    """A kubeconfig file or one of its contexts cannot be used."""

    def __init__(
        self, message: str | None = None, *, path: str | None = None, context: str | None = None
    ) -> None:
        self.path = path
        self.context = context
        where = []
        if path:
            where.append(f"file {path}")
        if context:
            where.append(f"context {context!r}")
        base = message or self.default_message()
        super().__init__(f"{', '.join(where)}: {base}" if where else base)


class NoTargetsError(ConfigError, error_class="NoTargets"):
    """No target to collect: no kubeconfig found, or no context matched."""


# --- per-cluster failures (recorded in the ledger; exit 1) ---------------------------------


class ClusterError(KubeinvError, error_class="Cluster"):
    """The cluster could not be read."""


class BrokenContextError(ClusterError, error_class="BrokenContext"):
    """The context cannot be used: its cluster or user entry is missing or invalid."""


class UnreachableError(ClusterError, error_class="Unreachable"):
    """The API server could not be reached."""


class ConnectionLostError(UnreachableError):
    """The connection to the API server broke or the server closed it mid-request."""


class TLSError(UnreachableError, error_class="TLS"):
    """TLS verification of the API server failed."""


class ClusterTimeoutError(ClusterError, error_class="Timeout"):
    """The cluster did not answer before its deadline."""


class AuthError(ClusterError, error_class="Auth"):
    """The API server rejected the credentials (401)."""


class ExecPluginError(AuthError, error_class="ExecPlugin"):
    """The exec credential plugin is missing, failed or hung."""


class MalformedResponseError(ClusterError, error_class="MalformedResponse"):
    """The API server sent a response that could not be decoded."""


class StaleGroupError(ClusterError, error_class="StaleGroup"):
    """Aggregated discovery marks an API group Stale: its aggregated API server is not serving."""


class ApiError(ClusterError, error_class="Api"):
    """The API server answered with an error status.

    A subclass that stands for one HTTP status names it in its class line (``status=403``);
    :meth:`for_status` finds it there."""

    _by_status: ClassVar[dict[int, type[ApiError]]] = {}

    def __init_subclass__(cls, *, status: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            ApiError._by_status[status] = cls

    @classmethod
    def for_status(cls, status: int) -> type[ApiError]:
        """The class of an error response with this HTTP status (401 is an AuthError)."""
        if status in cls._by_status:
            return cls._by_status[status]
        if 500 <= status <= 599:
            return ServerApiError
        return ClientApiError if 400 <= status <= 499 else ApiError

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int = 0,
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.path = path
        self.retry_after = retry_after
        super().__init__(message)


class ClientApiError(ApiError):
    """The API server refused the request (4xx)."""


class ForbiddenError(ClientApiError, error_class="Forbidden", status=403):
    """The API server forbade the request (403)."""


class NotFoundError(ClientApiError, error_class="NotFound", status=404):
    """The resource was not found (404)."""


class GoneError(ClientApiError, error_class="Gone", status=410):
    """The continue token expired (410)."""


class TooManyRequestsError(ClientApiError, error_class="Throttled", status=429):
    """The API server throttled the request (429)."""


class ServerApiError(ApiError, error_class="ServerError"):
    """The API server failed (5xx)."""


# --- storage (exit 3) -----------------------------------------------------------------------


class StoreError(KubeinvError, error_class="Store", exit_code=EXIT_DATABASE):
    """The database could not be used."""


class DatabaseRefusedError(StoreError, error_class="DatabaseRefused"):
    """The database answers but refuses kubeinv; waiting will not help."""


class MigrationError(DatabaseRefusedError, error_class="Migration"):
    """A database migration failed."""


class MigrationChecksumError(MigrationError, error_class="MigrationChecksum"):
    """An applied migration has changed since it was applied."""


class EmbeddedServerError(StoreError, error_class="EmbeddedServer"):
    """The embedded PostgreSQL server could not be started."""


class EmbeddedServerUnusableError(EmbeddedServerError, DatabaseRefusedError):
    """The embedded PostgreSQL cannot run here as configured; waiting will not help."""


# --- redaction ------------------------------------------------------------------------------

_SECRET_PATTERNS = (
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s'\"]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)((?:token|password|client-key-data|client-certificate-data)[\"']?\s*[:=]\s*[\"']?)[^\s'\",}]+"
    ),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----)"),
)


# A secret is replaced where it stands whole: not where it is part of a longer word, host
# name, path or token ("prod" inside "context=prod-eu" or "https://prod.example.com").
_PART_BEFORE = r"(?<![A-Za-z0-9_\-./+~])"
_PART_AFTER = r"(?![A-Za-z0-9_\-/+~]|\.[A-Za-z0-9])"


@functools.lru_cache(maxsize=256)
def _whole_values(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    usable = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    if not usable:
        return None
    alternatives = "|".join(re.escape(s) for s in usable)  # longest first: a secret whole
    return re.compile(f"{_PART_BEFORE}(?:{alternatives}){_PART_AFTER}")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove credentials from a message before it is logged or stored.

    ``secrets`` are exact strings known to be secret (tokens, passwords, keys of the target,
    exec plugin output); each is replaced where it appears as a whole value, never inside a
    longer word, host name or URL. Generic patterns catch bearer tokens and PEM private keys.
    """
    if (whole := _whole_values(tuple(secrets))) is not None:
        text = whole.sub("[REDACTED]", text)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 2 and "PRIVATE KEY" in pattern.pattern:
            text = pattern.sub(r"\1[REDACTED]\2", text)
        else:
            text = pattern.sub(r"\1[REDACTED]", text)
    return text
