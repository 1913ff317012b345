"""The one exception tree of kubeinv.

Every class carries its default message in its docstring, a stable ``error_class`` string that
is stored in the ledger (``inventory.cluster_collection.error_class``), and, for the top-level
kinds, the process exit code that it maps to (README, "Failure handling": exit codes).

Library exceptions (network and TLS, kubernetes_asyncio, asyncpg, yaml) are translated into
these in exactly one place per layer, always chained with ``raise ... from exc``.
"""

from __future__ import annotations

import functools
import re
from typing import ClassVar

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3


class KubeinvError(Exception):
    """kubeinv failed."""

    error_class: ClassVar[str] = "Error"
    exit_code: ClassVar[int] = EXIT_PARTIAL

    def __init__(self, message: str | None = None) -> None:
        doc = (type(self).__doc__ or "").strip().splitlines()
        super().__init__(message or (doc[0] if doc else type(self).__name__))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


# --- configuration and usage (exit 2) -------------------------------------------------------


class ConfigError(KubeinvError):
    """Invalid configuration."""

    error_class = "Config"
    exit_code = EXIT_USAGE


class SettingsError(ConfigError):
    """Invalid settings."""

    error_class = "Settings"


class KubeconfigError(ConfigError):
    """A kubeconfig file or one of its contexts cannot be used."""

    error_class = "Kubeconfig"

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
        base = message or (type(self).__doc__ or "").strip().splitlines()[0]
        super().__init__(f"{', '.join(where)}: {base}" if where else base)


class NoTargetsError(ConfigError):
    """No target to collect: no kubeconfig found, or no context matched."""

    error_class = "NoTargets"


# --- per-cluster failures (recorded in the ledger; exit 1) ---------------------------------


class ClusterError(KubeinvError):
    """The cluster could not be read."""

    error_class = "Cluster"


class BrokenContextError(ClusterError):
    """The context cannot be used: its cluster or user entry is missing or invalid."""

    error_class = "BrokenContext"


class UnreachableError(ClusterError):
    """The API server could not be reached."""

    error_class = "Unreachable"


class ConnectionLostError(UnreachableError):
    """The connection to the API server broke or the server closed it mid-request."""

    error_class = "Unreachable"


class TLSError(UnreachableError):
    """TLS verification of the API server failed."""

    error_class = "TLS"


class ClusterTimeoutError(ClusterError):
    """The cluster did not answer before its deadline."""

    error_class = "Timeout"


class AuthError(ClusterError):
    """The API server rejected the credentials (401)."""

    error_class = "Auth"


class ExecPluginError(AuthError):
    """The exec credential plugin is missing, failed or hung."""

    error_class = "ExecPlugin"


class MalformedResponseError(ClusterError):
    """The API server sent a response that could not be decoded."""

    error_class = "MalformedResponse"


class StaleGroupError(ClusterError):
    """Aggregated discovery marks an API group Stale: its aggregated API server is not serving."""

    error_class = "StaleGroup"


class ApiError(ClusterError):
    """The API server answered with an error status."""

    error_class = "Api"

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

    error_class = "Api"


class ForbiddenError(ClientApiError):
    """The API server forbade the request (403)."""

    error_class = "Forbidden"


class NotFoundError(ClientApiError):
    """The resource was not found (404)."""

    error_class = "NotFound"


class GoneError(ClientApiError):
    """The continue token expired (410)."""

    error_class = "Gone"


class TooManyRequestsError(ClientApiError):
    """The API server throttled the request (429)."""

    error_class = "Throttled"


class ServerApiError(ApiError):
    """The API server failed (5xx)."""

    error_class = "ServerError"


# --- storage (exit 3) -----------------------------------------------------------------------


class StoreError(KubeinvError):
    """The database could not be used."""

    error_class = "Store"
    exit_code = EXIT_DATABASE


class DatabaseRefusedError(StoreError):
    """The database answers but refuses kubeinv; waiting will not help."""

    error_class = "DatabaseRefused"


class MigrationError(DatabaseRefusedError):
    """A database migration failed."""

    error_class = "Migration"


class MigrationChecksumError(MigrationError):
    """An applied migration has changed since it was applied."""

    error_class = "MigrationChecksum"


class EmbeddedServerError(StoreError):
    """The embedded PostgreSQL server could not be started."""

    error_class = "EmbeddedServer"


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
