"""KafkaCluster against Apache Kafka itself: the shared 3-broker and 1-broker clusters of the
pytest plugin, broker faults on the shared cluster (each test restores it), overrides, and the
errors that name what is missing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

from eventwire.testing import (
    KAFKA_VERSION,
    BrokerStartError,
    KafkaCluster,
    KafkaUnavailableError,
)
from eventwire.testing._kafka_jars import _java_major, _maven_error, reset_memo


def _state(pid: int) -> str:
    """The process state letter from /proc (R, S, T for stopped, Z, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _alive(pid: int) -> bool:
    try:
        return _state(pid) != "Z"
    except FileNotFoundError:
        return False


def _produce(bootstrap: str, topic: str, count: int, **settings: object) -> list[KafkaError | None]:
    errors: list[KafkaError | None] = []
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, **settings}
    )
    for n in range(count):
        producer.produce(
            topic, key=b"k", value=str(n).encode(), on_delivery=lambda e, _m: errors.append(e)
        )
    assert producer.flush(60) == 0
    return errors


@pytest.fixture
def restores(kafka_cluster: KafkaCluster) -> Iterator[KafkaCluster]:
    """The shared cluster, with every broker running and every ISR full again afterwards."""
    yield kafka_cluster
    kafka_cluster.restore()


# -- the shared clusters ---------------------------------------------------------------------


def test_the_session_cluster_has_three_brokers_rf3_and_min_isr_2(
    kafka_cluster: KafkaCluster,
) -> None:
    assert kafka_cluster.broker_ids == (1, 2, 3)
    assert kafka_cluster.version == KAFKA_VERSION == "4.4.0"
    assert len(kafka_cluster.bootstrap_servers.split(",")) == 3
    assert kafka_cluster.startup_seconds is not None
    assert kafka_cluster.startup_seconds > 0
    topic = kafka_cluster.unique_topic("defaults")
    metadata = kafka_cluster.metadata()
    # Each broker learns of a new topic from the controller on its own: create_topic waited
    # for the one it asked, and this request may go to one that lags (seen under load).
    deadline = time.monotonic() + 10
    while topic not in metadata.topics and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the brokers' metadata: no event to await
        metadata = kafka_cluster.metadata()
    assert sorted(metadata.brokers) == [1, 2, 3]
    partitions = metadata.topics[topic].partitions
    assert len(partitions) == 3
    assert all(sorted(p.replicas) == [1, 2, 3] for p in partitions.values())
    [future] = (
        kafka_cluster._admin_client()
        .describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
        .values()
    )
    assert future.result()["min.insync.replicas"].value == "2"
    assert _produce(kafka_cluster.bootstrap_servers, topic, 5) == [None] * 5
    assert [r.value for r in kafka_cluster.consume(topic, count=5)] == [
        str(n).encode() for n in range(5)
    ]


def test_one_broker_runs_transactions_read_committed(kafka_broker: KafkaCluster) -> None:
    topic = kafka_broker.unique_topic("tx", partitions=1)
    producer = Producer(
        {"bootstrap.servers": kafka_broker.bootstrap_servers, "transactional.id": topic}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"aborted")
    assert producer.flush(30) == 0  # written to the log, then aborted (not purged unsent)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"committed")
    producer.commit_transaction(30)
    # read_committed (the read-back default) skips the aborted record and the markers.
    assert [r.value for r in kafka_broker.consume(topic)] == [b"committed"]
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap_servers,
            "group.id": topic,
            "isolation.level": "read_uncommitted",
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        seen: list[bytes | None] = []
        while True:
            message = consumer.poll(10)
            assert message is not None, "no end of partition within 10 s"
            if message.error() is not None:
                assert message.error().code() == KafkaError._PARTITION_EOF
                break
            seen.append(message.value())
    finally:
        consumer.close()
    assert seen == [b"aborted", b"committed"]


# -- broker faults on the shared cluster -----------------------------------------------------


