"""``kubeinv demo``: a simulated fleet collected twice, with changes in between, then the reports.

Everything runs on 127.0.0.1: the simulator's HTTPS API servers, and a scratch database of the
embedded PostgreSQL, ``kubeinv_demo``, dropped and created anew at each demo. The demo never
writes to the inventory database, configured (``KUBEINV_DATABASE_URL``, ``database_url``) or
default. Only ``kubeinv demo --database-url DSN`` writes elsewhere, and it refuses a database
holding clusters that no demo created. Each demo uses fresh cluster IDs, so that repeated demos
into one database never look like downgrades of the previous one; what is printed is limited to
this demo's clusters.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from collector.errors import EXIT_OK, ConfigError
from collector.logging_setup import get_logger, quiet_collection_logs
from collector.progress_ui import print_summary, print_table
from collector.running import RunReport, collect_once
from collector.settings import CollectionSettings, Settings
from collector.sim import ClusterSpec, Fleet, FleetSpec
from collector.store import DEMO_DATABASE, Store, open_demo_store, open_store, redact_dsn
from collector.tables import is_terminal

log = get_logger("demo")

UPGRADED = "prod-us"
UPGRADE_TO = "v1.31.2"
SHRUNK = "prod-eu"


def demo_fleet(out_dir: Path, seed: int) -> FleetSpec:
    """Six reachable clusters of mixed providers and versions, and one that is down."""
    clusters = [
        ClusterSpec(name="prod-eu", version="v1.31.2", flavour="eks", nodes=6, users=("token",)),
        # Two contexts reach prod-us: it is collected once, the second context is deduplicated.
        ClusterSpec(
            name=UPGRADED, version="v1.30.6", flavour="gke", nodes=5, users=("cert-data", "token")
        ),
        ClusterSpec(
            name="staging",
            version="v1.29.10",
            flavour="aks",
            nodes=3,
            virtual_nodes=1,
            users=("exec",),
        ),
        ClusterSpec(name="edge", version="v1.28.15", flavour="k3s", nodes=2, users=("cert-file",)),
        ClusterSpec(
            name="legacy", version="v1.27.16", flavour="openshift", nodes=4, users=("token-file",)
        ),
        ClusterSpec(name="lab", version="v1.32.1", flavour="kubeadm", nodes=1),
        ClusterSpec(name="dr-site", version="v1.30.6", flavour="kubeadm", server="closed-port"),
    ]
    return FleetSpec(clusters=clusters, seed=seed, layout="single", out_dir=out_dir)


class _Out:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.rich = is_terminal(stream)

    def step(self, text: str) -> None:
        if self.rich:
            from rich.console import Console  # noqa: PLC0415

            Console(file=self.stream).rule(f"[bold]{text}")
        else:
            self.stream.write(f"\n== {text}\n\n")
        self.stream.flush()

    def line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _demo_settings(settings: Settings, kubeconfig: Path) -> Settings:
    collection = CollectionSettings(
        concurrency=settings.collection.concurrency,
        timeout=3.0,
        cluster_timeout=15.0,
        page_size=settings.collection.page_size,
        max_retries=1,
        backoff_base=0.1,
        backoff_max=0.5,
    )
    return settings.model_copy(
        update={
            "kubeconfigs": [str(kubeconfig)],
            "contexts": [],
            "exclude_contexts": [],
            "in_cluster": False,
            "kubeconfig_env": None,
            "collection": collection,
        }
    )


async def _collect(out: _Out, settings: Settings, store: Store, title: str) -> RunReport:
    out.step(title)
    report = await collect_once(settings, store=store)
    print_summary(report.outcomes, report.result, run_id=report.run_id, stream=out.stream)
    return report


async def open_demo_database(settings: Settings, database_url: str | None) -> Store:
    """The demo's database: the embedded server's scratch ``kubeinv_demo`` (recreated), or the
    database of an explicit ``--database-url``, when no cluster in it comes from elsewhere.

    ``settings.database_url`` (the environment, the configuration file) is never used.
    """
    if database_url is None:
        return await open_demo_store(settings.embedded_data_dir)
    store = await open_store(database_url)
    try:
        foreign = await store.non_demo_clusters()
    except BaseException:
        await store.close()
        raise
    if foreign:
        await store.close()
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise ConfigError(
            f"kubeinv demo --database-url {redact_dsn(database_url)}: this database holds "
            f"{len(foreign)} cluster(s) that no demo created ({shown}); the demo writes only "
            "into an empty database or one holding earlier demos. Run 'kubeinv demo' without "
            f"--database-url to use the scratch database {DEMO_DATABASE} of the embedded "
            "PostgreSQL"
        )
    return store


def psql_hint(dsn: str) -> str:
    """The demo's last line: a psql command for the demo's database."""
    return f"psql '{redact_dsn(dsn)}' -c 'table inventory.cluster_current'"


async def demo_command(
    settings: Settings,
    *,
    chart: str | None,
    stream: IO[str] | None = None,
    database_url: str | None = None,
) -> int:
    """The demo. ``database_url``: only an explicit ``kubeinv demo --database-url``."""
    out = _Out(stream if stream is not None else sys.stdout)
    started = time.monotonic()
    if settings.log.level != "debug":
        # The tables show every outcome; per-target warnings would only repeat them.
        quiet_collection_logs()
    store = await open_demo_database(settings, database_url)
    where = (
        f"the scratch database {DEMO_DATABASE} of the embedded PostgreSQL (recreated each demo; "
        "your inventory is not touched)"
        if database_url is None
        else "the database given with --database-url"
    )
    dsn = store.dsn
    try:
        with tempfile.TemporaryDirectory(prefix="kubeinv-demo-") as tmp:
            seed = time.time_ns() % 2**31
            async with Fleet(demo_fleet(Path(tmp), seed)) as fleet:
                out.line(
                    f"kubeinv demo: {len(fleet.clusters)} simulated clusters on 127.0.0.1 "
                    f"(one of them down), collected into {where}"
                )
                demo = _demo_settings(settings, fleet.kubeconfig)
                first = await _collect(out, demo, store, "1. First collection")
                cluster_ids = sorted(
                    {o.cluster_id for o in first.outcomes if o.cluster_id is not None}
                )
                await store.mark_demo_clusters(cluster_ids)

                out.step("2. The fleet changes")
                upgraded = fleet.cluster(UPGRADED)
                upgraded.upgrade(UPGRADE_TO, kubelets=True)
                out.line(f"- {UPGRADED}: control plane and kubelets upgraded to {UPGRADE_TO}")
                shrunk = fleet.cluster(SHRUNK)
                removed = shrunk.node_names[-1]
                shrunk.remove_node(removed)
                out.line(f"- {SHRUNK}: node {removed} removed")
                cordoned = fleet.cluster("staging").node_names[0]
                fleet.cluster("staging").cordon(cordoned)
                out.line(f"- staging: node {cordoned} cordoned")

                second = await _collect(out, demo, store, "3. Second collection")
            await _print_inventory(out, store, cluster_ids, second.result.started_at, chart)
    finally:
        await store.close()
    out.line(f"\nDone in {time.monotonic() - started:.1f}s. Explore the demo's data:")
    out.line(psql_hint(dsn))
    return EXIT_OK


async def _print_inventory(
    out: _Out, store: Store, cluster_ids: Sequence[str], second_run: datetime, chart: str | None
) -> None:
    """The fleet, its version history, what changed, skew and support: this demo's clusters."""
    from collector import report  # noqa: PLC0415 (imports the chart renderer)

    ids = set(cluster_ids)

    async def show(title: str, name: str, **options: Any) -> list[dict[str, Any]]:
        out.step(title)
        rows = [
            r
            for r in await report.fetch_report(store, name, **options)
            if r.get("cluster_id") in ids
        ]
        report.render(rows, name, output="table", out=out.stream)
        return rows

    fleet_rows = await show("4. Fleet summary (kubeinv report fleet)", "fleet")
    names = {
        r["cluster_id"]: ", ".join(r.get("context_names") or []) or r["cluster_id"]
        for r in fleet_rows
    }

    out.step("5. Version history (inventory.cluster_version_history)")
    history = [r for r in await store.reports().version_history() if r["cluster_id"] in ids]
    history.sort(key=lambda r: (names.get(r["cluster_id"], ""), r["valid_from"]))
    print_table(
        None,
        ["cluster", "git_version", "valid_from", "valid_to"],
        [
            (
                names.get(r["cluster_id"], r["cluster_id"]),
                r["git_version"],
                r["valid_from"].isoformat(timespec="seconds"),
                r["valid_to"].isoformat(timespec="seconds") if r["valid_to"] else "(current)",
            )
            for r in history
        ],
        stream=out.stream,
    )

    await show(
        "6. Changes between the runs (kubeinv report changes)",
        "changes",
        since=second_run.isoformat(),
    )
    await show("7. Version skew: kubelets out of policy (kubeinv report skew)", "skew")
    await show("8. Support status (kubeinv report eol)", "eol")
    if chart:
        path = await report.write_html(store, "versions", chart)
        out.step("9. Chart")
        out.line(f"wrote {path.resolve()}: clusters and nodes per minor version over time")
