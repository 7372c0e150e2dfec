"""One node of a `KafkaCluster` (its ports, folder, ``server.properties`` and JVM process),
and how a cluster of them is configured and waited for."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from eventwire.testing._broker import BrokerStartError, _BrokerProcess, _free_port

#: JVM flags of every node unless ``jvm_options`` replaces them. Measured on 2 shared cores:
#: the serial collector and the C1 compiler alone start a node in about half the CPU time of
#: the defaults (G1, C2); a small heap keeps four JVMs near 1 GB. For throughput figures pass
#: ``jvm_options`` without ``-XX:TieredStopAtLevel=1``.
DEFAULT_JVM_OPTIONS = (
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
#: The dedicated controller holds only the cluster metadata.
CONTROLLER_HEAP = "-Xmx256m"

# Every name the cluster sets per node itself; an override of one is refused.
MANAGED_PROPERTIES = frozenset(
    {
        "process.roles",
        "node.id",
        "listeners",
        "advertised.listeners",
        "listener.security.protocol.map",
        "inter.broker.listener.name",
        "controller.listener.names",
        "controller.quorum.voters",
        "controller.quorum.bootstrap.servers",
        "log.dirs",
        "log.dir",
        "metadata.log.dir",
    }
)

_LOG4J2 = """\
status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.requests.name = kafka.request.logger
logger.requests.level = WARN
"""


def render(value: object) -> str:
    """A property value as Kafka reads it (``True`` -> ``true``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def new_uuid() -> str:
    """A Kafka ``Uuid`` string (URL-safe base64, no padding), as cluster and directory ids.

    Never one that starts with ``-`` (Kafka's ``Uuid.randomUuid`` avoids them too): the
    storage tool's ``--cluster-id`` would take it for an option and fail the start.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def write_log_config(folder: Path) -> Path:
    path = folder / "log4j2.properties"
    path.write_text(_LOG4J2)
    return path


@dataclass
class KafkaNode:
    """A broker, the dedicated controller, or (one broker alone) both in one JVM."""

    node_id: int
    is_broker: bool
    is_controller: bool
    folder: Path
    host: str
    client_port: int = 0
    replication_port: int = 0
    controller_port: int = 0
    #: The port advertised to clients: a `FaultProxy`'s in front of ``client_port``, if any.
    advertised_port: int = 0
    #: The client listener's ``security.protocol`` (`KafkaCluster`'s ``security``).
    client_protocol: str = "PLAINTEXT"
    process: _BrokerProcess | None = None
    paused: bool = False
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def roles(self) -> str:
        return ",".join(
            role
            for role, has in (("broker", self.is_broker), ("controller", self.is_controller))
            if has
        )

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.alive

    @property
    def client_address(self) -> str:
        """Where clients connect: the advertised address."""
        return f"{self.host}:{self.advertised_port or self.client_port}"

    @property
    def internal_address(self) -> str:
        """Where the kit's own clients connect: the client listener if it is plaintext, else
        the replication listener (plaintext, its principal a super user)."""
        if self.client_protocol == "PLAINTEXT":
            return self.client_address
        return f"{self.host}:{self.replication_port}"

    def server_properties(
        self, voters: str, cluster: Mapping[str, str], own: Mapping[str, str]
    ) -> dict[str, str]:
        """The node's ``server.properties``: the cluster's settings, then its own."""
        listeners: list[str] = []
        advertised: list[str] = []
        if self.is_broker:
            replication = f"REPLICATION://{self.host}:{self.replication_port}"
            listeners += [f"CLIENT://{self.host}:{self.client_port}", replication]
            advertised = [f"CLIENT://{self.client_address}", replication]
        if self.is_controller:
            listeners.append(f"CONTROLLER://{self.host}:{self.controller_port}")
        settings = {
            "process.roles": self.roles,
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": (
                f"CLIENT:{self.client_protocol},REPLICATION:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "listeners": ",".join(listeners),
            "log.dirs": os.fspath(self.data_dir),
        }
        if self.is_broker:
            settings["advertised.listeners"] = ",".join(advertised)
            settings["inter.broker.listener.name"] = "REPLICATION"
        return {**cluster, **own, **settings}

    def write_config(self, properties: Mapping[str, str]) -> Path:
        self.properties = dict(properties)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "server.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in sorted(properties.items())))
        return path

    def format_command(self, java: str, classpath: str, cluster_id: str) -> list[str] | None:
        """The StorageTool run a controller needs (it writes the bootstrap metadata); ``None``
        for a broker, whose folder `write_meta` prepares without starting a JVM."""
        if not self.is_controller:
            return None
        return [
            java,
            *DEFAULT_JVM_OPTIONS[1:4],
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            cluster_id,
            "--config",
            os.fspath(self.folder / "server.properties"),
            "--ignore-formatted",
        ]

    def write_meta(self, cluster_id: str) -> None:
        """What ``kafka-storage format`` writes in a broker-only log folder."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "meta.properties").write_text(
            f"node.id={self.node_id}\ndirectory.id={new_uuid()}\nversion=1\n"
            f"cluster.id={cluster_id}\n"
        )

    def launch(
        self, java: str, classpath: str, jvm_options: Sequence[str], log_config: Path
    ) -> None:
        argv = [
            java,
            *jvm_options,
            *([CONTROLLER_HEAP] if not self.is_broker else []),
            f"-Dlog4j2.configurationFile={log_config}",
            "-cp",
            classpath,
            "kafka.Kafka",
            os.fspath(self.folder / "server.properties"),
        ]
        try:
            # A session of its own: Ctrl-C reaches pytest, which stops the cluster in order.
            self.process = _BrokerProcess(
                argv, dict(os.environ), log_path=self.folder / "server.log", start_new_session=True
            )
        except OSError as exc:
            raise BrokerStartError(f"cannot run {java}: {exc}") from exc
        self.paused = False

    def pause(self, paused: bool) -> None:
        """SIGSTOP or SIGCONT the JVM and return once the kernel shows it stopped or running
        (a signal is delivered asynchronously: ``kill`` returns before it takes effect)."""
        process = self.process
        if process is None or not process.alive:
            raise BrokerStartError(f"Kafka node {self.node_id} is not running")
        process.signal(signal.SIGSTOP if paused else signal.SIGCONT)
        deadline = time.monotonic() + 10.0
        while (_state(process.popen.pid) in ("T", "t")) != paused:
            if time.monotonic() > deadline:
                what = "stop" if paused else "continue"
                raise BrokerStartError(f"Kafka node {self.node_id} did not {what} within 10 s")
            time.sleep(0.001)
        self.paused = paused

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.folder / "server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _state(pid: int) -> str:
    """The process state letter from /proc (``T`` once stopped); ``X`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def run_formats(commands: Sequence[list[str]], timeout: float) -> None:
    """Run the StorageTool commands in parallel; raise with the output of one that failed."""
    running = [
        subprocess.Popen(  # noqa: S603 - our argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for command in commands
    ]
    failures: list[str] = []
    for process in running:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            failures.append(f"timed out after {timeout:g} s: {output[-2000:]}")
            continue
        if process.returncode != 0:
            failures.append(f"rc {process.returncode}: {output[-2000:]}")
    if failures:
        raise BrokerStartError(f"formatting Kafka's metadata folder failed: {failures[0]}")


def cluster_properties(
    *, brokers: int, partitions: int, replication_factor: int, min_insync_replicas: int
) -> dict[str, str]:
    """The ``server.properties`` entries every node of a cluster gets, before overrides."""
    internal_replicas = str(min(3, brokers))
    internal_min_isr = str(min(2, brokers))
    return {
        "num.partitions": str(partitions),
        "default.replication.factor": str(replication_factor),
        "min.insync.replicas": str(min_insync_replicas),
        "offsets.topic.replication.factor": internal_replicas,
        "transaction.state.log.replication.factor": internal_replicas,
        "transaction.state.log.min.isr": internal_min_isr,
        "share.coordinator.state.topic.replication.factor": internal_replicas,
        "share.coordinator.state.topic.min.isr": internal_min_isr,
        # 5, not Kafka's 50: the first consumer group or transaction would otherwise wait for
        # 150 replicas to be created on two cores.
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.num.partitions": "5",
        "group.initial.rebalance.delay.ms": "0",
        # A transaction open longer than its timeout (its producer died) is aborted within
        # a second of it, not up to 10 s later: read_committed consumers wait that long.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
        # A killed broker is fenced (its leaders moved) after 6 s instead of 9 s.
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
        # The cleaner's 128 MiB dedupe buffer would take a quarter of a small heap.
        "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
    }


class PortTakenError(BrokerStartError):
    """A port picked for a node was taken by another process before the node bound it."""


def await_serving(
    nodes: Sequence[KafkaNode],
    *,
    watched: Sequence[KafkaNode],
    cluster_id: str,
    deadline: float,
    timeout: float,
) -> None:
    """Wait until each broker node answers a metadata request and is listed in it (KRaft lists
    only registered, unfenced brokers; a broker processes requests only once unfenced).

    Raises:
        PortTakenError: a node could not bind its port, or another cluster answers on it.
        BrokerStartError: a ``watched`` node exited, or ``deadline`` passed.
    """
    waiting = {node.node_id: node for node in nodes}
    probes: dict[int, AdminClient] = {}
    while waiting:
        for node in watched:
            if not node.running:
                tail = node.log_tail()
                error = PortTakenError if "Address already in use" in tail else BrokerStartError
                raise error(
                    f"Kafka node {node.node_id} exited while starting; its log"
                    f" ({node.folder / 'server.log'}) ends with:\n{tail}"
                )
        if time.monotonic() > deadline:
            first = min(waiting)
            raise BrokerStartError(
                f"Kafka brokers {sorted(waiting)} were not serving within {timeout:g} s;"
                f" broker {first}'s log ends with:\n{waiting[first].log_tail()}"
            )
        for broker_id, node in list(waiting.items()):
            if broker_id not in probes:
                # A plain TCP probe first: librdkafka would log every refused connection.
                if not _accepts(node.host, node.client_port):
                    continue
                probes[broker_id] = AdminClient(
                    {"bootstrap.servers": node.internal_address, "client.id": "eventwire-probe"}
                )
            try:
                metadata = probes[broker_id].list_topics(timeout=1.0)
            except KafkaException:
                continue
            if metadata.cluster_id != cluster_id:
                raise PortTakenError(
                    f"another Kafka cluster ({metadata.cluster_id}) answers on"
                    f" {node.internal_address}"
                )
            # The first answer can only come from the node itself (the probe knows no other
            # broker yet): it serves requests, which it does once unfenced.
            if broker_id in metadata.brokers:
                del waiting[broker_id]
        if waiting:
            time.sleep(0.05)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_ports(host: str, count: int) -> list[int]:
    """``count`` distinct free ports (each probed by binding port 0)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(_free_port(host))
    return list(ports)