def test_a_killed_leader_is_replaced_and_comes_back_with_its_data(
    restores: KafkaCluster,
) -> None:
    cluster = restores
    topic = cluster.unique_topic("failover", partitions=1)
    assert _produce(cluster.bootstrap_servers, topic, 10) == [None] * 10
    leader = cluster.leader(topic, 0)
    pid = cluster.pid(leader)
    assert pid is not None
    cluster.kill_broker(leader)
    assert not _alive(pid)
    assert not cluster.broker_running(leader)
    deadline = time.monotonic() + 60
    while cluster.leader(topic, 0) == leader:  # the controller fences it after its session
        assert time.monotonic() < deadline, "no new leader within 60 s"
        time.sleep(0.1)
    # Two replicas of three in sync: acks=all writes go on (min.insync.replicas=2).
    assert _produce(cluster.bootstrap_servers, topic, 10) == [None] * 10
    cluster.start_broker(leader)
    assert cluster.pid(leader) not in (None, pid)
    cluster.wait_for_full_isr(timeout=120, topics=[topic])
    assert sorted(cluster.metadata().topics[topic].partitions[0].isrs) == [1, 2, 3]
    assert len(cluster.consume(topic, count=20)) == 20


def test_a_stopped_broker_hands_its_leadership_over_at_once(restores: KafkaCluster) -> None:
    cluster = restores
    topic = cluster.unique_topic("controlled", partitions=1)
    leader = cluster.leader(topic, 0)
    cluster.stop_broker(leader)  # SIGTERM: controlled shutdown moves the leadership first
    assert not cluster.broker_running(leader)
    assert cluster.leader(topic, 0, timeout=5) != leader
    with pytest.raises(TimeoutError, match=rf"{topic}/0 replicas=\[1, 2, 3\]"):
        cluster.wait_for_full_isr(timeout=0.5, topics=[topic])
    cluster.start_broker(leader)
    cluster.wait_for_full_isr(timeout=120, topics=[topic])
    assert 0 < cluster.restart_seconds[leader] < 120
    # Its log keeps how the stopped run ended, then the new run.
    log = cluster.log_tail(leader, lines=1_000_000)
    assert log.index("shut down completed") < log.rindex("started (kafka.server.KafkaRaftServer)")


def test_a_paused_broker_is_stopped_until_resumed(restores: KafkaCluster) -> None:
    cluster = restores
    pid = cluster.pid(2)
    assert pid is not None
    for _ in range(20):  # each call returns once the signal took effect, not before
        cluster.pause_broker(2)
        assert _state(pid) == "T"
        cluster.resume_broker(2)
        assert _state(pid) != "T"
    assert cluster.pid(2) == pid


def test_restore_brings_back_paused_and_killed_brokers(restores: KafkaCluster) -> None:
    cluster = restores
    topic = cluster.unique_topic("restore", partitions=1)
    cluster.pause_broker(1)
    cluster.kill_broker(3)
    cluster.restore()
    assert all(cluster.broker_running(b) for b in cluster.broker_ids)
    assert _state(cluster.pid(1) or 0) != "T"
    assert sorted(cluster.metadata().topics[topic].partitions[0].isrs) == [1, 2, 3]


def test_unknown_broker_ids_are_refused(kafka_cluster: KafkaCluster) -> None:
    with pytest.raises(ValueError, match=r"no broker 4; the brokers are \[1, 2, 3\]"):
        kafka_cluster.kill_broker(4)


def test_client_quotas_are_set_through_kafka_configs(kafka_broker: KafkaCluster) -> None:
    client_id = f"quota-{uuid.uuid4().hex[:8]}"
    kafka_broker.set_client_quota(client_id, producer_byte_rate=2048)
    done = kafka_broker.run_tool(
        "org.apache.kafka.tools.ConfigCommand",
        "--bootstrap-server",
        kafka_broker.bootstrap_servers,
        "--describe",
        "--entity-type",
        "clients",
        "--entity-name",
        client_id,
    )
    assert done.returncode == 0, done.stderr
    assert "producer_byte_rate=2048.0" in done.stdout


def test_a_tool_runs_with_the_jvm_flags_given(kafka_broker: KafkaCluster) -> None:
    def tiered_stop_level(*jvm_options: str) -> str:
        done = kafka_broker.run_tool(
            "org.apache.kafka.tools.ProducerPerformance",
            "--help",
            jvm_options=[*jvm_options, "-XX:+PrintFlagsFinal"],
        )
        [line] = [line for line in done.stdout.splitlines() if " TieredStopAtLevel " in line]
        return line.split("=")[1].split()[0]

    assert tiered_stop_level("-XX:TieredStopAtLevel=1") == "1"  # C1 only: the default's
    assert tiered_stop_level("-Xmx256m") == "4"  # C2 on, as for a measured run


