"""The embedded PostgreSQL: as root (server runs as 'nobody') and as a non-root user.

These start real servers (about 2 s each) in their own temporary directories and stop them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from collector.errors import EmbeddedServerError
from collector.settings import default_data_dir, load_settings
from collector.store import open_store
from collector.store.embedded import EmbeddedServer, embedded_dsn
from tests.store.builders import fetch_view

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="switching users needs root")
pytestmark = pytest.mark.slow


def _nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


@pytest.fixture
def base() -> Iterator[Path]:
    """A short, world-searchable directory of the test's own (nobody must traverse it)."""
    path = Path(tempfile.mkdtemp(prefix="kinv-emb-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        pidfile = path / "data" / "pgdata" / "postmaster.pid"
        for candidate in [pidfile, *path.glob("**/pgdata/postmaster.pid")]:
            try:
                pid = int(candidate.read_text().splitlines()[0])
                os.kill(pid, signal.SIGINT)
            except (OSError, ValueError, IndexError):
                pass
        time.sleep(0.5)
        shutil.rmtree(path, ignore_errors=True)


def _owner_of_process(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_mode, st.st_uid, st.st_gid)


async def _query(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def test_default_data_dir() -> None:
    env = {"HOME": "/home/u", "XDG_DATA_HOME": "/x"}
    assert default_data_dir(env, is_root=False) == Path("/x/kubeinv")
    assert default_data_dir({"HOME": "/home/u"}, is_root=False) == Path(
        "/home/u/.local/share/kubeinv"
    )
    assert default_data_dir(env, is_root=True) == Path("/var/lib/kubeinv")
    # KUBEINV_DATA_DIR is the setting data_dir, which wins over the default.
    assert load_settings({}, environ={**env, "KUBEINV_DATA_DIR": "/d"}).data_dir == Path("/d")
    assert embedded_dsn(Path("/var/lib/kubeinv")) == (
        "postgresql://postgres@/kubeinv?host=/var/lib/kubeinv/run&port=5432"
    )


async def test_start_reuse_restart_after_stale_pid(base: Path) -> None:
    parent_before = _stat(base.parent)
    server = EmbeddedServer(base / "data")
    started = time.monotonic()
    dsn = await asyncio.to_thread(server.ensure_running)
    fresh_start = time.monotonic() - started
    assert server.started_now and server.initialized_now
    pid = server.running_pid()
    assert pid is not None
    expected_uid = _nobody().pw_uid if IS_ROOT else os.geteuid()
    assert _owner_of_process(pid) == expected_uid
    assert (base / "data" / "pgdata").stat().st_uid == expected_uid
    assert await _query(dsn, "SELECT current_database()") == "kubeinv"

    psql = shutil.which("psql")
    if psql:
        out = subprocess.run(  # noqa: ASYNC221 (a test; nothing else runs)
            [psql, dsn, "-Atc", "SELECT 40 + 2"], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "42"

    # A second invocation reuses the running server.
    again = EmbeddedServer(base / "data")
    assert await asyncio.to_thread(again.ensure_running) == dsn
    assert not again.started_now and again.running_pid() == pid

    # The store on top of it (dsn None -> embedded).
    store = await open_store(None, data_dir=base / "data")
    try:
        assert "0100" in await store.migrate()  # the schema (sql/schema.sql)
        assert await fetch_view(store, "cluster_current") == []
    finally:
        await store.close()

    # A stale postmaster.pid (crash) is detected and removed.
    server.stop()
    assert server.running_pid() is None
    dead = subprocess.Popen(["true"])  # noqa: ASYNC220
    dead.wait()
    pidfile = base / "data" / "pgdata" / "postmaster.pid"
    pidfile.write_text(f"{dead.pid}\n{base / 'data' / 'pgdata'}\n")
    if IS_ROOT:
        os.chown(pidfile, _nobody().pw_uid, _nobody().pw_gid)
    restarted = EmbeddedServer(base / "data")
    await asyncio.to_thread(restarted.ensure_running)
    assert restarted.started_now and not restarted.initialized_now
    assert await _query(dsn, "SELECT count(*) FROM inventory.schema_migration") >= 1
    restarted.stop()

    # Nothing outside kubeinv's own directory changed.
    assert _stat(base.parent) == parent_before
    print(f"fresh start (initdb + start + createdb): {fresh_start:.2f} s")


@needs_root
def test_unsearchable_data_dir_is_refused_without_chmod(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    before = _stat(private)
    server = EmbeddedServer(private / "data")
    with pytest.raises(Exception, match="cannot reach"):
        server.ensure_running()
    assert _stat(private) == before


@needs_root
@pytest.mark.skipif(importlib.util.find_spec("pgserver") is None, reason="pgserver not installed")
async def test_unreadable_binaries_are_copied_into_the_data_dir(base: Path) -> None:
    spec = importlib.util.find_spec("pgserver")
    assert spec is not None and spec.origin
    hidden = base / "hidden"
    hidden.mkdir(mode=0o700)
    # The wheel's layout: pgserver/pginstall/bin finds its libraries in ../../../pgserver.libs.
    package = Path(spec.origin).parent
    shutil.copytree(package / "pginstall", hidden / "pgserver" / "pginstall", symlinks=True)
    for libs in package.parent.glob("pgserver*.libs"):
        shutil.copytree(libs, hidden / libs.name, symlinks=True)
    before = _stat(hidden)
    server = EmbeddedServer(base / "data", bindirs=[hidden / "pgserver" / "pginstall" / "bin"])
    dsn = await asyncio.to_thread(server.ensure_running)
    try:
        pid = server.running_pid()
        assert pid is not None
        exe = os.readlink(f"/proc/{pid}/exe")
        assert exe.startswith(str(base / "data" / "pgcopy")), exe
        assert _owner_of_process(pid) == _nobody().pw_uid
        assert await _query(dsn, "SELECT 1") == 1
        assert _stat(hidden) == before  # never chmodded
    finally:
        server.stop()


def _system_python() -> str | None:
    """A python3.11 that 'nobody' can execute (the venv's may live under root's 0700 home)."""
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3"):
        if os.access(candidate, os.X_OK):
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.stdout.strip() == "True":
                return candidate
    return None


@needs_root
async def test_non_root_user_gets_its_own_server_under_xdg_data_home(base: Path) -> None:
    python = _system_python()
    if python is None:
        pytest.skip("no python3.11 executable by 'nobody'")
    nobody = _nobody()
    home = base / "home"
    home.mkdir()
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and "venv" in p)
    script = textwrap.dedent(
        """
        import asyncio
        from collector.settings import load_settings
        from collector.store import open_store

        async def main():
            store = await open_store(None, data_dir=load_settings({}).data_dir)
            print(await store.migrate())
            print(store.dsn)
            await store.close()

        asyncio.run(main())
        """
    )
    env = {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "PYTHONPATH": f"{REPO}:{site}",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    result = subprocess.run(  # noqa: ASYNC221
        [python, "-c", script],
        env=env,
        cwd=home,
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    dsn = result.stdout.strip().splitlines()[-1]
    data = home / ".local" / "share" / "kubeinv"
    assert dsn == embedded_dsn(data)
    assert "0100" in result.stdout  # the schema (sql/schema.sql)
    server = EmbeddedServer(data)
    pid = server.running_pid()
    assert pid is not None and _owner_of_process(pid) == nobody.pw_uid
    assert await _query(dsn, "SELECT count(*) FROM inventory.cluster") == 0
    # Everything it created belongs to nobody, inside its home.
    for path in [data, *data.iterdir()]:
        assert path.stat().st_uid == nobody.pw_uid, path
    os.kill(pid, signal.SIGINT)


def _cli_env(home: Path, site: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "PYTHONPATH": f"{REPO}:{site}",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
    }


def _fresh_start_collect(python: str, home: Path, env: dict[str, str], **user: Any) -> str:
    """sim serve + ``kubeinv collect`` + ``kubeinv db url`` with no database configured."""
    out = home / "sim"
    sim = subprocess.Popen(
        [python, "-m", "collector", "sim", "serve", "--clusters", "2", "--out", str(out)],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **user,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "ready").exists():
            assert sim.poll() is None, sim.stderr.read() if sim.stderr else ""
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.1)
        collect = subprocess.run(
            [python, "-m", "collector", "collect", "--kubeconfig", str(out / "kubeconfig")],
            env=env, cwd=home, capture_output=True, text=True, timeout=240, check=False, **user,
        )  # fmt: skip
        assert collect.returncode == 0, collect.stdout + collect.stderr
        url = subprocess.run(
            [python, "-m", "collector", "db", "url"],
            env=env, cwd=home, capture_output=True, text=True, timeout=120, check=True, **user,
        )  # fmt: skip
        return url.stdout.strip().splitlines()[-1]
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(30)


def _psql_count(dsn: str, sql: str, **user: Any) -> int:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed")
    out = subprocess.run(
        [psql, dsn, "-Atc", sql], capture_output=True, text=True, check=True, **user
    )
    return int(out.stdout.strip())


@needs_root
def test_fresh_start_collect_as_root(base: Path) -> None:
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and "venv" in p)
    home = base / "root-home"
    home.mkdir()
    env = {**_cli_env(home, site), "KUBEINV_DATA_DIR": str(base / "data")}
    dsn = _fresh_start_collect(sys.executable, home, env)
    assert dsn == embedded_dsn(base / "data")
    assert _psql_count(dsn, "SELECT count(*) FROM inventory.cluster_current") == 2
    assert _psql_count(dsn, "SELECT count(*) FROM inventory.node_current") > 0
    server = EmbeddedServer(base / "data")
    pid = server.running_pid()
    assert pid is not None and _owner_of_process(pid) == _nobody().pw_uid
    server.stop()


@needs_root
def test_fresh_start_collect_as_non_root(base: Path) -> None:
    python = _system_python()
    if python is None:
        pytest.skip("no python3.11 executable by 'nobody'")
    nobody = _nobody()
    site = next(Path(p) for p in sys.path if p.endswith("site-packages") and "venv" in p)
    home = base / "home"
    home.mkdir()
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    dsn = _fresh_start_collect(python, home, _cli_env(home, site), **user)
    assert dsn == embedded_dsn(home / ".local" / "share" / "kubeinv")
    # psql as that same user (the socket directory is private to it).
    assert _psql_count(dsn, "SELECT count(*) FROM inventory.cluster_current", **user) == 2
    assert _psql_count(dsn, "SELECT count(*) FROM inventory.node_current", **user) > 0
    server = EmbeddedServer(home / ".local" / "share" / "kubeinv")
    pid = server.running_pid()
    assert pid is not None and _owner_of_process(pid) == nobody.pw_uid
    os.kill(pid, signal.SIGINT)


def _fake_install(root: Path, version: str) -> Path:
    """A directory with initdb, pg_ctl and a postgres that prints ``version`` for -V."""
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    for name in ("initdb", "pg_ctl", "postgres"):
        script = bindir / name
        script.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {version}'\n")
        script.chmod(0o755)
    for path in (root, root / version):
        path.chmod(0o755)
    return bindir


def test_newest_binaries_are_chosen_for_a_new_data_dir(base: Path) -> None:
    old = _fake_install(base / "bins", "15.20")
    new = _fake_install(base / "bins", "16.2")
    server = EmbeddedServer(base / "data", bindirs=[old, new])
    assert server._usable_bindir() == new
    # A tie keeps the given order (system binaries come first).
    other = _fake_install(base / "other", "16.4")
    assert EmbeddedServer(base / "data", bindirs=[other, new])._usable_bindir() == other


def test_an_existing_data_dir_keeps_its_major_version(base: Path) -> None:
    old = _fake_install(base / "bins", "15.20")
    new = _fake_install(base / "bins", "16.2")
    pgdata = base / "data" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("15\n")
    assert EmbeddedServer(base / "data", bindirs=[new, old])._usable_bindir() == old


def test_an_existing_data_dir_without_its_binaries_is_refused_by_name(base: Path) -> None:
    new = _fake_install(base / "bins", "16.2")
    pgdata = base / "data" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("14\n")
    server = EmbeddedServer(base / "data", bindirs=[new])
    with pytest.raises(EmbeddedServerError) as caught:
        server._usable_bindir()
    message = str(caught.value)
    assert "created by PostgreSQL 14" in message
    assert str(pgdata) in message
    assert f"16 in {new}" in message
