"""SASL_SSL with SCRAM against Apache Kafka with ACLs (StandardAuthorizer): round trips, and
each refusal (credentials, TLS, ACLs) as a typed error that says what to check, at once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

import eventwire
from eventwire.security import TLS, SaslScram, Secret
from eventwire.testing import KafkaCluster, capture_logs
from tests.security.conftest import (
    ROUND_TRIP,
    assert_round_trip,
    module_cluster,
    orders,
    publish_async,
    refusal,
    run,
    run_cli,
    scan_publishing,
)

#: A refusal comes within a probe or two, never after delivery_timeout (minutes).
PROMPT = 15.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[KafkaCluster]:
    with module_cluster("SASL_SSL", authorizer=True) as cluster:
        yield cluster


@pytest.fixture
def topic(cluster: KafkaCluster) -> str:
    name = cluster.unique_topic("orders")
    cluster.allow("client", ["WRITE", "DESCRIBE", "READ"], topic=name)
    return name


def config(cluster: KafkaCluster, topic: str, **changes: object) -> eventwire.PublisherConfig:
    settings: dict[str, object] = {**cluster.client_config(), "topic_map": {"orders": topic}}
    settings.update(changes)
    return eventwire.PublisherConfig(**settings)  # type: ignore[arg-type]


def scram(cluster: KafkaCluster, user: str = "client", **changes: object) -> SaslScram:
    fields: dict[str, object] = {
        "username": user,
        "password": Secret(cluster.users.get(user, "not-a-user-password")),
        "tls": TLS(ca_location=str(cluster.ca_location)),
    }
    fields.update(changes)
    return SaslScram(**fields)  # type: ignore[arg-type]


# -- round trips ---------------------------------------------------------------------------------


def test_10000_events_round_trip_with_scram_sha_512(cluster: KafkaCluster, topic: str) -> None:
    outcomes = run(publish_async(config(cluster, topic), orders(ROUND_TRIP)))
    assert_round_trip(cluster, topic, outcomes)


def test_10000_events_round_trip_with_scram_sha_256(cluster: KafkaCluster, topic: str) -> None:
    security = scram(cluster, mechanism="SCRAM-SHA-256")
    with eventwire.Publisher(config(cluster, topic, security=security)) as publisher:
        outcomes = publisher.publish_many(orders(ROUND_TRIP))
    assert_round_trip(cluster, topic, outcomes)


# -- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "password"), [("client", "not-the-password"), ("ghost", "any-password")]
)
def test_refused_credentials_are_an_authentication_error_at_once(
    cluster: KafkaCluster, topic: str, user: str, password: str
) -> None:
    security = scram(cluster, user, password=Secret(password))
    refused = refusal(config(cluster, topic, security=security))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error) == (
        f"event {error.event_id} (order.placed) to topic {topic!r} was not sent: the cluster at"
        f" {cluster.bootstrap_servers} refuses this client, authentication failed: the cluster"
        f" refused the credentials of user {user!r} (SASL authentication error: Authentication"
        " failed during authentication due to invalid credentials with SASL mechanism"
        " SCRAM-SHA-512); check the username and password (SCRAM: that the user has"
        " SCRAM-SHA-512 credentials)"
    )
    assert refused.seconds < PROMPT
    assert error.attempts == 1  # not retried
    # The next event is refused by the open breaker, worded the same, without waiting.
    assert isinstance(refused.next_error, eventwire.AuthenticationError)
    assert "authentication failed: the cluster refused the credentials" in str(refused.next_error)
    assert refused.next_seconds < 1.0
    assert refused.health.reasons[0].startswith(
        f"authentication failed: the cluster refused the credentials of user {user!r}"
    )
    assert not any("unreachable" in reason for reason in refused.health.reasons)
    assert password not in repr(refused.health) + str(error)


# -- TLS -----------------------------------------------------------------------------------------


def test_a_hostname_the_certificate_does_not_name_is_refused(
    cluster: KafkaCluster, topic: str
) -> None:
    # The brokers' certificate names 127.0.0.1 only.
    localhost = cluster.bootstrap_servers.replace("127.0.0.1", "localhost")
    refused = refusal(config(cluster, topic, bootstrap_servers=localhost))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    port = localhost.rpartition(":")[2]
    assert str(error).endswith(
        f"authentication failed: the certificate of the broker at localhost:{port} is not valid"
        " for the host 'localhost' (hostname verification); check that bootstrap_servers names"
        " the brokers as their certificates do (or the certificates' subject alternative"
        " names); TLS(verify_hostname=False) only for a cluster whose certificates cannot name"
        " their hosts"
    )
    assert refused.seconds < PROMPT


def test_hostname_verification_is_off_only_when_asked(cluster: KafkaCluster, topic: str) -> None:
    localhost = cluster.bootstrap_servers.replace("127.0.0.1", "localhost")
    security = scram(cluster, tls=TLS(ca_location=str(cluster.ca_location), verify_hostname=False))
    with eventwire.Publisher(
        config(cluster, topic, bootstrap_servers=localhost, security=security)
    ) as publisher:
        receipt = publisher.publish(orders(1)[0])
    assert receipt.topic == topic


def test_a_ca_bundle_without_the_brokers_ca_is_refused(cluster: KafkaCluster, topic: str) -> None:
    wrong = str(cluster.untrusted_ca_location)
    refused = refusal(config(cluster, topic, security=scram(cluster, tls=TLS(ca_location=wrong))))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        f"authentication failed: the certificate of the broker at {cluster.bootstrap_servers}"
        f" is not signed by a CA in the CA bundle {wrong!r} (self-signed certificate in"
        " certificate chain); check the CA bundle: it must hold the CA that issued the brokers'"
        " certificates"
    )
    assert refused.seconds < PROMPT


def test_a_plaintext_client_at_the_tls_listener_is_told_it_speaks_tls(
    cluster: KafkaCluster, topic: str
) -> None:
    refused = refusal(config(cluster, topic, security=scram(cluster, tls=None)))
    error = refused.error
    assert isinstance(error, eventwire.AuthenticationError)
    assert str(error).endswith(
        f"authentication failed: the listener at {cluster.bootstrap_servers} speaks TLS but this"
        " client connects without it; check security_protocol: SSL (or SASL_SSL) for this"
        " listener, e.g. security=TLS() or a SASL variant with its default tls=TLS()"
    )
    assert refused.seconds < PROMPT


# -- ACLs ----------------------------------------------------------------------------------------


def test_a_missing_write_acl_is_an_authorization_error_not_retried(
    cluster: KafkaCluster, topic: str
) -> None:
    # WRITE on another topic: the producer id is granted (KIP-679), this topic is not.
    cluster.add_user("elsewhere")
    cluster.allow("elsewhere", ["WRITE", "DESCRIBE"], topic=cluster.unique_topic("other"))
    refused = refusal(config(cluster, topic, **cluster.client_config("elsewhere")))
    error = refused.error
    assert isinstance(error, eventwire.AuthorizationError)
    assert (error.code, error.attempts) == ("TOPIC_AUTHORIZATION_FAILED", 1)
    assert str(error) == (
        f"event {error.event_id} to topic {topic!r} failed (permanent,"
        " TOPIC_AUTHORIZATION_FAILED): Broker: Topic authorization failed after 1 attempt (the"
        f" cluster does not let this client write to topic {topic!r}: grant its principal WRITE"
        " (and DESCRIBE) on the topic, e.g. kafka-acls --add --allow-principal User:NAME"
        f" --operation Write --operation Describe --topic {topic})"
    )
    assert refused.seconds < PROMPT
    # The cluster answers: one topic is refused, the client is not (other topics carry on).
    assert not any("unreachable" in reason for reason in refused.health.reasons)


def test_a_missing_idempotent_write_is_an_authorization_error_and_recovers_once_granted(
    cluster: KafkaCluster, topic: str
) -> None:
    # DESCRIBE only: no IdempotentWrite and no WRITE anywhere, so no producer id.
    cluster.add_user("describer")
    cluster.allow("describer", ["DESCRIBE"], topic=topic)
    settings = config(cluster, topic, **cluster.client_config("describer"))
    with capture_logs() as logs, eventwire.Publisher(settings) as publisher:
        with pytest.raises(eventwire.AuthorizationError) as raised:
            publisher.publish(orders(1)[0])
        error = raised.value
        assert (error.code, error.attempts) == ("CLUSTER_AUTHORIZATION_FAILED", 1)  # no retry
        assert str(error) == (
            f"event {error.event_id} (order.placed) to topic {topic!r} was not sent: the cluster"
            f" at {cluster.bootstrap_servers} refuses this client, not authorized: the cluster"
            " refuses this client an idempotent producer id (CLUSTER_AUTHORIZATION_FAILED);"
            " check that its principal has the IdempotentWrite ACL on the cluster, or WRITE on"
            " the topics it publishes to (either is enough since Kafka 3.0)"
        )
        health = publisher.health()
        assert health.reasons[0].startswith("not authorized: the cluster refuses this client")
        assert not any("unreachable" in reason for reason in health.reasons)
        # Granted: the producer is replaced (after a pause) and publishing goes on.
        cluster.allow("describer", ["WRITE"], topic=topic)
        receipt = _publish_until_delivered(publisher, within=30.0)
        assert receipt.topic == topic
        assert not any("not authorized" in reason for reason in publisher.health().reasons)
    # Replaced after a pause, not at once: a new producer would be refused the same.
    recreated = [entry for entry in logs if entry["event"] == "eventwire.producer_recreated"]
    assert 1 <= len(recreated) <= 2


def _publish_until_delivered(
    publisher: eventwire.Publisher, within: float
) -> eventwire.DeliveryReceipt:
    deadline = time.monotonic() + within
    while True:
        try:
            return publisher.publish(orders(1)[0])
        except eventwire.AuthorizationError:
            assert time.monotonic() < deadline, "still refused after the ACL was granted"
            time.sleep(0.5)


# -- secrets -------------------------------------------------------------------------------------


def test_no_secret_shows_in_any_signal_whether_credentials_are_taken_or_refused(
    cluster: KafkaCluster, topic: str
) -> None:
    password = cluster.users["client"]
    taken = scan_publishing(config(cluster, topic), password)
    assert isinstance(taken[0], eventwire.DeliveryReceipt)
    wrong = "Wr0ng-pa55word-4242"
    refused = scan_publishing(
        config(cluster, topic, security=scram(cluster, password=Secret(wrong))), wrong
    )
    assert isinstance(refused[0], eventwire.AuthenticationError)


# -- the command line ----------------------------------------------------------------------------


def _orders_file(folder: Path, count: int) -> Path:
    path = folder / "orders.jsonl"
    path.write_bytes(b"".join(msgspec.json.encode(event) + b"\n" for event in orders(count)))
    return path


def _librdkafka_properties(cluster: KafkaCluster, password: str) -> str:
    """The form Confluent Cloud hands out for librdkafka clients."""
    return (
        "# Required connection configs for Kafka producer, consumer, and admin\n"
        f"bootstrap.servers={cluster.bootstrap_servers}\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanisms=SCRAM-SHA-512\n"
        "sasl.username=client\n"
        f"sasl.password={password}\n"
        f"ssl.ca.location={cluster.ca_location}\n"
        "# Best practice for higher availability in librdkafka clients prior to 1.7\n"
        "session.timeout.ms=45000\n"
    )


def _java_properties(cluster: KafkaCluster, password: str) -> str:
    """The form a Java client (kafka-console-producer --producer.config) reads."""
    return (
        f"bootstrap.servers={cluster.bootstrap_servers}\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"
        f"    username='client' password='{password}';\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={cluster.ca_location}\n"
        "# Best practice for Kafka producer to prevent data loss\n"
        "acks=all\n"
        "schema.registry.url=https://psrc-00000.region.aws.confluent.cloud\n"
        "basic.auth.credentials.source=USER_INFO\n"
    )


@pytest.mark.parametrize("form", ["librdkafka", "java"])
def test_eventwire_produce_publishes_a_file_with_a_client_properties_file(
    cluster: KafkaCluster, topic: str, tmp_path: Path, form: str
) -> None:
    password = cluster.users["client"]
    write = _librdkafka_properties if form == "librdkafka" else _java_properties
    properties = tmp_path / "client.properties"
    properties.write_text(write(cluster, password))
    data = _orders_file(tmp_path, 2_000)
    done = run_cli(
        "produce",
        "--event",
        "tests.events:OrderPlaced",
        "--file",
        str(data),
        "--topic",
        topic,
        "--config",
        str(properties),
        "--no-progress",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["published"], summary["failed"], summary["rejected"]) == (2_000, 0, 0)
    back = cluster.consume(topic, count=2_000, as_user="client")
    assert sorted(msgspec.json.decode(r.value)["order_id"] for r in back) == sorted(
        e.order_id for e in orders(2_000)
    )
    assert password not in done.stdout + done.stderr


def test_eventwire_relay_publishes_the_outbox_with_a_client_properties_file(
    cluster: KafkaCluster, topic: str, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine

    from eventwire import outbox

    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = create_engine(url)
    unused = eventwire.PublisherConfig(bootstrap_servers="unused:9092", topic_map={"orders": topic})
    try:
        outbox.create_tables(engine)
        with engine.begin() as conn:
            outbox.add_many(conn, orders(300), config=unused)
    finally:
        engine.dispose()
    password = cluster.users["client"]
    properties = tmp_path / "client.properties"
    properties.write_text(_librdkafka_properties(cluster, password))
    done = run_cli(
        "relay", "--once", "--database-url", url, "--config", str(properties), "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "relay stopped: 300 published, 0 left in the table"
    back = cluster.consume(topic, count=300, as_user="client")
    assert sorted(msgspec.json.decode(r.value)["order_id"] for r in back) == sorted(
        e.order_id for e in orders(300)
    )
    assert password not in done.stdout + done.stderr


def test_eventwire_produce_takes_the_environment_over_the_file(
    cluster: KafkaCluster, topic: str, tmp_path: Path
) -> None:
    properties = tmp_path / "client.properties"
    properties.write_text(_librdkafka_properties(cluster, "stale-password-in-the-file"))
    password = cluster.users["client"]
    done = run_cli(
        "produce",
        "--event",
        "tests.events:OrderPlaced",
        "--file",
        str(_orders_file(tmp_path, 10)),
        "--topic",
        topic,
        "--config",
        str(properties),
        "--no-progress",
        "--json",
        env={"EVENTWIRE_SASL_PASSWORD": password},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["published"] == 10
    assert password not in done.stdout + done.stderr


def test_eventwire_produce_says_in_one_line_why_the_cluster_refuses_it(
    cluster: KafkaCluster, topic: str, tmp_path: Path
) -> None:
    wrong = "Wr0ng-cli-pa55word"
    properties = tmp_path / "client.properties"
    properties.write_text(_librdkafka_properties(cluster, wrong))
    done = run_cli(
        "produce",
        "--event",
        "tests.events:OrderPlaced",
        "--file",
        str(_orders_file(tmp_path, 10)),
        "--topic",
        topic,
        "--config",
        str(properties),
        "--no-progress",
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"eventwire: error: cannot connect to Kafka at {cluster.bootstrap_servers}:"
        " authentication failed: the cluster refused the credentials of user 'client' (SASL"
        " authentication error: Authentication failed during authentication due to invalid"
        " credentials with SASL mechanism SCRAM-SHA-512); check the username and password"
        " (SCRAM: that the user has SCRAM-SHA-512 credentials)"
    ]
    assert wrong not in done.stdout + done.stderr
