"""Log lines as text or JSON, each line about a cluster naming its context, none carrying a secret.

Code that logs about a cluster either passes ``extra={"context": name}`` (optionally
``"kubeconfig"`` and ``"cluster_id"``) or runs inside :func:`cluster_scope`, which sets a context
variable that every line logged in that task picks up.

Every line goes through :func:`collector.errors.redact` with the secrets registered by
:func:`replace_secrets` (the tokens and keys of the loaded kubeconfigs), so that a credential
that slips into an exception message is still never written.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

from collector.errors import redact

LOGGER_NAME = "kubeinv"

_context: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kubeinv_context", default=None
)
_kubeconfig: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kubeinv_kubeconfig", default=None
)
_encoder = msgspec.json.Encoder()

# Attributes of every LogRecord: anything else on a record came from ``extra=``.
_RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class _Secrets:
    """The secrets of the latest two loads of the kubeconfigs (a line logged during a reload
    may still name the previous one), longest first so that a secret containing another is
    replaced whole. Older ones are forgotten: tokens rotated over months must not pile up."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: frozenset[str] = frozenset()
        self.known: tuple[str, ...] = ()

    def replace(self, secrets: Iterable[str]) -> None:
        new = frozenset(s for s in secrets if s and len(s) >= 4)
        with self.lock:
            self.known = tuple(sorted(self.current | new, key=len, reverse=True))
            self.current = new


_secrets = _Secrets()


def replace_secrets(secrets: Iterable[str]) -> None:
    """A new load of the kubeconfigs: its exact secret strings, and the previous load's, are
    replaced in every later log line; older ones are forgotten."""
    _secrets.replace(secrets)


def known_secrets() -> tuple[str, ...]:
    return _secrets.known


@contextlib.contextmanager
def cluster_scope(context: str, kubeconfig: str | None = None) -> Iterator[None]:
    """Every line logged inside (in this task) carries this context name."""
    token = _context.set(context)
    token_file = _kubeconfig.set(kubeconfig)
    try:
        yield
    finally:
        _context.reset(token)
        _kubeconfig.reset(token_file)


def set_log_context(context: str, kubeconfig: str | None = None) -> None:
    """From now on in this task (and tasks it starts), log lines carry this context name.

    For code that runs one task per cluster: a task owns a copy of the context variables, so
    setting them at the start of the task scopes them to that task.
    """
    _context.set(context)
    _kubeconfig.set(kubeconfig)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "context", None) is None:
            record.context = _context.get()
        if getattr(record, "kubeconfig", None) is None:
            record.kubeconfig = _kubeconfig.get()
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RESERVED and not key.startswith("_") and value is not None
    }


class TextFormatter(logging.Formatter):
    """``2026-01-01T12:00:00Z WARNING context=prod-eu: message key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        extras = _extras(record)
        context = extras.pop("context", None)
        extras.pop("kubeconfig", None)
        where = f" context={context}:" if context else ""
        message = record.getMessage()
        tail = "".join(f" {k}={v}" for k, v in extras.items())
        line = f"{ts} {record.levelname:<7}{where} {message}{tail}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line, known_secrets())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, context and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            doc[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return redact(_encoder.encode(doc).decode(), known_secrets())


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (rich's live display redirects it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging(
    *, fmt: str = "text", level: str = "info", stream: TextIO | None = None
) -> logging.Handler:
    """Install the one handler of the ``kubeinv`` loggers (idempotent)."""
    handler: logging.StreamHandler[TextIO] = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ContextFilter())
    numeric = getattr(logging, level.upper(), logging.INFO)
    # Every line of the process goes through this one handler (JSON stays JSON): kubeinv's own
    # loggers at the chosen level, libraries at WARNING (or DEBUG with -v).
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_kubeinv", False):
            root.removeHandler(old)
    handler._kubeinv = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(numeric)
    logger.propagate = True
    quiet = {
        # APScheduler logs every tick at INFO; its warnings (skipped runs) are kept.
        "apscheduler": logging.WARNING,
        # asyncpg's pool retries reconnecting in the background while PostgreSQL is down and
        # logs each attempt with a traceback; kubeinv reports the outage in one line per run.
        "asyncpg": logging.ERROR,
    }
    for name, quiet_level in quiet.items():
        logging.getLogger(name).setLevel(logging.DEBUG if numeric <= logging.DEBUG else quiet_level)
    return handler


def get_logger(name: str) -> logging.Logger:
    """A child of the ``kubeinv`` logger, the one namespace of kubeinv's log lines:
    ``get_logger(__name__)`` in ``collector.kube.listing`` is ``kubeinv.kube.listing``."""
    if name == "collector" or name.startswith("collector."):
        name = name.removeprefix("collector").lstrip(".")
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def quiet_collection_logs() -> None:
    """Only errors from collection and storage (for commands whose tables say it all)."""
    for name in ("running", "gathering", "kube", "store"):
        get_logger(name).setLevel(logging.ERROR)
