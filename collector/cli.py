"""The ``kubeinv`` command line: commands and flags only; the work happens in the modules it calls.

Imports stay lazy: ``kubeinv --help`` and ``kubeinv contexts`` never import kubernetes_asyncio or
asyncpg, which cost half a second before any work starts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from collector import __version__
from collector.errors import EXIT_USAGE, KubeinvError

PROG = "kubeinv"

# dest of a flag -> (dotted settings key, flag spelling for messages)
_SETTING_FLAGS: dict[str, tuple[str, str]] = {
    "kubeconfigs": ("kubeconfigs", "--kubeconfig"),
    "contexts": ("contexts", "--context"),
    "exclude_contexts": ("exclude_contexts", "--exclude-context"),
    "in_cluster": ("in_cluster", "--in-cluster"),
    "database_url": ("database_url", "--database-url"),
    "data_dir": ("data_dir", "--data-dir"),
    "concurrency": ("collection.concurrency", "--concurrency"),
    "timeout": ("collection.timeout", "--timeout"),
    "cluster_timeout": ("collection.cluster_timeout", "--cluster-timeout"),
    "page_size": ("collection.page_size", "--page-size"),
    "max_retries": ("collection.max_retries", "--max-retries"),
    "interval": ("schedule.interval", "--interval"),
    "cron": ("schedule.cron", "--cron"),
    "jitter": ("schedule.jitter", "--jitter"),
    "run_at_start": ("schedule.run_at_start", "--no-run-at-start"),
    "shutdown_grace": ("schedule.shutdown_grace", "--shutdown-grace"),
    "metrics_port": ("metrics.port", "--metrics-port"),
    "metrics_host": ("metrics.host", "--metrics-host"),
    "ledger_retention": ("retention.ledger", "--ledger-retention"),
    "log_format": ("log.format", "--log-format"),
    "log_level": ("log.level", "--log-level"),
    "retire_after": ("lifecycle.retire_after", "--retire-after"),
}

S = argparse.SUPPRESS


class _Formatter(argparse.HelpFormatter):
    """Help with each setting's default taken from collector.settings, where it is declared."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=100)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        setting = _SETTING_FLAGS.get(action.dest)
        if text is None or setting is None or "(default" in text:
            return text
        default = _setting_default(setting[0])
        if default is None or isinstance(default, bool | list):
            return text
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        return f"{text} (default: {shown})"


def _setting_default(key: str) -> Any:
    """The declared default of a dotted settings key (imports pydantic: for --help only)."""
    from collector.settings import Settings  # noqa: PLC0415

    value: Any = Settings.model_construct()
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _module(name: str) -> Any:
    """Import ``collector.<name>`` only when the command needs it (startup time)."""
    return importlib.import_module(f"collector.{name}")


# --- flag groups ----------------------------------------------------------------------------


def _config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML configuration file (default: $KUBEINV_CONFIG). Flags override environment "
        "variables (KUBEINV_*), which override this file.",
    )
    g.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=S,
        help="log lines as text or JSON objects, on stderr",
    )
    g.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=S,
        help="least severe log level shown",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more detail: same as --log-level debug",
    )


def _database_flags(p: argparse.ArgumentParser) -> Any:
    g = p.add_argument_group("database")
    g.add_argument(
        "--database-url",
        metavar="DSN",
        default=S,
        help="PostgreSQL DSN, e.g. postgresql://user@host:5432/db (default: $KUBEINV_DATABASE_URL; "
        "unset: an embedded PostgreSQL kubeinv starts itself)",
    )
    g.add_argument(
        "--data-dir",
        metavar="DIR",
        default=S,
        help="data directory of the embedded PostgreSQL (default: $XDG_DATA_HOME/kubeinv, "
        "/var/lib/kubeinv as root)",
    )
    return g


def _target_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("targets")
    g.add_argument(
        "--kubeconfig",
        dest="kubeconfigs",
        metavar="PATH",
        action="append",
        default=S,
        help="kubeconfig file, directory (its files) or glob; repeatable. Each file stands alone. "
        "Default: $KUBECONFIG merged as kubectl does, else ~/.kube/config",
    )
    g.add_argument(
        "--context",
        dest="contexts",
        metavar="GLOB",
        action="append",
        default=S,
        help="collect only contexts whose name matches this glob; repeatable",
    )
    g.add_argument(
        "--exclude-context",
        dest="exclude_contexts",
        metavar="GLOB",
        action="append",
        default=S,
        help="skip contexts whose name matches this glob; repeatable",
    )
    g.add_argument(
        "--in-cluster",
        action="store_true",
        default=S,
        help="also collect the cluster kubeinv runs in, with its pod's service account",
    )


