"""KafkaCluster: Apache Kafka itself (KRaft mode, from its own jars) on loopback ports, for
tests that need the reference broker: replication, leader fail-over, ISR,
``min.insync.replicas``, broker size limits, quotas, transactions with ``read_committed``,
TLS, SASL, OAUTHBEARER and ACLs.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from confluent_kafka.admin import AdminClient

from eventwire.testing._broker import BrokerStartError
from eventwire.testing._kafka_jars import (
    KAFKA_VERSION,
    java_executable,
    kafka_classpath,
)
from eventwire.testing._kafka_node import (
    DEFAULT_JVM_OPTIONS,
    MANAGED_PROPERTIES,
    KafkaNode,
    PortTakenError,
    await_serving,
    cluster_properties,
    free_ports,
    new_uuid,
    render,
    run_formats,
    write_log_config,
)
from eventwire.testing._kafka_operations import ClusterOperations
from eventwire.testing._kafka_security import (
    CLIENT_USER,
    SECURITY_MODES,
    ClusterSecurity,
    SecurityMode,
)
from eventwire.testing._proxy import FaultProxy
from eventwire.testing._started import StartStop
from eventwire.testing._watchdog import unwatch_directory, watch_directory

_log = logging.getLogger("eventwire.testing")

#: Node id of the dedicated controller (clusters of two or more brokers).
CONTROLLER_ID = 100


class KafkaCluster(ClusterOperations, StartStop):
    """Apache Kafka brokers in KRaft mode on free loopback ports, data in a temporary folder.

    The jars come from Maven Central through Maven on first use (see `KAFKA_VERSION`); Java 17
    or newer and Maven must be installed. With two or more brokers a dedicated controller
    (node `CONTROLLER_ID`, never stopped by the broker methods) holds the metadata quorum, so
    killing, stopping or pausing any broker, even all of them, leaves a controller that fences
    it, elects new leaders and shrinks the ISR as a production quorum would. One broker runs
    as a combined broker and controller in a single JVM.

    Topics get ``replication_factor`` copies and ``min.insync.replicas`` by default;
    ``__consumer_offsets`` and ``__transaction_state`` fit the broker count, so one broker
    runs transactions too. Every process is stopped at interpreter exit, and by a watchdog
    process if this one is killed.

    Example::

        with KafkaCluster(brokers=3) as cluster:
            cluster.create_topic("orders", partitions=3)
            leader = cluster.leader("orders", 0)
            cluster.kill_broker(leader)  # SIGKILL
            ...
            cluster.start_broker(leader)  # same port, same data
            cluster.wait_for_full_isr()

    A secured cluster (``security=``) secures its client listener; ``client_config()`` gives
    what a publisher needs to connect::

        with KafkaCluster(brokers=1, security="SASL_SSL", authorizer=True) as cluster:
            topic = cluster.unique_topic("orders")
            cluster.allow("client", ["WRITE", "DESCRIBE"], topic=topic)
            config = eventwire.PublisherConfig(**cluster.client_config("client"))

    Args:
        brokers: number of brokers (ids 1 to ``brokers``).
        partitions: partition count of topics created through this object, and of topics the
            brokers create on first use, when none is given.
        replication_factor: copies of each partition of a new topic; default
            ``min(3, brokers)``.
        min_insync_replicas: the brokers' ``min.insync.replicas``; default
            ``min(2, replication_factor)``.
        server_properties: ``server.properties`` entries for every broker, over the defaults
            (e.g. ``{"auto.create.topics.enable": False, "message.max.bytes": 200_000}``).
        broker_properties: entries for one broker id, over ``server_properties``.
        jvm_options: JVM flags of every node; default `DEFAULT_JVM_OPTIONS`.
        proxied: put a `FaultProxy` in front of each broker's client listener and advertise
            the proxy's address, so every client connection goes through it (`proxy`);
            replication and the controller connect directly.
        host: IPv4 loopback address to listen on and advertise.
        startup_timeout: seconds `start` and `start_broker` wait for the brokers.
        security: what the client listener asks of clients: ``"PLAINTEXT"`` (default);
            ``"SSL"`` (mutual TLS: each user has a client certificate, its CN the principal,
            its key encrypted with the user's password); ``"SASL_SSL"`` (TLS, SCRAM-SHA-512
            and -256 users created through the Admin API); ``"SASL_PLAINTEXT"`` (PLAIN
            users); ``"SASL_OAUTHBEARER"`` (TLS, Kafka's unsecured JWS validator, and a local
            OIDC token endpoint for the client-credentials grant, `token_endpoint_url`). The
            CA and certificates are made at start with ``cryptography``; the brokers'
            certificate names ``host`` only.
        users: user name -> password, besides ``client`` and ``admin`` (a super user), which
            get random passwords unless given here (`users` tells them).
        authorizer: Kafka's ``StandardAuthorizer`` with ACLs (`allow`); ``admin`` and the
            kit's own clients are super users, anyone else needs ACLs.
        certificate_expired: the brokers present a certificate that expired yesterday (to
            test how a client reports it).
        token_lifetime: seconds the OAUTHBEARER tokens of `token_provider` and of the token
            endpoint live.

    Raises:
        ValueError: a count out of range, a property the cluster manages itself
            (``node.id``, ``listeners``, ``log.dirs``, ...), an unknown ``security``, or
            ``authorizer``/``users``/``certificate_expired`` without what they need.
    """

    def __init__(
        self,
        brokers: int = 3,
        *,
        partitions: int = 3,
        replication_factor: int | None = None,
        min_insync_replicas: int | None = None,
        server_properties: Mapping[str, object] | None = None,
        broker_properties: Mapping[int, Mapping[str, object]] | None = None,
        jvm_options: Sequence[str] | None = None,
        proxied: bool = False,
        host: str = "127.0.0.1",
        startup_timeout: float = 120.0,
        security: SecurityMode = "PLAINTEXT",
        users: Mapping[str, str] | None = None,
        authorizer: bool = False,
        certificate_expired: bool = False,
        token_lifetime: float = 300.0,
    ) -> None:
        self._security = _cluster_security(
            security,
            host=host,
            users=users,
            authorizer=authorizer,
            certificate_expired=certificate_expired,
            token_lifetime=token_lifetime,
        )
        if brokers < 1:
            raise ValueError(f"brokers must be >= 1, got {brokers}")
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        replicas = min(3, brokers) if replication_factor is None else replication_factor
        if not 1 <= replicas <= brokers:
            raise ValueError(f"replication_factor must be in 1..{brokers}, got {replicas}")
        min_isr = min(2, replicas) if min_insync_replicas is None else min_insync_replicas
        if not 1 <= min_isr <= replicas:
            raise ValueError(f"min_insync_replicas must be in 1..{replicas}, got {min_isr}")
        if startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0 seconds, got {startup_timeout}")
        unknown = set(broker_properties or {}) - set(range(1, brokers + 1))
        if unknown:
            raise ValueError(f"broker_properties for unknown broker ids: {sorted(unknown)}")
        for settings in [server_properties or {}, *(broker_properties or {}).values()]:
            managed = sorted(MANAGED_PROPERTIES.intersection(settings))
            if managed:
                raise ValueError(f"KafkaCluster sets these properties itself: {managed}")
        self._partitions = partitions
        self._replication_factor = replicas
        self._min_isr = min_isr
        self._brokers = brokers
        self._server_properties = {k: render(v) for k, v in (server_properties or {}).items()}
        self._broker_properties = {
            broker: {k: render(v) for k, v in settings.items()}
            for broker, settings in (broker_properties or {}).items()
        }
        self._jvm_options = tuple(DEFAULT_JVM_OPTIONS if jvm_options is None else jvm_options)
        self._proxied = proxied
        self._proxies: dict[int, FaultProxy] = {}
        self._host = host
        self._startup_timeout = startup_timeout
        self._cluster_id = new_uuid()
        self._folder: Path | None = None
        self._nodes: dict[int, KafkaNode] = {}
        self._controller: KafkaNode | None = None
        self._log_config: Path | None = None
        self._java = ""
        self._classpath = ""
        self.startup_seconds: float | None = None
        """Seconds the last `start` took, from Maven's classpath to every broker serving."""
        self.restart_seconds: dict[int, float] = {}
        """Seconds the latest `start_broker` of each broker took, until it served again."""

    # -- state -------------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """Every broker's ``host:port``, comma-separated, for ``bootstrap.servers``.

        Raises:
            BrokerStartError: never started.
        """
        if not self._nodes:
            raise BrokerStartError("the Kafka cluster was never started: call start() first")
        return ",".join(node.client_address for node in self._nodes.values())

    @property
    def broker_ids(self) -> tuple[int, ...]:
        """The brokers' node ids, ``(1, 2, ..., brokers)``."""
        return tuple(range(1, self._brokers + 1))

    @property
    def controller_id(self) -> int:
        """Node id of the controller: `CONTROLLER_ID`, or 1 for a single combined broker."""
        return CONTROLLER_ID if self._brokers > 1 else 1

    @property
    def cluster_id(self) -> str:
        """The KRaft cluster id the storage was formatted with."""
        return self._cluster_id

    @property
    def version(self) -> str:
        """The Apache Kafka version, `KAFKA_VERSION`."""
        return KAFKA_VERSION

    @property
    def data_dir(self) -> Path | None:
        """The folder of every node's data and log, ``None`` when stopped."""
        return self._folder

    @property
    def running(self) -> bool:
        """Whether every node's process is alive (a paused one counts as alive)."""
        nodes = [*self._nodes.values(), *([self._controller] if self._controller else [])]
        return bool(nodes) and all(node.running for node in nodes)

    def broker_address(self, broker_id: int) -> str:
        """``host:port`` where clients reach one broker (its proxy's, if ``proxied``)."""
        return self._node(broker_id).client_address

    def proxy(self, broker_id: int) -> FaultProxy:
        """The `FaultProxy` every client connection to this broker goes through.

        Raises:
            ValueError: the cluster was built without ``proxied=True``, or no such broker.
        """
        self._node(broker_id)
        if not self._proxied:
            raise ValueError("the Kafka cluster has no proxies: build it with proxied=True")
        return self._proxies[broker_id]

    def broker_running(self, broker_id: int) -> bool:
        """Whether the broker's process is alive (paused or not)."""
        return self._node(broker_id).running

    def pid(self, broker_id: int) -> int | None:
        """The broker's process id while it runs, else ``None``."""
        node = self._node(broker_id)
        return node.process.popen.pid if node.process is not None and node.running else None

    def log_tail(self, broker_id: int, lines: int = 30) -> str:
        """The last lines of the broker's log (``server.log`` in its folder)."""
        return self._node(broker_id).log_tail(lines)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Fetch the jars if needed, format the storage, start every node, and wait until every
        broker is registered and answers metadata requests; no-op if running.

        Returns:
            ``self``.

        Raises:
            KafkaUnavailableError: no Java >= 17, no Maven, or Maven Central unreachable.
            BrokerStartError: a node exited or the brokers were not all serving within
                ``startup_timeout`` (the message ends with that node's log).
        """
        if self.running:
            return self
        self.stop()
        started = time.monotonic()
        self._java = java_executable()
        self._classpath = kafka_classpath()
        for attempt in range(2):
            try:
                self._start_nodes(started)
            except PortTakenError:
                self.stop()
                if attempt == 1:
                    raise
            except BaseException:
                self.stop()
                raise
            else:
                break
        try:
            self._after_start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        _log.info(
            "Apache Kafka %s: %d broker(s) ready in %.1f s (%s)",
            KAFKA_VERSION,
            self._brokers,
            self.startup_seconds,
            self.bootstrap_servers,
        )
        return self

    def stop(self) -> None:
        """SIGKILL every node and remove the data folder; idempotent.

        Graceful shutdown would only slow this down: nothing is kept. A later `start` begins
        an empty cluster on new ports.
        """
        self._admin = None
        if self._security is not None:
            self._security.stop()
        for proxy in self._proxies.values():
            proxy.stop()
        self._proxies = {}
        nodes = [*self._nodes.values(), *([self._controller] if self._controller else [])]
        for node in nodes:
            if node.process is not None and node.process.alive:
                node.process.popen.kill()
        for node in nodes:
            if node.process is not None:
                node.process.kill()
        self._nodes = {}
        self._controller = None
        folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            unwatch_directory(folder)

    def __repr__(self) -> str:
        if not self._nodes:
            return f"<KafkaCluster {KAFKA_VERSION} {self._brokers} broker(s) stopped>"
        states = ", ".join(
            f"{i}:{'paused' if n.paused else 'up' if n.running else 'down'}"
            for i, n in self._nodes.items()
        )
        mode = "" if self._security is None else f" {self._security.mode}"
        return f"<KafkaCluster {KAFKA_VERSION}{mode} {self.bootstrap_servers} {states}>"

    # -- internals ---------------------------------------------------------------------------

    def _require_running(self) -> None:
        self._require_running_broker()

    def _start_nodes(self, started: float) -> None:
        folder = Path(tempfile.mkdtemp(prefix="eventwire-kafka-"))
        self._folder = folder
        watch_directory(folder)  # removed by the watchdog if this process is killed
        self._log_config = write_log_config(folder)
        security = self._security
        if security is not None:
            security.prepare(folder / "security")
        ports = free_ports(self._host, 2 * self._brokers + 1)
        combined = self._brokers == 1
        for broker_id in self.broker_ids:
            self._nodes[broker_id] = KafkaNode(
                broker_id,
                is_broker=True,
                is_controller=combined,
                folder=folder / f"broker-{broker_id}",
                host=self._host,
                client_port=ports.pop(),
                replication_port=ports.pop(),
                client_protocol="PLAINTEXT" if security is None else security.protocol,
            )
        if self._proxied:
            for broker_id, node in self._nodes.items():
                proxy = FaultProxy((self._host, node.client_port), listen_host=self._host)
                self._proxies[broker_id] = proxy.start()
                node.advertised_port = proxy.port
        controller = self._nodes[1] if combined else None
        if controller is None:
            controller = self._controller = KafkaNode(
                CONTROLLER_ID,
                is_broker=False,
                is_controller=True,
                folder=folder / "controller",
                host=self._host,
            )
        controller.controller_port = ports.pop()
        voters = f"{controller.node_id}@{self._host}:{controller.controller_port}"
        cluster = {
            **cluster_properties(
                brokers=self._brokers,
                partitions=self._partitions,
                replication_factor=self._replication_factor,
                min_insync_replicas=self._min_isr,
            ),
            **(security.server_properties() if security is not None else {}),
            **self._server_properties,
        }
        nodes = [*([self._controller] if self._controller else []), *self._nodes.values()]
        for node in nodes:
            node.write_config(
                node.server_properties(
                    voters, cluster, self._broker_properties.get(node.node_id, {})
                )
            )
            if not node.is_controller:
                node.write_meta(self._cluster_id)
        formats = [
            node.format_command(self._java, self._classpath, self._cluster_id) for node in nodes
        ]
        run_formats([command for command in formats if command], timeout=self._startup_timeout)
        for node in nodes:
            node.launch(self._java, self._classpath, self._jvm_options, self._log_config)
        self._await_brokers(list(self._nodes.values()), started + self._startup_timeout)

    def _await_brokers(self, nodes: Sequence[KafkaNode], deadline: float) -> None:
        await_serving(
            nodes,
            watched=[*nodes, *([self._controller] if self._controller else [])],
            cluster_id=self._cluster_id,
            deadline=deadline,
            timeout=self._startup_timeout,
        )

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient(
                {
                    **self._client_settings(),
                    "client.id": "eventwire-kafka-cluster",
                    "reconnect.backoff.ms": 10,
                    "reconnect.backoff.max.ms": 200,
                    # A killed broker must not hold up metadata requests for long.
                    "socket.connection.setup.timeout.ms": 2000,
                }
            )
        return self._admin


def _cluster_security(
    mode: str,
    *,
    host: str,
    users: Mapping[str, str] | None,
    authorizer: bool,
    certificate_expired: bool,
    token_lifetime: float,
) -> ClusterSecurity | None:
    """The secured listener's settings, checked; ``None`` for a plaintext cluster."""
    if mode not in SECURITY_MODES:
        raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}, got {mode!r}")
    if mode == "PLAINTEXT":
        given = [
            name
            for name, value in (
                ("users", users),
                ("authorizer", authorizer),
                ("certificate_expired", certificate_expired),
            )
            if value
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} need a secured listener: give security= (every client of "
                "a plaintext listener is the same anonymous principal)"
            )
        return None
    if certificate_expired and mode == "SASL_PLAINTEXT":
        raise ValueError("certificate_expired needs a TLS listener (SSL, SASL_SSL, ...)")
    if token_lifetime <= 0:
        raise ValueError(f"token_lifetime must be > 0 seconds, got {token_lifetime}")
    accounts = {CLIENT_USER: secrets.token_hex(12), **(users or {})}
    for name, password in accounts.items():
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"user names are letters, digits, '-', '_' and '.', got {name!r}")
        if not password or '"' in password or "\\" in password:
            raise ValueError(f"the password of {name!r} must be non-empty, without '\"' or '\\'")
    return ClusterSecurity(
        mode,  # type: ignore[arg-type]  # checked above
        host=host,
        users=accounts,
        authorizer=authorizer,
        certificate_expired=certificate_expired,
        token_lifetime=token_lifetime,
    )
