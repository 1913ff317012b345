"""No credential is ever stored or printed; the API is only read; TLS verification stays on.

One fleet with every kind of user (client certificate data and files, token, token file, exec
plugin with a secret in its environment, basic auth, rejected tokens), some failing. kubeinv runs
over it in every output mode (-v text and JSON logs, JSON outcomes, dry-run JSON inventory,
contexts --check, the daemon and its metrics); then every byte it printed, every row of every
table of schema inventory, and every file it left behind are searched for the secret material of
the kubeconfigs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import socket
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml

from collector.sim import ClusterSpec, Fleet
from tests.faults.harness import (
    assert_get_only,
    cli_env,
    collect_argv,
    connect,
    finish,
    kubeinv,
    latest_ledger,
    start,
)

pytestmark = pytest.mark.slow

PASSWORD = "s3cr3t-Basic-Passw0rd-9f2c1e"
PLUGIN_ENV_SECRET = "plugin-env-secret-7d1a0b5c3e"
PLUGIN_TOKEN = "exec-output-token-4b8e2f6a1c9d"


def _pem_body_lines(pem: str) -> list[str]:
    return [
        line.strip()
        for line in pem.splitlines()
        if line.strip() and not line.startswith("-----") and len(line.strip()) >= 16
    ]


def secret_material(paths: Iterable[Path]) -> set[str]:
    """Every secret string the kubeconfigs hold or lead to (files, plugin environment)."""
    secrets: set[str] = set()
    for path in paths:
        doc = yaml.safe_load(path.read_text())
        base = path.parent
        for entry in doc.get("users") or []:
            user = entry.get("user") or {}
            for key in ("token", "password"):
                if user.get(key):
                    secrets.add(str(user[key]))
            if user.get("client-key-data"):
                secrets.add(user["client-key-data"])
                pem = base64.b64decode(user["client-key-data"]).decode()
                secrets.update(_pem_body_lines(pem))
            if user.get("client-key"):
                secrets.update(_pem_body_lines((base / user["client-key"]).read_text()))
            if user.get("tokenFile"):
                secrets.add((base / user["tokenFile"]).read_text().strip())
            for env in (user.get("exec") or {}).get("env") or []:
                secrets.add(env["value"])
    secrets.add(PLUGIN_TOKEN)
    return {s for s in secrets if len(s) >= 8}


def _extra_kubeconfig(fleet: Fleet, tmp_path: Path) -> Path:
    """Users the simulator's fleet does not write: basic auth, and exec plugins that leak."""
    doc = yaml.safe_load(fleet.kubeconfig.read_text())
    cluster = next(c for c in doc["clusters"] if c["name"] == "a")
    leaky = tmp_path / "leaky-plugin.sh"
    # fails, and prints its secret environment and a token on stderr, as buggy plugins do
    leaky.write_text(
        '#!/bin/sh\necho "auth failed for token=$PLUGIN_SECRET ($PLUGIN_SECRET)" >&2\nexit 1\n'
    )
    rejected = tmp_path / "rejected-plugin.sh"
    # succeeds with a token the server does not accept: a 401 after a working plugin
    rejected.write_text(
        "#!/bin/sh\n"
        'printf \'{"kind":"ExecCredential","apiVersion":'
        '"client.authentication.k8s.io/v1beta1","status":{"token":"%s"}}\' '
        f'"{PLUGIN_TOKEN}"\n'
    )
    for script in (leaky, rejected):
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    def exec_user(command: str) -> dict[str, Any]:
        return {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": command,
                "env": [{"name": "PLUGIN_SECRET", "value": PLUGIN_ENV_SECRET}],
                "interactiveMode": "Never",
            }
        }

    out = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "basic",
        "clusters": [cluster],
        "users": [
            {"name": "basic", "user": {"username": "admin", "password": PASSWORD}},
            {"name": "leaky", "user": exec_user(f"./{leaky.name}")},
            {"name": "rejected", "user": exec_user(f"./{rejected.name}")},
        ],
        "contexts": [
            {"name": name, "context": {"cluster": "a", "user": name}}
            for name in ("basic", "leaky", "rejected")
        ],
    }
    path = tmp_path / "extra.kubeconfig"
    path.write_text(yaml.safe_dump(out))
    path.chmod(0o600)
    return path