def _collection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("collection")
    g.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        default=S,
        help="clusters collected at the same time",
    )
    g.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=S,
        help="timeout of each API request; also bounds each exec credential plugin run, and "
        "how long a context waits for an earlier one that may reach the same cluster",
    )
    g.add_argument(
        "--cluster-timeout",
        type=float,
        metavar="SECONDS",
        default=S,
        help="deadline for one cluster, retries included",
    )
    g.add_argument(
        "--page-size",
        type=int,
        metavar="N",
        default=S,
        help="nodes per list request; bounds memory per cluster",
    )
    g.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        default=S,
        help="retries per request after 429, 5xx, resets and timeouts",
    )


def _lifecycle_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("lifecycle")
    g.add_argument(
        "--retire-after",
        metavar="DURATION",
        default=S,
        help="at the end of a run, retire a cluster that no target has reached for this long: "
        "close its open versions and drop it from the current views, keeping its history "
        "(a duration such as 7d or 12h; 0s: the first run that does not reach it; never: off). "
        "A cluster that is down but still configured is reached, never retired",
    )


def _retention_flag(p: Any) -> None:
    p.add_argument(
        "--ledger-retention",
        metavar="DURATION",
        default=S,
        help="after the run, delete run-ledger rows (collection_run, cluster_collection) older "
        "than this, e.g. 90d or 12h; 0 keeps everything; history is never deleted",
    )


