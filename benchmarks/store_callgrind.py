"""Store benchmark, in instructions: what one first store costs the PostgreSQL backend.

    python benchmarks/store_callgrind.py                      # 5,000 nodes, kubeinv's server
    python benchmarks/store_callgrind.py --bindir /usr/lib/postgresql/15/bin
    python benchmarks/store_callgrind.py --without-migrations 0018   # before a migration
    python benchmarks/store_callgrind.py --lean-nodes         # no jsonb content

Wall and CPU seconds on this shared 2-core machine vary by +-15% between identical runs (see
benchmarks/README.md, "Store"); valgrind's instruction count does not. This starts a private
PostgreSQL (initdb with kubeinv's embedded settings) under ``valgrind --tool=callgrind``,
migrates a database, stores a small warm-up cluster, then stores one cluster of ``--nodes``
nodes (the same nodes as store_bench.py) through a connection of its own, and reports the
instructions (Ir) that connection's backend executed, in total and per row written. Only user
space is counted: the kernel's share (writes to the page cache) is not. Under valgrind the
store takes about 50 times longer: 5,000 nodes, about 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import store_bench  # this directory

from collector.store import open_store
from collector.store.embedded import PORT, EmbeddedServer

REPO = Path(__file__).resolve().parents[1]


def _migrations(without: list[str], into: Path) -> Path | None:
    if not without:
        return None
    for path in (REPO / "sql").glob("*.sql"):
        if not any(path.name.startswith(prefix) for prefix in without):
            shutil.copy(path, into / path.name)
    return into


async def _wait_ready(dsn: str, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=30)
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
            continue
        await conn.close()
        return


def start_under_valgrind(
    args: argparse.Namespace, base: Path
) -> tuple[str, subprocess.Popen[bytes]]:
    """initdb a private server with kubeinv's settings, then run it under callgrind."""
    server = EmbeddedServer(base / "data", bindirs=[Path(args.bindir)] if args.bindir else None)
    server.ensure_running()  # initdb, start, createdb
    server.stop()
    assert server.bindir is not None
    out_dir = base / "callgrind"
    out_dir.mkdir()
    out_dir.chmod(0o777)  # written by the server's user
    command = [
        "valgrind", "--tool=callgrind", "--trace-children=yes",
        f"--callgrind-out-file={out_dir}/cg.%p",
        str(server.bindir / "postgres"), "-D", str(server.pgdata), "-k", str(server.run_dir),
        "-p", str(PORT), "-c", "listen_addresses=", "-c", "unix_socket_permissions=0700",
        "-c", "max_connections=100", "-c", "shared_buffers=128MB",
    ]  # fmt: skip
    log = (base / "valgrind.log").open("wb")
    if server.user.is_current:
        valgrind = subprocess.Popen(command, stdout=log, stderr=log, cwd=out_dir)
    else:
        valgrind = subprocess.Popen(
            command,
            stdout=log,
            stderr=log,
            cwd=out_dir,
            user=server.user.uid,
            group=server.user.gid,
        )
    return server.dsn(), valgrind


async def measure(args: argparse.Namespace, base: Path, dsn: str) -> None:
    await _wait_ready(dsn, 300)
    conn = await asyncpg.connect(dsn)
    version = await conn.fetchval("SHOW server_version")
    await conn.close()
    store = await open_store(dsn, max_size=1, connect_timeout=120)
    await store.migrate(_migrations(args.without_migrations, Path(tempfile.mkdtemp())))
    warm = [store_bench.make_node("warm", i) for i in range(200)]
    await store.store_inventory(None, store_bench.make_inventory("warm", warm))
    await store.close()
    nodes = [store_bench.make_node("big", i) for i in range(args.nodes)]
    inventory = store_bench.make_inventory("big", nodes)
    store = await open_store(dsn, max_size=1, connect_timeout=120)
    async with store.connection() as conn:
        pid = conn.get_server_pid()
    stats = await store.store_inventory(None, inventory)
    await store.close()  # the backend exits and callgrind writes its counts
    profile = base / "callgrind" / f"cg.{pid}"
    total = None
    for _ in range(120):
        with contextlib.suppress(OSError):
            for line in profile.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    total = int(line.split()[1])
        if total is not None:
            break
        await asyncio.sleep(1)
    if total is None:
        raise SystemExit(f"no callgrind counts in {profile}; see {base / 'valgrind.log'}")
    rows = stats.versions_written
    print(f"PostgreSQL {version}; migrations without {args.without_migrations or 'none'}; "
          f"{'lean' if args.lean_nodes else 'realistic'} nodes")  # fmt: skip
    print(f"first store of {args.nodes} nodes: {rows} rows written, "
          f"{total:,} instructions in the backend, {total // rows:,} per row")  # fmt: skip
    if args.keep:
        shutil.copy(profile, args.keep)
        print(f"profile: {args.keep} (callgrind_annotate {args.keep})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--bindir", help="PostgreSQL binaries (default: kubeinv's own choice)")
    parser.add_argument(
        "--without-migrations",
        nargs="*",
        default=[],
        metavar="NNNN",
        help="leave these migrations out (e.g. 0018: the schema before it)",
    )
    parser.add_argument("--lean-nodes", action="store_true", help="nodes without jsonb content")
    parser.add_argument("--keep", metavar="FILE", help="copy the backend's callgrind profile here")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt install valgrind)")
    store_bench.SHAPE["lean"] = args.lean_nodes
    base = Path(tempfile.mkdtemp(prefix="kinv-cg-"))
    base.chmod(0o755)
    valgrind = None
    try:
        dsn, valgrind = start_under_valgrind(args, base)
        asyncio.run(measure(args, base, dsn))
    finally:
        if valgrind is not None:
            valgrind.send_signal(signal.SIGINT)
            try:
                valgrind.wait(timeout=120)
            except subprocess.TimeoutExpired:
                valgrind.kill()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