async def dump_inventory(dsn: str) -> str:
    """Every row of every table of schema inventory, as text."""
    conn = await connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'inventory' ORDER BY 1"
        )
        chunks = []
        for row in tables:
            name = row["tablename"]
            rows = await conn.fetch(f"SELECT t::text AS line FROM inventory.{name} t")
            chunks.append(f"== {name} ({len(rows)})\n" + "\n".join(r["line"] for r in rows))
    finally:
        await conn.close()
    return "\n".join(chunks)


def _files_text(root: Path) -> str:
    parts = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                parts.append(path.read_bytes().decode("utf-8", "replace"))
            except OSError:
                continue
    return "\n".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _digest(paths: Iterable[Path]) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


async def _daemon_with_metrics(argv: list[str], env: dict[str, str], dsn: str) -> tuple[str, str]:
    """Run the daemon until its first run is recorded, scrape /metrics, then SIGTERM it."""

    async def finished_runs() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM inventory.collection_run WHERE finished_at IS NOT NULL"
                )
            )
        finally:
            await conn.close()

    baseline = await finished_runs()
    port = _free_port()
    proc = await start(*argv, "--metrics-port", str(port), env=env)
    loop = asyncio.get_running_loop()
    started = loop.time()
    metrics = ""
    try:
        while loop.time() - started < 90:
            await asyncio.sleep(0.5)
            assert proc.returncode is None, "the daemon exited early"
            if await finished_runs() > baseline:  # the daemon's first run is recorded
                break
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            assert response.status == 200
            metrics = await response.text()
    finally:
        proc.terminate()
    result = await finish(proc, argv, started, 60)
    return metrics, result.stdout + result.stderr


