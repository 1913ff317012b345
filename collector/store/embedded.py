"""The embedded PostgreSQL that kubeinv starts when no database URL is configured.

Layout of the data directory (``KUBEINV_DATA_DIR``; by default ``$XDG_DATA_HOME/kubeinv``, or
``/var/lib/kubeinv`` for root):

    pgdata/      the cluster (PGDATA), mode 0700, owned by the server's user
    run/         the unix socket ``.s.PGSQL.5432``, mode 0700 (no TCP port is opened)
    log/         postgres.log
    pgcopy/      a copy of the bundled binaries, only when the server's user cannot read them
    start.lock   serializes concurrent starts

The server is left running and reused by later invocations (found through
``pgdata/postmaster.pid``); ``kubeinv db url`` prints its DSN.

PostgreSQL refuses to run as root. As root the server runs as an existing unprivileged user
(``nobody``) through a setuid child process; only kubeinv's own directories are created,
chowned or chmodded, never their parents, and no user is ever created.

Binaries: the newest PostgreSQL among the system's (``pg_config --bindir``,
``/usr/lib/postgresql/*/bin``) and the one bundled in the pgserver wheel
(``pgserver/pginstall/bin``, PostgreSQL 16), the system's first on a tie. A data directory that
exists keeps the major version that created it (``pgdata/PG_VERSION``): only binaries of that
major start it. pgserver's own ``get_server`` is never called: as root it creates users and
chmods parent directories.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from collector.errors import EmbeddedServerError, EmbeddedServerUnusableError
from collector.logging_setup import get_logger

log = get_logger(__name__)

DATABASE = "kubeinv"
SUPERUSER = "postgres"
PORT = 5432  # names the socket file only: the server listens on no TCP port
DEFAULT_RUN_AS = "nobody"
_NEEDED = ("initdb", "pg_ctl", "postgres")
_SOCKET_PATH_MAX = 107  # sun_path of struct sockaddr_un, minus the NUL


def embedded_dsn(data_dir: Path, database: str = DATABASE) -> str:
    """The DSN of the embedded server of ``data_dir`` (psql and asyncpg accept it)."""
    run_dir = Path(data_dir).absolute() / "run"
    return f"postgresql://{SUPERUSER}@/{database}?host={quote(str(run_dir), safe='/')}&port={PORT}"


@dataclass(frozen=True)
class ServerStatus:
    """What ``kubeinv db status`` shows about the embedded server (nothing is started)."""

    data_dir: Path
    initialized: bool  # pgdata holds a database cluster
    major_version: int | None  # pgdata/PG_VERSION
    server_version: str | None  # `postgres -V` of binaries of that major, when found
    bindir: Path | None
    pid: int | None  # None: not running
    socket: Path
    size_bytes: int  # of pgdata
    log_file: Path
    dsn: str

    @property
    def running(self) -> bool:
        return self.pid is not None


@dataclass(frozen=True)
class ServerUser:
    name: str
    uid: int
    gid: int

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()


def _server_version(bindir: Path) -> str | None:
    """``16.2`` for the server in ``bindir`` (``postgres -V``), or None."""
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "-V"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.split()
    return words[2] if len(words) >= 3 else None


def _tree_size(root: Path) -> int:
    """Bytes of the files under ``root`` (0 when it cannot be read)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def server_major(bindir: Path) -> int | None:
    """The major version of the PostgreSQL server in ``bindir`` (``postgres -V``), or None."""
    # "postgres (PostgreSQL) 16.2", "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    version = _server_version(bindir)
    if version is None:
        return None
    try:
        return int(version.split(".")[0])
    except ValueError:
        return None


