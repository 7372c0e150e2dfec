"""What a running `KafkaCluster` lets its tests do to it: break and restore one broker, ask
for leaders and in-sync replicas, delete topics, run Kafka's tools and set quotas (a mixin
over ``_kafka_secured.SecuredCluster``; the cluster's start and stop are ``_kafka``)."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._metadata import ClusterMetadata

from eventwire.testing._broker import BrokerStartError
from eventwire.testing._kafka_jars import TOOL_JVM_OPTIONS, run_java
from eventwire.testing._kafka_node import KafkaNode
from eventwire.testing._kafka_secured import SecuredCluster

_log = logging.getLogger("eventwire.testing")


class ClusterOperations(SecuredCluster):
    """The broker faults, partition queries and tools of `KafkaCluster` (see its docstring)."""

    _java: str
    _classpath: str
    _jvm_options: tuple[str, ...]
    _log_config: Path | None
    _startup_timeout: float
    restart_seconds: dict[int, float]

    def _node(self, broker_id: int) -> KafkaNode:
        node = self._nodes.get(broker_id)
        if node is None:
            if not self._nodes:
                raise BrokerStartError("the Kafka cluster is not running: call start() first")
            raise ValueError(f"no broker {broker_id}; the brokers are {sorted(self._nodes)}")
        return node

    def _require_running_broker(self) -> None:
        if not any(node.running and not node.paused for node in self._nodes.values()):
            raise BrokerStartError("no broker of the Kafka cluster is running")

    def _await_brokers(self, nodes: Sequence[KafkaNode], deadline: float) -> None:
        raise NotImplementedError

    # -- one broker --------------------------------------------------------------------------

    def kill_broker(self, broker_id: int) -> None:
        """SIGKILL the broker (a crash: no controlled shutdown) and reap it; data is kept."""
        node = self._node(broker_id)
        if node.process is not None:
            node.process.kill()
        node.paused = False

    def stop_broker(self, broker_id: int, timeout: float = 60.0) -> None:
        """SIGTERM the broker and wait for its controlled shutdown (leaders move away first);
        SIGKILL after ``timeout`` seconds. Data is kept."""
        node = self._node(broker_id)
        if node.process is not None:
            node.process.terminate(timeout)
        node.paused = False

    def pause_broker(self, broker_id: int) -> None:
        """SIGSTOP the broker: connections stay open, nothing answers (a hung broker). Returns
        once the process is stopped.

        Raises:
            BrokerStartError: the broker is not running.
        """
        self._node(broker_id).pause(True)

    def resume_broker(self, broker_id: int) -> None:
        """SIGCONT a paused broker; returns once the process runs again.

        Raises:
            BrokerStartError: the broker is not running.
        """
        self._node(broker_id).pause(False)

    def start_broker(self, broker_id: int) -> None:
        """Start a stopped or killed broker on its port with its data, and wait until the
        controller lists it again; no-op if it runs. Its replicas catch up afterwards:
        `wait_for_full_isr` waits for that.

        Raises:
            BrokerStartError: it exited or was not registered within ``startup_timeout``.
        """
        node = self._node(broker_id)
        if node.running:
            return
        if self._log_config is None:  # set by start(), with the nodes
            raise BrokerStartError("the Kafka cluster is not running: call start() first")
        started = time.monotonic()
        node.launch(self._java, self._classpath, self._jvm_options, self._log_config)
        self._await_brokers([node], started + self._startup_timeout)
        took = self.restart_seconds[broker_id] = time.monotonic() - started
        _log.info("Kafka broker %d serves again after %.1f s", broker_id, took)

    def restore(self, timeout: float = 120.0) -> None:
        """Undo every broker fault: resume paused brokers, start stopped or killed ones, and
        wait until every partition has its full ISR again (for a shared cluster after a test).

        Raises:
            BrokerStartError: a broker did not come back.
            TimeoutError: some partitions were still short after ``timeout`` seconds.
        """
        for broker_id, node in self._nodes.items():
            if node.running:
                if node.paused:
                    self.resume_broker(broker_id)
            else:
                self.start_broker(broker_id)
        self.wait_for_full_isr(timeout)

    # -- partitions --------------------------------------------------------------------------

    def leader(self, topic: str, partition: int, timeout: float = 30.0) -> int:
        """The broker id leading a partition, waiting up to ``timeout`` seconds for one.

        Raises:
            ValueError: the topic or partition does not exist.
            TimeoutError: the partition had no leader within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self.metadata().topics.get(topic)
            if found is None or partition not in found.partitions:
                raise ValueError(f"no partition {topic!r}/{partition} on {self.bootstrap_servers}")
            leader = found.partitions[partition].leader
            if leader >= 0:
                return int(leader)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic!r}/{partition} has no leader after {timeout:g} s")
            time.sleep(0.05)

    def wait_for_full_isr(self, timeout: float = 60.0, topics: Iterable[str] | None = None) -> None:
        """Wait until every partition (of ``topics``, default every topic, internal ones
        included) has a leader and all its replicas in sync.

        Raises:
            TimeoutError: some partitions were still short after ``timeout`` seconds; the
                message names them with their replicas and ISR.
        """
        wanted = None if topics is None else set(topics)
        deadline = time.monotonic() + timeout
        while True:
            short = [
                f"{name}/{pid} replicas={sorted(p.replicas)} isr={sorted(p.isrs)}"
                for name, found in self.metadata().topics.items()
                if wanted is None or name in wanted
                for pid, p in sorted(found.partitions.items())
                if p.leader < 0 or set(p.isrs) != set(p.replicas)
            ]
            if not short:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(short)} partition(s) without a full ISR after {timeout:g} s: "
                    + "; ".join(short[:10])
                )
            time.sleep(0.1)

    def metadata(self, timeout: float = 10.0) -> ClusterMetadata:
        """Fresh cluster metadata from a running broker (brokers, topics, leaders, ISR).

        No topic is named in the request, so none is auto-created. While a broker is paused
        the request goes to one that is not: a paused broker keeps its connections open and
        answers nothing, and a client that picked it would wait out ``timeout``.
        """
        self._require_running_broker()
        if not any(node.paused for node in self._nodes.values()):
            return self._admin_client().list_topics(timeout=timeout)
        serving = next(n for n in self._nodes.values() if n.running and not n.paused)
        # A client that knows no other broker yet sends its first request to this one.
        admin = AdminClient(
            {"bootstrap.servers": serving.client_address, "client.id": "eventwire-probe"}
        )
        return admin.list_topics(timeout=timeout)

    def delete_topic(self, name: str, timeout: float = 30.0) -> None:
        """Delete a topic and wait until no broker lists it.

        Raises:
            KafkaException: the broker refused (e.g. the topic does not exist).
            TimeoutError: still listed after ``timeout`` seconds.
        """
        [future] = self._admin_client().delete_topics([name], operation_timeout=timeout).values()
        error = future.exception()
        if error is not None:
            raise error
        deadline = time.monotonic() + timeout
        while name in self.metadata().topics:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name!r} still listed after {timeout:g} s")
            time.sleep(0.05)

    # -- tools -------------------------------------------------------------------------------

    def run_tool(
        self,
        main_class: str,
        *args: str,
        timeout: float = 120.0,
        jvm_options: Sequence[str] = TOOL_JVM_OPTIONS,
    ) -> subprocess.CompletedProcess[str]:
        """Run one of Kafka's command-line tools (a class with a ``main``) on the cluster's
        classpath, e.g. ``org.apache.kafka.tools.ProducerPerformance``. Output is captured;
        the exit code is not checked.

        Args:
            main_class: the class to run.
            *args: its command-line arguments.
            timeout: seconds it may run.
            jvm_options: JVM flags; by default a JVM that starts quickly
                (``-XX:+UseSerialGC -XX:TieredStopAtLevel=1``: C1 only). For a tool whose
                speed is measured, pass flags without ``-XX:TieredStopAtLevel=1`` (e.g.
                ``["-Xmx1g"]``: G1 and the C2 compiler).

        Raises:
            subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds (it is killed).
        """
        return run_java(main_class, args, timeout=timeout, jvm_options=jvm_options)

    def set_client_quota(self, client_id: str, **quotas: float) -> None:
        """Set client quotas by client id, e.g. ``producer_byte_rate=1024``, through Kafka's
        ``kafka-configs`` tool (confluent-kafka has no quota API). Applies within a second.

        Raises:
            BrokerStartError: the tool failed (the message quotes it).
        """
        settings = ",".join(f"{name}={value:g}" for name, value in sorted(quotas.items()))
        done = self.run_tool(
            "org.apache.kafka.tools.ConfigCommand",
            "--bootstrap-server",
            self._client_settings()["bootstrap.servers"],
            "--alter",
            "--add-config",
            settings,
            "--entity-type",
            "clients",
            "--entity-name",
            client_id,
        )
        if done.returncode != 0:
            raise BrokerStartError(f"kafka-configs failed: {(done.stderr or done.stdout)[-2000:]}")