async def test_no_credential_is_ever_stored_or_printed(sim_fleet, pg_dsn, tmp_path):
    users = ("cert-data", "cert-file", "token", "token-file", "exec", "invalid-token")
    fleet: Fleet = await sim_fleet(
        clusters=[
            ClusterSpec(name="a", nodes=2, users=users),
            ClusterSpec(name="b", nodes=2, users=("token", "exec")),
            ClusterSpec(name="down", server="closed-port", users=("token", "cert-data")),
        ]
    )
    fleet.cluster("b").faults.fail("/api/v1/nodes", 403)  # a partial, with an error message
    extra = _extra_kubeconfig(fleet, tmp_path)
    kubeconfigs = [fleet.kubeconfig, extra]
    secrets = secret_material(kubeconfigs)
    assert len(secrets) >= 12, secrets  # the search looks for real material
    before = _digest([*kubeconfigs, *fleet.dir.rglob("*.key"), *fleet.dir.rglob("*.token")])

    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    home = tmp_path / "home"
    env = cli_env(home, {"TMPDIR": str(tmpdir)})
    printed: list[str] = []

    async def run(*argv: str, codes: tuple[int, ...] = (1,)) -> None:
        result = await kubeinv(*argv, env=env)
        assert result.code in codes, str(result)
        assert "Traceback" not in result.stderr, str(result)
        printed.append(result.stdout + result.stderr)

    paths = [str(p) for p in kubeconfigs]
    await run(*collect_argv(paths, pg_dsn, "-v", "--log-format", "json"))
    # the run did what it should: the failures below carry messages worth searching
    ledger = await latest_ledger(pg_dsn)
    by_context = {c: (r["status"], r["error_class"]) for c, r in ledger.rows.items()}
    assert by_context["a-invalid-token"] == ("failed", "Auth")
    assert by_context["basic"][0] == "failed"
    assert by_context["leaky"] == ("failed", "ExecPlugin")
    assert by_context["rejected"] == ("failed", "Auth")
    assert ("partial", "Forbidden") in (by_context["b"], by_context["b-exec"])
    assert by_context["down"] == ("failed", "Unreachable")
    # the leaky plugin's stderr is shown (it explains the failure), with its secrets redacted
    assert "auth failed for token=" in ledger["leaky"]["error_message"], ledger["leaky"]
    await run(*collect_argv(paths, pg_dsn, "-v", output=None))
    await run(*collect_argv(paths, None, "--dry-run", "-v"))
    await run(*collect_argv(paths, None, "--dry-run", "-v", "--log-format", "json"))
    contexts = ["contexts", "--kubeconfig", paths[0], "--kubeconfig", paths[1]]
    await run(*contexts, "-v", codes=(0, 1))
    await run(*contexts, "--check", "--timeout", "2", "-o", "json", "-v")
    await run(*contexts, "--check", "--timeout", "2", "-v", "--log-format", "json")
    daemon_argv = ["run", *collect_argv(paths, pg_dsn, "-v", output=None)[1:], "--interval", "1h"]
    metrics, daemon_output = await _daemon_with_metrics(daemon_argv, env, pg_dsn)
    printed += [metrics, daemon_output]

    assert "kubeinv_" in metrics

    stored = await dump_inventory(pg_dsn)
    assert "cluster_collection" in stored and "node_history" in stored
    leftovers = _files_text(tmpdir) + _files_text(home)
    haystacks = {
        "printed": "\n".join(printed),
        "database": stored,
        "files left behind": leftovers,
    }
    for where, text in haystacks.items():
        found = sorted(s for s in secrets if s in text)
        assert not found, f"secret material in {where}: {[s[:12] + '...' for s in found]}"

    # the user's kubeconfigs, keys and token files are untouched (persist_config=False)
    assert _digest(before) == before
    # kubeinv only ever read the API
    assert_get_only(fleet.clusters)
    assert sum(len(c.request_log) for c in fleet.clusters) > 0
    # no credential file outlives the run
    assert not [p for p in tmpdir.rglob("*") if p.is_file()], list(tmpdir.rglob("*"))


async def test_tls_verification_is_on_unless_the_kubeconfig_skips_it(sim_fleet, pg_dsn, tmp_path):
    fleet: Fleet = await sim_fleet(
        clusters=[
            ClusterSpec(name="good", nodes=2),
            ClusterSpec(name="foreign", nodes=2, server="foreign-ca"),
        ]
    )
    doc = yaml.safe_load(fleet.kubeconfig.read_text())
    # the same foreign-CA server twice: verified (fails) and explicitly not verified (collected)
    foreign = next(c for c in doc["clusters"] if c["name"] == "foreign")
    skipped = {"name": "foreign-skip", "cluster": {"server": foreign["cluster"]["server"]}}
    skipped["cluster"]["insecure-skip-tls-verify"] = True
    doc["clusters"].append(skipped)
    user = next(c for c in doc["contexts"] if c["name"] == "foreign")["context"]["user"]
    doc["contexts"].append(
        {"name": "foreign-skip", "context": {"cluster": "foreign-skip", "user": user}}
    )
    path = tmp_path / "insecure.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    result = await kubeinv(*collect_argv([path], pg_dsn), env=cli_env(tmp_path / "home"))
    assert result.code == 1, str(result)
    ledger = await latest_ledger(pg_dsn)
    assert (ledger["foreign"]["status"], ledger["foreign"]["error_class"]) == ("failed", "TLS")
    assert ledger["foreign"]["insecure_skip_tls_verify"] is False
    skip = ledger["foreign-skip"]
    assert (skip["status"], skip["insecure_skip_tls_verify"]) == ("ok", True), skip
    assert ledger["good"]["insecure_skip_tls_verify"] is False
    warning = [ln for ln in result.stderr.splitlines() if "insecure" in ln.lower()]
    assert warning and "foreign-skip" in warning[0], result.stderr
    assert_get_only(fleet.clusters)