def _find_bindirs() -> list[Path]:
    """Directories holding initdb, pg_ctl and postgres, system ones first (not yet ordered by
    version: see :meth:`EmbeddedServer._usable_bindir`)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))

    def major(path: Path) -> int:
        try:
            return int(path.parent.name.split(".")[0])
        except ValueError:
            return 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    seen: set[Path] = set()
    found = []
    for path in candidates:
        if path in seen:
            continue
        seen.add(path)
        if all(os.access(path / name, os.X_OK) for name in _NEEDED):
            found.append(path)
    return found


def _readable_by(path: Path, user: ServerUser) -> bool:
    """Whether ``user`` can reach ``path`` (every ancestor searchable) and read it."""
    if user.is_current:
        return os.access(path, os.R_OK)
    path = path.resolve()
    for ancestor in [*reversed(path.parents), path]:
        try:
            st = ancestor.stat()
        except OSError:
            return False
        need = stat.S_IROTH | stat.S_IXOTH if ancestor == path else stat.S_IXOTH
        if st.st_uid == user.uid:
            need <<= 6
        elif st.st_gid == user.gid:
            need <<= 3
        if st.st_mode & need != need:
            return False
    return True


class EmbeddedServer:
    """One PostgreSQL server in ``data_dir``; see the module docstring."""

    def __init__(
        self,
        data_dir: Path,
        *,
        run_as: str = DEFAULT_RUN_AS,
        start_timeout: float = 120.0,
        bindirs: list[Path] | None = None,
    ) -> None:
        # Settings.data_dir (collector.settings.default_data_dir when not configured).
        self.data_dir = Path(data_dir).absolute()
        self.pgdata = self.data_dir / "pgdata"
        self.run_dir = self.data_dir / "run"
        self.log_dir = self.data_dir / "log"
        self.log_file = self.log_dir / "postgres.log"
        self.start_timeout = start_timeout
        self._run_as = run_as
        self._bindirs = bindirs  # None: search (the newest of the system's and pgserver's)
        self.user = self._server_user()
        self.bindir: Path | None = None
        self.started_now = False  # this object started the server (rather than reusing it)
        self.initialized_now = False  # this object ran initdb

    # ---- public ----------------------------------------------------------------------------

    def dsn(self, database: str = DATABASE) -> str:
        return embedded_dsn(self.data_dir, database)

    @property
    def socket_path(self) -> Path:
        return self.run_dir / f".s.PGSQL.{PORT}"

    def status(self) -> ServerStatus:
        """The server's state, read from its data directory; starts nothing, changes nothing."""
        major: int | None = None
        with contextlib.suppress(OSError, ValueError, IndexError):
            major = int((self.pgdata / "PG_VERSION").read_text().split()[0].split(".")[0])
        version: str | None = None
        bindir: Path | None = None
        if major is not None:
            for candidate in _find_bindirs() if self._bindirs is None else self._bindirs:
                text = _server_version(candidate)
                if text and text.split(".")[0] == str(major):
                    version, bindir = text, candidate
                    break
        return ServerStatus(
            data_dir=self.data_dir,
            initialized=major is not None,
            major_version=major,
            server_version=version,
            bindir=bindir,
            pid=self.running_pid(),
            socket=self.socket_path,
            size_bytes=_tree_size(self.pgdata),
            log_file=self.log_file,
            dsn=self.dsn(),
        )

    def ensure_running(self, *, create_database: bool = True) -> str:
        """Start the server unless it already runs; return its DSN.

        ``create_database`` False leaves the inventory database uncreated when this call starts
        the server (the demo works in a scratch database of its own)."""
        socket_path = self.run_dir / f".s.PGSQL.{PORT}"
        if len(str(socket_path)) > _SOCKET_PATH_MAX:
            raise EmbeddedServerUnusableError(
                f"the data directory {self.data_dir} is too deep for a unix socket path "
                f"({len(str(socket_path))} > {_SOCKET_PATH_MAX} bytes); set KUBEINV_DATA_DIR "
                "to a shorter path"
            )
        self._make_dirs()
        with self._start_lock():
            if self.running_pid() is not None and socket_path.exists():
                return self.dsn()
            self.bindir = self._usable_bindir()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            self._remove_stale_pidfile()
            self._start()
            if create_database:
                self._createdb()
        return self.dsn()

    def running_pid(self) -> int | None:
        """The postmaster's pid when a server of this data directory is alive."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[0].strip()
            pid = int(first)
        except (OSError, ValueError, IndexError):
            return None
        if not _alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no /proc: trust the signal probe
        return pid if b"postgres" in cmdline or b"postmaster" in cmdline else None

    def stop(self, *, timeout: float = 30.0) -> None:
        """Stop the server (fast shutdown) and wait for it to exit."""
        pid = self.running_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)
        raise EmbeddedServerError(f"the embedded PostgreSQL (pid {pid}) did not stop in {timeout}s")

    # ---- steps -----------------------------------------------------------------------------

    def _server_user(self) -> ServerUser:
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
        try:
            entry = pwd.getpwnam(self._run_as)
        except KeyError:
            raise EmbeddedServerUnusableError(
                f"running as root, the embedded PostgreSQL needs an existing unprivileged user "
                f"to run as, and user {self._run_as!r} does not exist; kubeinv never creates "
                "users: set KUBEINV_DATABASE_URL to a PostgreSQL server instead"
            ) from None
        if entry.pw_uid == 0:
            raise EmbeddedServerUnusableError(
                f"user {self._run_as!r} is root; PostgreSQL refuses it"
            )
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)

    def _make_dirs(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
            if not self.user.is_current:
                if not _readable_by(self.data_dir, self.user):
                    # The data dir itself is kubeinv's: make it traversable; its parents are
                    # not, and are never changed.
                    self.data_dir.chmod(0o755)
                if not _readable_by(self.data_dir, self.user):
                    raise EmbeddedServerUnusableError(
                        f"the embedded PostgreSQL runs as user {self.user.name!r}, which cannot "
                        f"reach {self.data_dir} (a parent directory is not searchable by it); "
                        "kubeinv does not change permissions outside its own directories: set "
                        "KUBEINV_DATA_DIR to a directory under a searchable path, e.g. "
                        "/var/lib/kubeinv"
                    )
            for sub in (self.pgdata, self.run_dir, self.log_dir):
                sub.mkdir(exist_ok=True, mode=0o700)
                if not self.user.is_current:
                    os.chown(sub, self.user.uid, self.user.gid)
                sub.chmod(0o700)
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot prepare the embedded PostgreSQL directory {self.data_dir}: {exc}"
            ) from exc

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        path = self.data_dir / "start.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise EmbeddedServerError(f"cannot open {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _usable_bindir(self) -> Path:
        found = _find_bindirs() if self._bindirs is None else self._bindirs
        if not found:
            raise EmbeddedServerUnusableError(
                "no PostgreSQL server binaries found (initdb, pg_ctl, postgres): install "
                "PostgreSQL, or the pgserver wheel (pip install pgserver), or set "
                "KUBEINV_DATABASE_URL"
            )
        majors = {bindir: server_major(bindir) for bindir in found}
        # Newest first (a newer server is faster: PostgreSQL 16 parses jsonb with ~30%
        # fewer instructions than 15, benchmarks/README.md); the system's first on a tie.
        bindirs = sorted(found, key=lambda b: -(majors[b] or 0))
        version_file = self.pgdata / "PG_VERSION"
        if version_file.exists():
            try:
                wanted = int(version_file.read_text().strip().split(".")[0])
            except (OSError, ValueError) as exc:
                raise EmbeddedServerError(f"cannot read {version_file}: {exc}") from exc
            bindirs = [b for b in bindirs if majors[b] == wanted]
            if not bindirs:
                have = ", ".join(f"{majors[b] or '?'} in {b}" for b in found)
                raise EmbeddedServerUnusableError(
                    f"the embedded database {self.pgdata} was created by PostgreSQL {wanted}, "
                    f"and no PostgreSQL {wanted} server binaries are found (found: {have}): "
                    f"install PostgreSQL {wanted}, or move {self.data_dir} aside to start a new "
                    "embedded database, or set KUBEINV_DATABASE_URL"
                )
        for bindir in bindirs:
            if all(_readable_by(bindir / name, self.user) for name in _NEEDED):
                return bindir
        return self._copy_install(bindirs[0])

    def _copy_install(self, bindir: Path) -> Path:
        """Copy an installation the server's user cannot read under kubeinv's directory.

        The pgserver wheel's binaries find their shared libraries through the RPATH
        ``$ORIGIN/../../../pgserver.libs`` (auditwheel), so the copy keeps that layout:
        ``pgcopy/pkg/pginstall`` and ``pgcopy/*.libs``.
        """
        source = bindir.parent
        root = self.data_dir / "pgcopy"
        target = root / "pkg" / source.name
        marker = root / ".complete"
        if not marker.exists():
            log.info("copying PostgreSQL binaries from %s to %s", source, target)
            shutil.rmtree(root, ignore_errors=True)
            try:
                target.parent.mkdir(parents=True)
                shutil.copytree(source, target, symlinks=True)
                for libs in source.parent.parent.glob("*.libs"):
                    shutil.copytree(libs, root / libs.name, symlinks=True)
                for dirpath, _dirnames, filenames in os.walk(root):
                    Path(dirpath).chmod(0o755)
                    for name in filenames:
                        file = Path(dirpath) / name
                        if not file.is_symlink():
                            file.chmod(file.stat().st_mode | stat.S_IROTH | stat.S_IRGRP)
                marker.touch()
            except OSError as exc:
                raise EmbeddedServerError(
                    f"cannot copy the PostgreSQL binaries from {source} to {target}: {exc}"
                ) from exc
        return target / bindir.name

    def _run(
        self, argv: list[str], what: str, *, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": str(self.data_dir),
            "PGDATA": str(self.pgdata),
        }
        switch = not self.user.is_current  # as root: run as the unprivileged server user
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                cwd=self.data_dir,
                start_new_session=True,  # ^C in the terminal must not stop the server
                check=False,
                user=self.user.uid if switch else None,
                group=self.user.gid if switch else None,
                extra_groups=[] if switch else None,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise EmbeddedServerError(f"{what} failed: {exc}") from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise EmbeddedServerError(
                f"{what} failed (exit {result.returncode}): {' | '.join(detail)}"
                f"; see {self.log_file}"
            )
        return result

    def _initdb(self) -> None:
        assert self.bindir is not None
        started = time.monotonic()
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.pgdata),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            "initdb of the embedded PostgreSQL",
            timeout=self.start_timeout,
        )  # fmt: skip
        self.initialized_now = True
        log.info("initialized the embedded PostgreSQL in %.1fs", time.monotonic() - started)

    def _remove_stale_pidfile(self) -> None:
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists() and self.running_pid() is None:
            log.warning("removing stale %s", pidfile)
            with contextlib.suppress(FileNotFoundError):
                pidfile.unlink()

    def _start(self) -> None:
        assert self.bindir is not None
        options = (
            f"-k {self.run_dir} -p {PORT} -c listen_addresses='' "
            "-c unix_socket_permissions=0700 -c max_connections=100 -c shared_buffers=128MB "
            "-c logging_collector=off"
        )
        started = time.monotonic()
        self._run(
            [
                str(self.bindir / "pg_ctl"),
                "-D", str(self.pgdata),
                "-l", str(self.log_file),
                "-o", options,
                "-w", "-t", str(int(self.start_timeout)),
                "start",
            ],
            "starting the embedded PostgreSQL",
            timeout=self.start_timeout + 10,
        )  # fmt: skip
        self.started_now = True
        log.info(
            "started the embedded PostgreSQL (%s) in %.1fs",
            self.data_dir,
            time.monotonic() - started,
        )

    def create_database(self) -> None:
        """Create the inventory database in the running server unless it exists (a server that
        the demo started holds only the demo's scratch database)."""
        with self._start_lock():
            if self.bindir is None:
                self.bindir = self._usable_bindir()
            self._createdb()

    def _createdb(self) -> None:
        assert self.bindir is not None
        createdb = self.bindir / "createdb"
        if not createdb.exists():
            createdb = self.bindir / "postgres"  # unreachable with a complete installation
        try:
            self._run(
                [
                    str(createdb),
                    "-h",
                    str(self.run_dir),
                    "-p",
                    str(PORT),
                    "-U",
                    SUPERUSER,
                    DATABASE,
                ],
                f"creating database {DATABASE}",
                timeout=60,
            )
        except EmbeddedServerError as exc:
            if "already exists" not in str(exc):
                raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
