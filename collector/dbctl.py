"""``kubeinv db status|start|stop``: the embedded PostgreSQL under control.

On a configured database (``KUBEINV_DATABASE_URL``, ``database_url``, ``--database-url``)
``status`` reports that server; ``start`` and ``stop`` refuse: kubeinv starts and stops only the
server it runs itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from collector.errors import EXIT_OK, ConfigError
from collector.settings import Settings

if TYPE_CHECKING:
    from collector.store.embedded import EmbeddedServer


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _embedded(settings: Settings) -> EmbeddedServer:
    from collector.store.embedded import EmbeddedServer  # noqa: PLC0415

    return EmbeddedServer(settings.embedded_data_dir)


def _embedded_only(settings: Settings, action: str) -> EmbeddedServer:
    """The embedded server that ``kubeinv db <action>`` acts on; refused on a configured
    database: kubeinv starts and stops only the server it runs itself."""
    if settings.database_url is None:
        return _embedded(settings)
    from collector.store import redact_dsn  # noqa: PLC0415

    raise ConfigError(
        f"kubeinv db {action}: a database is configured ({redact_dsn(settings.database_url)}, "
        "from --database-url, KUBEINV_DATABASE_URL or database_url): kubeinv starts and stops "
        "only its embedded PostgreSQL; manage that server with its own tools (pg_ctl, "
        "systemctl, your provider)"
    )


async def status_command(settings: Settings, *, stream: IO[str] | None = None) -> int:
    out = stream if stream is not None else sys.stdout
    if settings.database_url is not None:
        from collector.running import open_settings_store  # noqa: PLC0415
        from collector.store import redact_dsn  # noqa: PLC0415

        store = await open_settings_store(settings)
        try:
            info = await store.database_status()
        finally:
            await store.close()
        out.write("database:  configured (not the embedded server)\n")
        out.write(f"dsn:       {redact_dsn(settings.database_url)}\n")
        out.write(f"version:   PostgreSQL {info['server_version']}\n")
        out.write(f"database:  {info['database']}, {_size(int(info['size_bytes']))}\n")
        return EXIT_OK
    server = _embedded(settings)
    st = await asyncio.to_thread(server.status)
    state = f"running (pid {st.pid})" if st.running else "stopped"
    if not st.initialized:
        state = "not created yet (the first command that needs it creates and starts it)"
    rows = [
        ("embedded PostgreSQL", state),
        ("data dir", str(st.data_dir)),
        (
            "version",
            f"PostgreSQL {st.server_version}"
            if st.server_version
            else (f"PostgreSQL {st.major_version}" if st.major_version else "-"),
        ),
        ("pid", str(st.pid) if st.pid is not None else "-"),
        ("size", _size(st.size_bytes)),
        ("socket", f"{st.socket}" + ("" if st.running else " (absent while stopped)")),
        ("log", str(st.log_file)),
        ("dsn", st.dsn),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.write(f"{key + ':':<{width + 1}} {value}\n")
    return EXIT_OK


@dataclass(frozen=True)
class _Control:
    """What ``kubeinv db start`` or ``kubeinv db stop`` does to the embedded server."""

    running_when_done: bool  # true for start: nothing to do when the server runs already
    step: Callable[[EmbeddedServer], object]
    already: str  # what it says when there is nothing to do
    done: str  # what it says after the step ({pid}: the started server's, the stopped one's)


_CONTROLS = {
    "start": _Control(
        running_when_done=True,
        step=lambda server: server.ensure_running(),
        already="the embedded PostgreSQL is running already (pid {pid}, {data_dir})",
        done="started the embedded PostgreSQL (pid {pid}, {data_dir})",
    ),
    "stop": _Control(
        running_when_done=False,
        step=lambda server: server.stop(),
        already="the embedded PostgreSQL is not running ({data_dir})",
        done="stopped the embedded PostgreSQL (pid {pid}, {data_dir}); the next command that "
        "needs it starts it again",
    ),
}


async def control_command(settings: Settings, action: str, *, stream: IO[str] | None = None) -> int:
    """``kubeinv db start|stop`` (``action``): the step, unless the server is so already."""
    out = stream if stream is not None else sys.stdout
    control = _CONTROLS[action]
    server = _embedded_only(settings, action)
    pid = server.running_pid()
    if (pid is not None) == control.running_when_done:
        message = control.already
    else:
        await asyncio.to_thread(control.step, server)
        message = control.done
        pid = server.running_pid() or pid
    out.write(message.format(pid=pid, data_dir=server.data_dir) + "\n")
    return EXIT_OK