def _run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of a command that makes collection runs (collect, run)."""
    _target_flags(p)
    _collection_flags(p)
    _lifecycle_flags(p)
    _retention_flag(_database_flags(p))
    _config_flags(p)


def _output_flag(p: argparse.ArgumentParser, choices: Sequence[str], what: str) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=list(choices),
        default=None,
        help=f"{what} (default: table)",
    )


# --- the parser -----------------------------------------------------------------------------


def _first_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full parser. Subcommands owned by other modules (report, sim) are built only when
    ``argv`` selects them, so that other commands never import those modules."""
    command = _first_command(argv)
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_Formatter,
        description="Asynchronous multi-cluster Kubernetes inventory collector: every context of "
        "every kubeconfig, nodes, API resources and versions, with change-only history in "
        "PostgreSQL.",
        epilog="Run 'kubeinv COMMAND --help' for the flags of a command. Exit codes: 0 every "
        "target ok; 1 some target partial or failed; 2 usage or configuration error, or no "
        "target; 3 the database could not be used.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "collect",
        formatter_class=_Formatter,
        help="one collection run now, then exit",
        description="Collect every target once, store the inventory and exit. Exit 0 when every "
        "target is ok, 1 when one is partial or failed (what was readable is stored), 2 on a "
        "usage error or no target, 3 when the database cannot be used.",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="reach every cluster but use no database and store nothing",
    )
    _output_flag(
        p,
        ["table", "json"],
        "with --dry-run, json prints the normalized inventory as "
        "one JSON document; otherwise json prints the per-target outcomes",
    )
    _run_flags(p)
    p.set_defaults(handler=_cmd_collect)

    p = sub.add_parser(
        "run",
        formatter_class=_Formatter,
        help="daemon: collect on a schedule until SIGTERM or SIGINT",
        description="Collect on a schedule (interval or cron), once at start, one run at a time: "
        "a tick that comes while a run is in flight is skipped. SIGTERM or SIGINT stops it; the "
        "run in flight finishes within --shutdown-grace or is abandoned cluster-atomically.",
    )
    g = p.add_argument_group("schedule")
    g.add_argument(
        "--interval",
        metavar="DURATION",
        default=S,
        help="time between runs, e.g. 90s, 15m, 1h",
    )
    g.add_argument(
        "--cron",
        metavar="EXPR",
        default=S,
        help="crontab expression instead of --interval, e.g. '*/15 * * * *' (UTC)",
    )
    g.add_argument(
        "--jitter",
        type=float,
        metavar="SECONDS",
        default=S,
        help="random delay up to this many seconds added to each tick",
    )
    g.add_argument(
        "--no-run-at-start",
        dest="run_at_start",
        action="store_false",
        default=S,
        help="wait for the first tick instead of collecting at start",
    )
    g.add_argument(
        "--shutdown-grace",
        type=float,
        metavar="SECONDS",
        default=S,
        help="after SIGTERM, how long the run in flight may take before it is abandoned",
    )
    g = p.add_argument_group("metrics")
    g.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        default=S,
        help="serve Prometheus /metrics and /healthz on this port (0: any free port)",
    )
    g.add_argument(
        "--metrics-host",
        metavar="ADDR",
        default=S,
        help="address of the metrics server; 0.0.0.0 in a container",
    )
    _run_flags(p)
    p.set_defaults(handler=_cmd_run)

    p = sub.add_parser(
        "contexts",
        formatter_class=_Formatter,
        help="list the targets in the kubeconfigs (no network); --check probes each",
        description="List every target (kubeconfig file, context) with its server and auth kind, "
        "without touching the network; '*' in CURRENT marks each file's current-context (of the "
        "merged KUBECONFIG, with it), as kubectl config get-contexts does, and PROBLEM says why "
        "kubectl would refuse a context. With --check, probe each one concurrently (/version): "
        "authentication and reachability.",
    )
    p.add_argument(
        "--check", action="store_true", help="probe each target (GET /version) and show its status"
    )
    _output_flag(p, ["table", "json"], "output format")
    _target_flags(p)
    _collection_flags(p)
    _config_flags(p)
    p.set_defaults(handler=_cmd_contexts)

    p = sub.add_parser(
        "migrate",
        formatter_class=_Formatter,
        help="apply pending database migrations",
        description="Apply pending migrations (collect and run also do this themselves).",
    )
    _database_flags(p)
    _config_flags(p)
    p.set_defaults(handler=_cmd_migrate)

    if command == "report":
        report = _module("report")
        p = sub.add_parser("report", formatter_class=_Formatter, help=_REPORT_HELP)
        report.add_arguments(p)
        _database_flags(p)
        _config_flags(p)
        p.set_defaults(handler=_cmd_report)
    else:
        p = sub.add_parser("report", help=_REPORT_HELP, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)

    p = sub.add_parser(
        "demo",
        formatter_class=_Formatter,
        help="simulated fleet on 127.0.0.1, collected twice, then reports",
        description="Start ~6 simulated clusters on 127.0.0.1 (mixed versions and providers, one "
        "failing), collect them, upgrade one and remove a node, collect again, then print the "
        "fleet, version history, changes and reports. The demo works in a scratch database, "
        "kubeinv_demo in the embedded PostgreSQL, dropped and created anew each time: it never "
        "writes to your inventory, even when KUBEINV_DATABASE_URL or database_url is set.",
    )
    p.add_argument(
        "--chart",
        metavar="FILE",
        default="kubeinv-versions.html",
        help="where to write the versions chart (default: %(default)s)",
    )
    p.add_argument("--no-chart", action="store_true", help="do not write the chart")
    g = p.add_argument_group("database")
    g.add_argument(
        "--database-url",
        metavar="DSN",
        default=None,
        help="write the demo into this database instead of the scratch one; refused when it "
        "holds clusters that no demo created (KUBEINV_DATABASE_URL is not used by the demo)",
    )
    g.add_argument(
        "--data-dir",
        metavar="DIR",
        default=S,
        help="data directory of the embedded PostgreSQL that holds the scratch database "
        "(default: $XDG_DATA_HOME/kubeinv, /var/lib/kubeinv as root)",
    )
    _config_flags(p)
    p.set_defaults(handler=_cmd_demo)

    p = sub.add_parser(
        "clusters",
        formatter_class=_Formatter,
        help="the cluster registry: active, stale and retired clusters; 'retire' retires by hand",
        description="List every cluster ever collected (inventory.cluster_registry): active "
        "(the latest run reached and collected it), stale (its last collection failed, or the "
        "latest run did not reach it) or retired (no run reached it for lifecycle.retire_after, "
        "or retired by hand), with its contexts and last collection.",
    )
    _output_flag(p, ["table", "json", "csv"], "json and csv have the registry's columns")
    _database_flags(p)
    _config_flags(p)
    p.set_defaults(handler=_cmd_clusters)
    clusters_sub = p.add_subparsers(dest="clusters_command", metavar="SUBCOMMAND")
    sp = clusters_sub.add_parser(
        "retire",
        formatter_class=_Formatter,
        help="retire clusters by hand",
        description="Retire clusters now: close their open versions (nodes, API resources, "
        "services, server version) at this time and drop them from the current views. Their "
        "history is kept. A retired cluster that a run collects again comes back.",
    )
    sp.add_argument(
        "clusters",
        metavar="CLUSTER",
        nargs="+",
        help="a cluster id, or a context name that reached it",
    )
    _database_flags(sp)
    _config_flags(sp)
    sp.set_defaults(handler=_cmd_clusters_retire)

    p = sub.add_parser("sim", formatter_class=_Formatter, help="the cluster simulator")
    sim_sub = p.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", required=True)
    if command == "sim":
        serve = _module("sim.serve")
        sp = sim_sub.add_parser(
            "serve",
            formatter_class=_Formatter,
            help="serve a simulated fleet until SIGTERM",
            description="Serve simulated clusters on 127.0.0.1: writes DIR/kubeconfig, then "
            "DIR/ready once every server listens, and runs until SIGTERM.",
        )
        serve.add_arguments(sp)
        _config_flags(sp)
        sp.set_defaults(handler=_cmd_sim_serve)
    else:
        sim_sub.add_parser("serve", help="serve a simulated fleet until SIGTERM")

    p = sub.add_parser("db", formatter_class=_Formatter, help="database helpers")
    db_sub = p.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    sp = db_sub.add_parser(
        "url",
        formatter_class=_Formatter,
        help="print the DSN of the database in use (the embedded one when none is configured)",
        description="Print the DSN of the database in use; psql accepts it. Starts the embedded "
        "PostgreSQL when no database is configured.",
    )
    _database_flags(sp)
    _config_flags(sp)
    sp.set_defaults(handler=_cmd_db_url)
    for name, summary, text in (
        (
            "status",
            "the embedded PostgreSQL: data dir, version, pid, size, socket",
            "Show the embedded PostgreSQL's state without starting it: data directory, "
            "version, pid, size and socket. On a configured database, its version and size.",
        ),
        (
            "start",
            "start the embedded PostgreSQL",
            "Start the embedded PostgreSQL (commands that need it also start it). Refused on a "
            "configured database.",
        ),
        (
            "stop",
            "stop the embedded PostgreSQL",
            "Stop the embedded PostgreSQL (fast shutdown: open sessions are closed). The next "
            "command that needs it starts it again. Refused on a configured database.",
        ),
    ):
        sp = db_sub.add_parser(name, formatter_class=_Formatter, help=summary, description=text)
        _database_flags(sp)
        _config_flags(sp)
        sp.set_defaults(handler=_cmd_db_control, db_action=name)
    return parser


