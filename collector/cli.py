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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collector import __version__
from collector.errors import EXIT_USAGE, KubeinvError

if TYPE_CHECKING:
    from collector.settings import Settings

PROG = "kubeinv"


class _Formatter(argparse.HelpFormatter):
    """Help with each setting's default taken from collector.settings, where it is declared."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=100)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text is None or action.dest not in _FLAG_NAMES or "(default" in text:
            return text
        default = _setting_default(action.dest)
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


# --- flags ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Flag:
    """A flag that sets one setting. Its dest is the setting's dotted key. A flag the user does
    not give stays out of the namespace: the environment, the config file or the default
    declared in collector.settings applies, and --help shows that default."""

    spelling: str
    key: str
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    action: str | None = None

    def add_to(self, group: argparse._ActionsContainer, *, help: str | None = None) -> None:
        """Add the flag to a parser or group; ``help`` replaces its text for one command."""
        options: dict[str, Any] = {
            "metavar": self.metavar,
            "type": self.type,
            "choices": self.choices,
            "action": self.action,
        }
        group.add_argument(
            self.spelling,
            dest=self.key,
            default=argparse.SUPPRESS,
            help=help or self.help,
            **{name: value for name, value in options.items() if value is not None},
        )


_TARGETS = (
    _Flag(
        "--kubeconfig",
        "kubeconfigs",
        "kubeconfig file, directory (its files) or glob; repeatable. Each file stands alone. "
        "Default: $KUBECONFIG merged as kubectl does, else ~/.kube/config",
        metavar="PATH",
        action="append",
    ),
    _Flag(
        "--context",
        "contexts",
        "collect only contexts whose name matches this glob; repeatable",
        metavar="GLOB",
        action="append",
    ),
    _Flag(
        "--exclude-context",
        "exclude_contexts",
        "skip contexts whose name matches this glob; repeatable",
        metavar="GLOB",
        action="append",
    ),
    _Flag(
        "--in-cluster",
        "in_cluster",
        "also collect the cluster kubeinv runs in, with its pod's service account",
        action="store_true",
    ),
)
_COLLECTION = (
    _Flag(
        "--concurrency",
        "collection.concurrency",
        "clusters collected at the same time",
        metavar="N",
        type=int,
    ),
    _Flag(
        "--timeout",
        "collection.timeout",
        "timeout of each API request; also bounds each exec credential plugin run, and how long "
        "a context waits for an earlier one that may reach the same cluster",
        metavar="SECONDS",
        type=float,
    ),
    _Flag(
        "--cluster-timeout",
        "collection.cluster_timeout",
        "deadline for one cluster, retries included",
        metavar="SECONDS",
        type=float,
    ),
    _Flag(
        "--page-size",
        "collection.page_size",
        "nodes per list request; bounds memory per cluster",
        metavar="N",
        type=int,
    ),
    _Flag(
        "--max-retries",
        "collection.max_retries",
        "retries per request after 429, 5xx, resets and timeouts",
        metavar="N",
        type=int,
    ),
)
_LIFECYCLE = (
    _Flag(
        "--retire-after",
        "lifecycle.retire_after",
        "at the end of a run, retire a cluster that no target has reached for this long: close "
        "its open versions and drop it from the current views, keeping its history (a duration "
        "such as 7d or 12h; 0s: the first run that does not reach it; never: off). A cluster "
        "that is down but still configured is reached, never retired",
        metavar="DURATION",
    ),
)
_DATABASE_URL = _Flag(
    "--database-url",
    "database_url",
    "PostgreSQL DSN, e.g. postgresql://user@host:5432/db (default: $KUBEINV_DATABASE_URL; "
    "unset: an embedded PostgreSQL kubeinv starts itself)",
    metavar="DSN",
)
_DATA_DIR = _Flag(
    "--data-dir",
    "data_dir",
    "data directory of the embedded PostgreSQL (default: $XDG_DATA_HOME/kubeinv, "
    "/var/lib/kubeinv as root)",
    metavar="DIR",
)
_DATABASE = (_DATABASE_URL, _DATA_DIR)
_LEDGER_RETENTION = _Flag(
    "--ledger-retention",
    "retention.ledger",
    "after the run, delete run-ledger rows (collection_run, cluster_collection) older than this, "
    "e.g. 90d or 12h; 0 keeps everything; history is never deleted",
    metavar="DURATION",
)
_SCHEDULE = (
    _Flag(
        "--interval",
        "schedule.interval",
        "time between runs, e.g. 90s, 15m, 1h",
        metavar="DURATION",
    ),
    _Flag(
        "--cron",
        "schedule.cron",
        "crontab expression instead of --interval, e.g. '*/15 * * * *' (UTC)",
        metavar="EXPR",
    ),
    _Flag(
        "--jitter",
        "schedule.jitter",
        "random delay up to this many seconds added to each tick",
        metavar="SECONDS",
        type=float,
    ),
    _Flag(
        "--no-run-at-start",
        "schedule.run_at_start",
        "wait for the first tick instead of collecting at start",
        action="store_false",
    ),
    _Flag(
        "--shutdown-grace",
        "schedule.shutdown_grace",
        "after SIGTERM, how long the run in flight may take before it is abandoned",
        metavar="SECONDS",
        type=float,
    ),
)
_METRICS = (
    _Flag(
        "--metrics-port",
        "metrics.port",
        "serve Prometheus /metrics and /healthz on this port (0: any free port)",
        metavar="PORT",
        type=int,
    ),
    _Flag(
        "--metrics-host",
        "metrics.host",
        "address of the metrics server; 0.0.0.0 in a container",
        metavar="ADDR",
    ),
)
_LOG = (
    _Flag(
        "--log-format",
        "log.format",
        "log lines as text or JSON objects, on stderr",
        choices=("text", "json"),
    ),
    _Flag(
        "--log-level",
        "log.level",
        "least severe log level shown",
        choices=("debug", "info", "warning", "error"),
    ),
)

# Every setting flag's spelling by its settings key (error messages name the flag).
_FLAG_NAMES: dict[str, str] = {
    flag.key: flag.spelling
    for flag in (
        *_TARGETS,
        *_COLLECTION,
        *_LIFECYCLE,
        *_DATABASE,
        _LEDGER_RETENTION,
        *_SCHEDULE,
        *_METRICS,
        *_LOG,
    )
}

# The setting flags of a command that makes collection runs (collect, run), by group.
_RUN_GROUPS = (
    ("targets", _TARGETS),
    ("collection", _COLLECTION),
    ("lifecycle", _LIFECYCLE),
    ("database", (*_DATABASE, _LEDGER_RETENTION)),
)


def _add_flags(p: argparse.ArgumentParser, *groups: tuple[str, Sequence[_Flag]]) -> None:
    """Add the setting flags of a command, group by group, then the configuration flags that
    every command has."""
    for title, flags in groups:
        group = p.add_argument_group(title)
        for flag in flags:
            flag.add_to(group)
    g = p.add_argument_group("configuration")
    g.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML configuration file (default: $KUBEINV_CONFIG). Flags override environment "
        "variables (KUBEINV_*), which override this file.",
    )
    for flag in _LOG:
        flag.add_to(g)
    g.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail: same as --log-level debug"
    )


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


def _command(
    sub: Any,
    name: str,
    handler: Callable[[argparse.Namespace, Settings], Any],
    help: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A (sub)command of kubeinv that runs ``handler``."""
    p: argparse.ArgumentParser = sub.add_parser(
        name, formatter_class=_Formatter, help=help, description=description
    )
    p.set_defaults(handler=handler)
    return p


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

    p = _command(
        sub,
        "collect",
        _cmd_collect,
        "one collection run now, then exit",
        "Collect every target once, store the inventory and exit. Exit 0 when every target is "
        "ok, 1 when one is partial or failed (what was readable is stored), 2 on a usage error "
        "or no target, 3 when the database cannot be used.",
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
    _add_flags(p, *_RUN_GROUPS)

    p = _command(
        sub,
        "run",
        _cmd_run,
        "daemon: collect on a schedule until SIGTERM or SIGINT",
        "Collect on a schedule (interval or cron), once at start, one run at a time: a tick that "
        "comes while a run is in flight is skipped. SIGTERM or SIGINT stops it; the run in "
        "flight finishes within --shutdown-grace or is abandoned cluster-atomically.",
    )
    _add_flags(p, ("schedule", _SCHEDULE), ("metrics", _METRICS), *_RUN_GROUPS)

    p = _command(
        sub,
        "contexts",
        _cmd_contexts,
        "list the targets in the kubeconfigs (no network); --check probes each",
        "List every target (kubeconfig file, context) with its server and auth kind, without "
        "touching the network; '*' in CURRENT marks each file's current-context (of the merged "
        "KUBECONFIG, with it), as kubectl config get-contexts does, and PROBLEM says why kubectl "
        "would refuse a context. With --check, probe each one concurrently (/version): "
        "authentication and reachability.",
    )
    p.add_argument(
        "--check", action="store_true", help="probe each target (GET /version) and show its status"
    )
    _output_flag(p, ["table", "json"], "output format")
    _add_flags(p, ("targets", _TARGETS), ("collection", _COLLECTION))

    p = _command(
        sub,
        "migrate",
        _cmd_migrate,
        "apply pending database migrations",
        "Apply pending migrations (collect and run also do this themselves).",
    )
    _add_flags(p, ("database", _DATABASE))

    if command == "report":
        report = _module("report")
        p = _command(sub, "report", _cmd_report, _REPORT_HELP)
        report.add_arguments(p)
        _add_flags(p, ("database", _DATABASE))
    else:
        p = sub.add_parser("report", help=_REPORT_HELP, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)

    p = _command(
        sub,
        "demo",
        _cmd_demo,
        "simulated fleet on 127.0.0.1, collected twice, then reports",
        "Start ~6 simulated clusters on 127.0.0.1 (mixed versions and providers, one failing), "
        "collect them, upgrade one and remove a node, collect again, then print the fleet, "
        "version history, changes and reports. The demo works in a scratch database, "
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
    # Not the setting database_url: the demo never writes to the configured database.
    g.add_argument(
        "--database-url",
        dest="demo_database_url",
        metavar="DSN",
        default=None,
        help="write the demo into this database instead of the scratch one; refused when it "
        "holds clusters that no demo created (KUBEINV_DATABASE_URL is not used by the demo)",
    )
    _DATA_DIR.add_to(
        g,
        help="data directory of the embedded PostgreSQL that holds the scratch database "
        "(default: $XDG_DATA_HOME/kubeinv, /var/lib/kubeinv as root)",
    )
    _add_flags(p)

    p = _command(
        sub,
        "clusters",
        _cmd_clusters,
        "the cluster registry: active, stale and retired clusters; 'retire' retires by hand",
        "List every cluster ever collected (inventory.cluster_registry): active (the latest run "
        "reached and collected it), stale (its last collection failed, or the latest run did not "
        "reach it) or retired (no run reached it for lifecycle.retire_after, or retired by "
        "hand), with its contexts and last collection.",
    )
    _output_flag(p, ["table", "json", "csv"], "json and csv have the registry's columns")
    _add_flags(p, ("database", _DATABASE))
    clusters_sub = p.add_subparsers(dest="clusters_command", metavar="SUBCOMMAND")
    sp = _command(
        clusters_sub,
        "retire",
        _cmd_clusters_retire,
        "retire clusters by hand",
        "Retire clusters now: close their open versions (nodes, API resources, services, server "
        "version) at this time and drop them from the current views. Their history is kept. A "
        "retired cluster that a run collects again comes back.",
    )
    sp.add_argument(
        "clusters",
        metavar="CLUSTER",
        nargs="+",
        help="a cluster id, or a context name that reached it",
    )
    _add_flags(sp, ("database", _DATABASE))

    p = sub.add_parser("sim", formatter_class=_Formatter, help="the cluster simulator")
    sim_sub = p.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", required=True)
    if command == "sim":
        serve = _module("sim.serve")
        sp = _command(
            sim_sub,
            "serve",
            _cmd_sim_serve,
            "serve a simulated fleet until SIGTERM",
            "Serve simulated clusters on 127.0.0.1: writes DIR/kubeconfig, then DIR/ready once "
            "every server listens, and runs until SIGTERM.",
        )
        serve.add_arguments(sp)
        _add_flags(sp)
    else:
        sim_sub.add_parser("serve", help="serve a simulated fleet until SIGTERM")

    p = sub.add_parser("db", formatter_class=_Formatter, help="database helpers")
    db_sub = p.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    for name, handler, summary, text in (
        (
            "url",
            _cmd_db_url,
            "print the DSN of the database in use (the embedded one when none is configured)",
            "Print the DSN of the database in use; psql accepts it. Starts the embedded "
            "PostgreSQL when no database is configured.",
        ),
        (
            "status",
            _cmd_db_status,
            "the embedded PostgreSQL: data dir, version, pid, size, socket",
            "Show the embedded PostgreSQL's state without starting it: data directory, "
            "version, pid, size and socket. On a configured database, its version and size.",
        ),
        (
            "start",
            _cmd_db_control,
            "start the embedded PostgreSQL",
            "Start the embedded PostgreSQL (commands that need it also start it). Refused on a "
            "configured database.",
        ),
        (
            "stop",
            _cmd_db_control,
            "stop the embedded PostgreSQL",
            "Stop the embedded PostgreSQL (fast shutdown: open sessions are closed). The next "
            "command that needs it starts it again. Refused on a configured database.",
        ),
    ):
        sp = _command(db_sub, name, handler, summary, text)
        sp.set_defaults(db_action=name)
        _add_flags(sp, ("database", _DATABASE))
    return parser


_REPORT_HELP = "reports from the database: fleet, versions, skew, changes, api-diff, eol, removals"


# --- settings from flags --------------------------------------------------------------------


def settings_flags(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The flags the user gave, nested like the settings, and their spellings by key."""
    given = vars(args)
    flags: dict[str, Any] = {}
    names: dict[str, str] = {}
    for key, spelling in _FLAG_NAMES.items():
        if key not in given:
            continue
        node = flags
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = given[key]
        names[key] = spelling
    if getattr(args, "verbose", 0):
        flags.setdefault("log", {})["level"] = "debug"
        names.setdefault("log.level", "-v")
    return flags, names


def _load(args: argparse.Namespace) -> Settings:
    setup_logging = _module("logging_setup").setup_logging
    load_settings = _module("settings").load_settings
    flags, names = settings_flags(args)
    settings: Settings = load_settings(
        flags, config_file=getattr(args, "config", None), flag_names=names
    )
    setup_logging(fmt=settings.log.format, level=settings.log.level)
    return settings


# --- handlers -------------------------------------------------------------------------------
# A handler runs one command with the settings loaded. It returns the exit code, or a coroutine
# that main runs to get it. It imports its command module only now (startup time).


def _cmd_collect(args: argparse.Namespace, settings: Settings) -> Any:
    running = _module("running")
    return running.collect_command(settings, dry_run=args.dry_run, output=args.output)


def _cmd_run(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("running").daemon_command(settings)


def _cmd_contexts(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("running").contexts_command(settings, check=args.check, output=args.output)


def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("running").migrate_command(settings)


def _cmd_db_url(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("running").db_url_command(settings)


def _cmd_db_status(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("dbctl").status_command(settings)


def _cmd_db_control(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("dbctl").control_command(settings, args.db_action)


def _cmd_report(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("report").run(args, settings)


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> Any:
    chart = None if args.no_chart else args.chart
    return _module("demo").demo_command(settings, chart=chart, database_url=args.demo_database_url)


def _cmd_clusters(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("registry").clusters_command(settings, output=args.output)


def _cmd_clusters_retire(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("registry").retire_command(settings, args.clusters)


def _cmd_sim_serve(args: argparse.Namespace, settings: Settings) -> Any:
    return _module("sim.serve").serve_main(args)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], Any] | None = getattr(args, "handler", None)
    if handler is None:  # a lazily built subcommand that argv did not select (cannot happen)
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = handler(args, _load(args))
        if asyncio.iscoroutine(code):
            code = asyncio.run(code)
        return int(code)
    except KubeinvError as exc:
        print(f"{PROG}: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
