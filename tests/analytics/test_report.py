"""``kubeinv report``: every subcommand's table and JSON output, on the scenario history, and
the CLI wiring (flags, cluster names, usage errors)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from collector import cli, report
from collector.errors import ConfigError
from collector.store import Store, open_store
from tests.analytics.history import FleetHistory
from tests.analytics.scenario import NOW, build_fleet
from tests.plugins.pg import database_of


@pytest.fixture
async def fleet_store(store: Store, pg_dsn: str) -> AsyncIterator[Store]:
    """The scenario history, read through a fresh Store whose sessions all see NOW as now."""
    await build_fleet(FleetHistory(store))
    name = database_of(pg_dsn)
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f"ALTER DATABASE \"{name}\" SET kubeinv.now = '{NOW}'")
    finally:
        await admin.close()
    reading = await open_store(pg_dsn, max_size=2)
    try:
        yield reading
    finally:
        await reading.close()


async def run_json(store: Store, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    assert await report.print_report(store, name, output="json", out=out, **kwargs) == 0
    result: list[dict[str, Any]] = json.loads(out.getvalue())
    return result


async def run_table(store: Store, name: str, **kwargs: Any) -> list[str]:
    out = io.StringIO()
    assert await report.print_report(store, name, output="table", out=out, **kwargs) == 0
    return out.getvalue().splitlines()


async def test_fleet(fleet_store: Store) -> None:
    rows = await run_json(fleet_store, "fleet")
    assert [r["cluster_id"] for r in rows] == ["cluster-b", "cluster-a"]  # by context name
    a = rows[1]
    assert a["context_names"] == ["prod-a"]
    assert a["git_version"] == "v1.29.1"
    assert a["node_count"] == 3
    assert a["cpu_capacity_millicores"] == 4000 + 8000 + 16000
    assert a["last_collected_at"] == "2026-03-07T16:30:00Z"
    table = await run_table(fleet_store, "fleet")
    assert table[0].split()[:4] == ["cluster_id", "context_names", "server_url", "git_version"]
    assert table[2].startswith("cluster-a")
    assert "v1.29.1" in table[2]
    assert "112.0 GiB" in table[2]  # memory humanized in tables only


async def test_versions_today_and_window(fleet_store: Store) -> None:
    assert await run_json(fleet_store, "versions") == [
        {"day": "2026-03-10", "minor_version": 24, "clusters": 1, "nodes": 3},
        {"day": "2026-03-10", "minor_version": 29, "clusters": 1, "nodes": 3},
    ]
    rows = await run_json(fleet_store, "versions", since="2026-03-04", until="2026-03-05")
    assert [(r["day"], r["minor_version"]) for r in rows] == [
        ("2026-03-04", 24), ("2026-03-04", 28), ("2026-03-05", 24), ("2026-03-05", 29),
    ]  # fmt: skip
    table = await run_table(fleet_store, "versions", since="6d")
    assert table[0].split() == ["day", "minor_version", "clusters", "nodes"]
    assert table[1].split() == ["2026-03-04", "24", "1", "3"]


async def test_skew(fleet_store: Store) -> None:
    rows = await run_json(fleet_store, "skew")
    assert [(r["cluster_id"], r["node_name"], r["within_policy"]) for r in rows] == [
        ("cluster-a", "a2", False),
        ("cluster-b", "b3", None),
        ("cluster-b", "b2", False),
    ]
    assert set(rows[0]) == {
        "cluster_id", "node_name", "kubelet_version", "kubelet_minor", "server_minor", "skew",
        "within_policy",
    }  # fmt: skip
    every = await run_json(fleet_store, "skew", all_nodes=True, cluster="staging-b")
    assert [r["node_name"] for r in every] == ["b3", "b2", "b1"]
    table = await run_table(fleet_store, "skew")
    assert table[1].split() == ["cluster-a", "a2", "v1.25.3", "25", "29", "4", "no"]


async def test_changes(fleet_store: Store) -> None:
    rows = await run_json(fleet_store, "changes", since="4d")  # NOW - 4d = 03-06 12:00
    assert [(r["kind"], r["subject"]) for r in rows] == [("node-added", "a4")]
    rows = await run_json(fleet_store, "changes", since="2026-03-05T09:00:00+00:00")
    assert rows[0] == {
        "cluster_id": "cluster-a",
        "at": "2026-03-05T09:00:00Z",
        "kind": "version",
        "subject": "v1.29.1",
        "detail": {
            "git_version": {"old": "v1.28.5", "new": "v1.29.1"},
            "minor_version": {"old": 28, "new": 29},
        },
    }
    default = await run_json(fleet_store, "changes")  # 7 days: since 03-03 12:00
    assert [r["kind"] for r in default][:2] == ["node-changed", "version"]
    table = await run_table(fleet_store, "changes", cluster="prod-a")
    assert table[0].split() == ["cluster_id", "at", "kind", "subject", "detail"]
    assert "unschedulable: false -> true" in table[1]
    assert "kubelet_version: v1.28.5 -> v1.29.1" in "\n".join(table)


async def test_changes_json_passes_details_through_unchanged(fleet_store: Store) -> None:
    # --output json writes the database's JSON text; it must equal the decoded rows' encoding
    rows = await run_json(fleet_store, "changes", since="30d")
    decoded = await report.fetch_report(fleet_store, "changes", since="30d")
    assert len(rows) == len(decoded) > 3
    assert rows == json.loads(report.to_json(decoded))


async def test_table_shows_a_page_and_says_how_many_more(fleet_store: Store) -> None:
    everything = await run_json(fleet_store, "changes", since="30d")
    table = await run_table(fleet_store, "changes", since="30d", limit=2)
    assert len(table) == 1 + 2 + 1
    assert table[-1] == (
        f"... {len(everything) - 2:,} more rows ({len(everything):,} in all): "
        "use --limit N (0: all) or --output json|csv"
    )
    assert table[1].split()[0] == everything[0]["cluster_id"]
    full = await run_table(fleet_store, "changes", since="30d", limit=0)
    assert len(full) == 1 + len(everything)
    fleet = await run_table(fleet_store, "fleet", limit=1)
    assert len(fleet) == 3 and fleet[-1].startswith("... 1 more rows (2 in all)")
    csv_page = io.StringIO()
    await report.print_report(
        fleet_store, "changes", output="csv", out=csv_page, since="30d", limit=2
    )
    assert len(csv_page.getvalue().splitlines()) == 1 + 2


async def test_api_diff_by_context_and_id(fleet_store: Store) -> None:
    rows = await run_json(fleet_store, "api-diff", clusters=["prod-a", "cluster-b"])
    assert rows[0] == {
        "api_group": "autoscaling",
        "api_version": "v2beta2",
        "resource": "horizontalpodautoscalers",
        "only_in": "b",
    }
    assert len(rows) == 7
    table = await run_table(fleet_store, "api-diff", clusters=["cluster-a", "staging-b"])
    assert table[0].split() == ["api_group", "api_version", "resource", "only_in"]
    assert table[3].split() == ["example.com", "v1", "widgets", "a"]
    with pytest.raises(ConfigError, match="no cluster has the id or context name 'prod-x'"):
        await run_json(fleet_store, "api-diff", clusters=["prod-x", "cluster-b"])


async def test_eol(fleet_store: Store) -> None:
    rows = await run_json(fleet_store, "eol")
    assert rows == [
        {"cluster_id": "cluster-b", "git_version": "v1.24.9", "minor_version": 24,
         "end_of_life": "2023-07-28", "days_left": -956, "support_status": "end-of-life"},
        {"cluster_id": "cluster-a", "git_version": "v1.29.1", "minor_version": 29,
         "end_of_life": "2025-02-28", "days_left": -375, "support_status": "end-of-life"},
    ]  # fmt: skip
    table = await run_table(fleet_store, "eol")
    assert table[1].split() == ["cluster-b", "v1.24.9", "24", "2023-07-28", "-956", "end-of-life"]


async def test_removals(fleet_store: Store) -> None:
    rows = await run_json(fleet_store, "removals", cluster="b-admin")
    assert [(r["api_group"], r["api_version"], r["resource"], r["minors_left"]) for r in rows] == [
        ("batch", "v1beta1", "cronjobs", 1),
        ("policy", "v1beta1", "podsecuritypolicies", 1),
        ("autoscaling", "v2beta2", "horizontalpodautoscalers", 2),
        ("flowcontrol.apiserver.k8s.io", "v1beta2", "flowschemas", 5),
    ]
    assert await run_json(fleet_store, "removals", cluster="prod-a") == []
    table = await run_table(fleet_store, "removals")
    assert table[1].split() == ["cluster-b", "batch", "v1beta1", "cronjobs", "25", "1"]


async def test_capacity(fleet_store: Store, tmp_path: Path) -> None:
    rows = await run_json(fleet_store, "capacity", cluster="prod-a")
    assert rows == [
        {"day": "2026-03-10", "cluster_id": "cluster-a", "nodes": 3,
         "cpu_capacity_millicores": 28000, "memory_capacity_bytes": 112 * 2**30,
         "gpu_capacity": 0},
    ]  # fmt: skip
    page = tmp_path / "capacity.html"
    table = await run_table(fleet_store, "capacity", since="9d", html=str(page))
    assert table[1].split()[:3] == ["2026-03-01", "cluster-a", "3"]
    text = page.read_text()
    assert "<svg" in text and "prod-a (cluster-a)" in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


async def test_csv(fleet_store: Store) -> None:
    out = io.StringIO()
    await report.print_report(fleet_store, "fleet", output="csv", out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("cluster_id,context_names,server_url,git_version,minor_version")
    assert lines[1].startswith('cluster-b,"[""b-admin"",""staging-b""]"')


async def test_empty_database(store: Store) -> None:
    assert await run_json(store, "fleet") == []
    assert await run_table(store, "changes") == ["changes: no rows"]


# --- the CLI --------------------------------------------------------------------------------


def test_cli_report_json(
    fleet_store: Store, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["report", "removals", "--database-url", pg_dsn, "--output", "json",
                     "--cluster", "staging-b"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)
    assert rows[0]["resource"] == "cronjobs"


def test_cli_report_api_diff_table(
    fleet_store: Store, pg_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["report", "--database-url", pg_dsn, "api-diff", "prod-a", "b-admin"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].split() == ["api_group", "api_version", "resource", "only_in"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["api-diff", "prod-a"], "api-diff compares two clusters"),
        (["fleet", "extra"], "report fleet takes no cluster argument (use --cluster NAME)"),
        (["eol", "--html", "x.html"], "--html is for the versions and capacity reports"),
        (["changes", "--since", "yesterday"], "--since 'yesterday': expected a duration"),
        (["eol", "--all"], "--all is for the skew report"),
        (["skew", "--cluster", "nope"], "no cluster has the id or context name 'nope'"),
    ],
)
def test_cli_usage_errors(
    fleet_store: Store,
    pg_dsn: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code = cli.main(["report", *argv, "--database-url", pg_dsn])
    assert code == 2
    assert message in capsys.readouterr().err