# -- a cluster of our own --------------------------------------------------------------------


def test_server_properties_reach_the_broker_and_stop_removes_everything() -> None:
    cluster = KafkaCluster(
        brokers=1,
        partitions=2,
        server_properties={"auto.create.topics.enable": False, "message.max.bytes": 200_000},
    )
    with cluster:
        pid = cluster.pid(1)
        folder = cluster.data_dir
        assert pid is not None
        assert folder is not None
        [future] = (
            cluster._admin_client()
            .describe_configs([ConfigResource(ResourceType.BROKER, "1")])
            .values()
        )
        configs = future.result()
        assert configs["auto.create.topics.enable"].value == "false"
        assert configs["message.max.bytes"].value == "200000"
        assert configs["min.insync.replicas"].value == "1"  # fits one broker
        topic = cluster.create_topic("sized", config={"max.message.bytes": "1000"})
        assert len(cluster.metadata().topics[topic].partitions) == 2
        cluster.delete_topic(topic)
        assert topic not in cluster.metadata().topics
    assert not _alive(pid)
    assert not folder.exists()
    assert not cluster.running
    with pytest.raises(BrokerStartError, match="never started"):
        _ = cluster.bootstrap_servers


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="brokers must be >= 1"):
        KafkaCluster(brokers=0)
    with pytest.raises(ValueError, match=r"replication_factor must be in 1\.\.1"):
        KafkaCluster(brokers=1, replication_factor=3)
    with pytest.raises(ValueError, match=r"min_insync_replicas must be in 1\.\.3"):
        KafkaCluster(min_insync_replicas=4)
    with pytest.raises(ValueError, match=r"sets these properties itself: \['listeners'\]"):
        KafkaCluster(server_properties={"listeners": "PLAINTEXT://:9092"})
    with pytest.raises(ValueError, match=r"unknown broker ids: \[7\]"):
        KafkaCluster(broker_properties={7: {"message.max.bytes": 1}})


# -- what is missing -------------------------------------------------------------------------


@pytest.fixture
def forget_memo() -> Iterator[None]:
    reset_memo()
    yield
    reset_memo()


@pytest.mark.usefixtures("forget_memo")
def test_a_missing_java_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", os.fspath(tmp_path))
    with pytest.raises(KafkaUnavailableError, match=r"needs Java >= 17: no \$JAVA_HOME") as info:
        KafkaCluster(brokers=1).start()
    assert info.value.missing == "java"
    assert isinstance(info.value, RuntimeError)


@pytest.mark.usefixtures("forget_memo")
def test_an_old_java_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'java version \"1.8.0_392\"' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", os.fspath(tmp_path))
    with pytest.raises(KafkaUnavailableError, match=r"needs Java >= 17; .* '.*1\.8\.0_392\"'"):
        KafkaCluster(brokers=1).start()


@pytest.mark.usefixtures("forget_memo")
def test_a_missing_maven_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java is not None
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").symlink_to(java)
    monkeypatch.setenv("PATH", os.fspath(tmp_path / "bin"))  # Java, but no mvn
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("EVENTWIRE_KAFKA_CACHE", os.fspath(tmp_path / "cache"))
    with pytest.raises(KafkaUnavailableError, match=r"install Maven \(mvn on PATH\)") as info:
        KafkaCluster(brokers=1).start()
    assert info.value.missing == "maven"


@pytest.mark.usefixtures("forget_memo")
def test_an_unreachable_maven_central_quotes_mavens_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A Maven of its own: an empty local repository and a mirror on a closed local port.
    home = tmp_path / "home"
    (home / ".m2").mkdir(parents=True)
    (home / ".m2" / "settings.xml").write_text(
        "<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf>"
        "<url>http://127.0.0.1:9/maven2</url></mirror></mirrors></settings>"
    )
    monkeypatch.setenv("MAVEN_OPTS", f"-Duser.home={home}")
    monkeypatch.setenv("EVENTWIRE_KAFKA_CACHE", os.fspath(tmp_path / "cache"))
    with pytest.raises(KafkaUnavailableError, match=r"could not reach Maven Central") as info:
        KafkaCluster(brokers=1).start()
    assert info.value.missing == "network"
    assert "[ERROR]" in str(info.value)
    assert "127.0.0.1:9" in str(info.value)