_REPORT_HELP = "reports from the database: fleet, versions, skew, changes, api-diff, eol, removals"


# --- settings from flags --------------------------------------------------------------------


def settings_flags(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The flags the user gave, nested like the settings, and their spellings by key."""
    given = vars(args)
    flags: dict[str, Any] = {}
    names: dict[str, str] = {}
    for dest, (key, spelling) in _SETTING_FLAGS.items():
        if dest not in given:
            continue
        node = flags
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = given[dest]
        names[key] = spelling
    if getattr(args, "verbose", 0):
        flags.setdefault("log", {})["level"] = "debug"
        names.setdefault("log.level", "-v")
    return flags, names


def _load(args: argparse.Namespace) -> Any:
    setup_logging = _module("logging_setup").setup_logging
    load_settings = _module("settings").load_settings
    flags, names = settings_flags(args)
    settings = load_settings(flags, config_file=getattr(args, "config", None), flag_names=names)
    setup_logging(fmt=settings.log.format, level=settings.log.level)
    return settings


# --- handlers -------------------------------------------------------------------------------


def _cmd_collect(args: argparse.Namespace) -> int:
    running = _module("running")

    settings = _load(args)
    return int(
        asyncio.run(running.collect_command(settings, dry_run=args.dry_run, output=args.output))
    )


def _cmd_run(args: argparse.Namespace) -> int:
    running = _module("running")

    settings = _load(args)
    return int(asyncio.run(running.daemon_command(settings)))


def _cmd_contexts(args: argparse.Namespace) -> int:
    running = _module("running")

    settings = _load(args)
    return int(running.contexts_command(settings, check=args.check, output=args.output))


def _cmd_migrate(args: argparse.Namespace) -> int:
    running = _module("running")

    settings = _load(args)
    return int(asyncio.run(running.migrate_command(settings)))


def _cmd_db_url(args: argparse.Namespace) -> int:
    running = _module("running")

    settings = _load(args)
    return int(asyncio.run(running.db_url_command(settings)))


def _cmd_report(args: argparse.Namespace) -> int:
    report = _module("report")

    settings = _load(args)
    result: int = report.run(args, settings)
    return result


def _cmd_demo(args: argparse.Namespace) -> int:
    demo = _module("demo")

    # Only the demo's own --database-url counts: it is not a setting (the demo never writes to
    # the configured database).
    database_url = args.database_url
    del args.database_url
    settings = _load(args)
    chart = None if args.no_chart else args.chart
    return int(asyncio.run(demo.demo_command(settings, chart=chart, database_url=database_url)))


def _cmd_clusters(args: argparse.Namespace) -> int:
    registry = _module("registry")

    settings = _load(args)
    return int(asyncio.run(registry.clusters_command(settings, output=args.output)))


def _cmd_clusters_retire(args: argparse.Namespace) -> int:
    registry = _module("registry")

    settings = _load(args)
    return int(asyncio.run(registry.retire_command(settings, args.clusters)))


def _cmd_db_control(args: argparse.Namespace) -> int:
    dbctl = _module("dbctl")

    settings = _load(args)
    command = getattr(dbctl, f"{args.db_action}_command")
    return int(asyncio.run(command(settings)))


def _cmd_sim_serve(args: argparse.Namespace) -> int:
    serve = _module("sim.serve")

    _load(args)
    result = asyncio.run(serve.serve_main(args))
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:  # a lazily built subcommand that argv did not select (cannot happen)
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except KubeinvError as exc:
        print(f"{PROG}: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