def test_java_versions_are_read_from_both_formats() -> None:
    assert _java_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert _java_major('openjdk version "25" 2025-09-16') == 25
    assert _java_major('java version "1.8.0_392"') == 8
    assert _java_major("no version here") is None


def test_a_maven_error_that_is_not_about_the_network_is_mavens() -> None:
    error = _maven_error("[INFO] x\n[ERROR] The goal you specified requires a project\n")
    assert error.missing == "maven"
    assert "[ERROR] The goal you specified requires a project" in str(error)


# -- no JVM outlives the session -------------------------------------------------------------

_CHILD_TEST = """
import json, os, time
from pathlib import Path

def test_holds_a_cluster(kafka_broker):
    Path(os.environ["EVENTWIRE_CHILD_OUT"]).write_text(json.dumps(
        {"pid": kafka_broker.pid(1), "folder": str(kafka_broker.data_dir)}))
    if os.environ["EVENTWIRE_CHILD_MODE"] == "fail":
        raise AssertionError("this test fails on purpose")
    time.sleep(300)  # the parent interrupts or kills this run
"""


def _run_child(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    (tmp_path / "test_child.py").write_text(_CHILD_TEST)
    out = tmp_path / "child.json"
    env = {**os.environ, "EVENTWIRE_CHILD_OUT": os.fspath(out), "EVENTWIRE_CHILD_MODE": mode}
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_child.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, like pytest run from a terminal
    )
    deadline = time.monotonic() + 120
    while not out.exists() or not out.read_text():
        assert child.poll() is None or mode == "fail", f"child pytest ended (rc {child.poll()})"
        assert time.monotonic() < deadline, "the child's cluster did not start within 120 s"
        time.sleep(0.1)  # polling another process's file: nothing to await
    info = json.loads(out.read_text())
    return child, int(info["pid"]), Path(info["folder"])


def _assert_gone(pid: int, folder: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while _alive(pid) or folder.exists():
        assert time.monotonic() < deadline, (
            f"JVM {pid} alive={_alive(pid)}, folder exists={folder.exists()} after {within:g} s"
        )
        time.sleep(0.1)  # polling for another process's end: nothing to await


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "signum"),
    [("fail", None), ("hold", signal.SIGINT), ("hold", signal.SIGKILL)],
    ids=["failing-test", "ctrl-c", "pytest-sigkilled"],
)
def test_no_jvm_outlives_the_pytest_run(
    tmp_path: Path, mode: str, signum: signal.Signals | None
) -> None:
    child, pid, folder = _run_child(tmp_path, mode)
    try:
        if signum is not None:
            assert _alive(pid)
            os.killpg(child.pid, signum)  # Ctrl-C reaches the terminal's whole process group
        rc = child.wait(60)
        assert rc == {None: 1, signal.SIGINT: 2, signal.SIGKILL: -9}[signum]
        _assert_gone(pid, folder, within=15)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


_FETCH = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from eventwire.testing._kafka_jars import kafka_classpath
print("CLASSPATH", kafka_classpath())
"""


def test_two_processes_fetching_at_once_run_maven_once(tmp_path: Path) -> None:
    env = {**os.environ, "EVENTWIRE_KAFKA_CACHE": os.fspath(tmp_path / "cache")}
    children = [
        subprocess.Popen(  # noqa: S603 - our interpreter and script
            [sys.executable, "-c", _FETCH], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    classpaths = {
        line for output in outputs for line in output.splitlines() if line.startswith("CLASSPATH")
    }
    assert len(classpaths) == 1  # the same jars for both
    maven_runs = sum(output.count("classpath ready in") for output in outputs)
    assert maven_runs == 1  # the second waited for the first and read its result
    assert (tmp_path / "cache" / "classpath.txt").read_text().strip() in classpaths.pop()
