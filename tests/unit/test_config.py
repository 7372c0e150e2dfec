"""PublisherConfig: preset rendering, refusal of unsafe settings, secrets never shown."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import pytest
from confluent_kafka import Producer

from eventwire import ConfigError, PublisherConfig

SERVERS = "127.0.0.1:1"
PASSWORD = "hunter2-very-secret"  # noqa: S105 - a fake secret the tests hunt for
OAUTH_SECRET = "s3cr3t-value"  # noqa: S105 - a fake secret the tests hunt for
PRESETS = ("durable", "throughput", "low_latency")


RULE = "(a topic name has 1 to 249 characters from [a-zA-Z0-9._-] and is not '.' or '..')"


def make(**changes: Any) -> PublisherConfig:
    settings: dict[str, Any] = {"bootstrap_servers": SERVERS}
    settings.update(changes)
    return PublisherConfig(**settings)


def refused(message: str, **changes: Any) -> None:
    """Building a config with ``changes`` raises ConfigError with exactly ``message``."""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        make(**changes)


def secret_config(**changes: Any) -> PublisherConfig:
    settings: dict[str, Any] = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "svc-orders",
        "sasl_password": PASSWORD,
        "librdkafka_overrides": {"sasl.oauthbearer.client.secret": OAUTH_SECRET},
    }
    settings.update(changes)
    return make(**settings)


def assert_no_secret(text: str) -> None:
    assert PASSWORD not in text
    assert OAUTH_SECRET not in text


# -- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_keeps_the_guarantees(preset: str) -> None:
    settings = make(preset=preset)._to_librdkafka()
    assert settings["bootstrap.servers"] == SERVERS
    assert settings["client.id"] == "eventwire"
    assert settings["acks"] == "all"
    assert settings["enable.idempotence"] is True
    assert settings["max.in.flight.requests.per.connection"] == 5
    assert settings["partitioner"] == "murmur2_random"
    # librdkafka's timeout is a backstop behind the core's own deadline (delivery_timeout):
    # 10 % later, at least 1 s.
    assert settings["message.timeout.ms"] == (6_000 if preset == "low_latency" else 132_000)
    assert settings["security.protocol"] == "PLAINTEXT"
    assert not any(key.startswith(("sasl.", "ssl.")) for key in settings)


def test_default_preset_is_durable() -> None:
    config = make()
    assert config.preset == "durable"
    assert config._to_librdkafka() == make(preset="durable")._to_librdkafka()


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        (
            "durable",
            {
                "linger.ms": 5,
                "compression.type": "none",
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 100_000,
                "queue.buffering.max.kbytes": 1_048_576,
            },
        ),
        (
            "throughput",
            {
                "linger.ms": 20,
                "compression.type": "lz4",
                "batch.size": 1_000_000,
                "batch.num.messages": 100_000,
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 2_097_152,
            },
        ),
        (
            "low_latency",
            {
                "linger.ms": 0,
                "compression.type": "none",
                "batch.num.messages": 1_000,
                "socket.nagle.disable": True,
                "queue.buffering.max.messages": 100_000,
            },
        ),
    ],
)
def test_preset_values(preset: str, expected: Mapping[str, object]) -> None:
    settings = make(preset=preset)._to_librdkafka()
    assert {key: settings[key] for key in expected} == expected
    fixed = {
        "bootstrap.servers",
        "client.id",
        "acks",
        "enable.idempotence",
        "max.in.flight.requests.per.connection",
        "partitioner",
        "message.timeout.ms",
        "security.protocol",
    }
    assert set(settings) == fixed | set(expected)


def test_fields_override_the_preset_and_overrides_come_last() -> None:
    config = make(
        preset="throughput",
        client_id="orders-api",
        delivery_timeout=2.5,
        linger_ms=7.5,
        compression="zstd",
        librdkafka_overrides={"batch.num.messages": 500, "acks": "-1", "statistics.interval.ms": 0},
    )
    settings = config._to_librdkafka()
    assert settings["client.id"] == "orders-api"
    assert settings["message.timeout.ms"] == 3_500  # 2.5 s and the backstop's 1 s
    assert settings["linger.ms"] == 7.5
    assert settings["compression.type"] == "zstd"
    assert settings["batch.num.messages"] == 500
    assert settings["acks"] == "-1"
    assert settings["statistics.interval.ms"] == 0
    assert settings["queue.buffering.max.kbytes"] == 2_097_152


def test_security_settings_are_rendered() -> None:
    config = make(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="svc",
        sasl_password=PASSWORD,
        ssl_ca_location="/etc/ssl/ca.pem",
    )
    settings = config._to_librdkafka()
    assert settings["security.protocol"] == "SASL_SSL"
    assert settings["sasl.mechanism"] == "PLAIN"
    assert settings["sasl.username"] == "svc"
    assert settings["sasl.password"] == PASSWORD
    assert settings["ssl.ca.location"] == "/etc/ssl/ca.pem"


def test_to_librdkafka_returns_a_new_dict() -> None:
    config = make()
    first = config._to_librdkafka()
    first["acks"] = "1"
    assert config._to_librdkafka()["acks"] == "all"


def test_oauthbearer_and_gssapi_need_no_username_or_password() -> None:
    for mechanism in ("OAUTHBEARER", "GSSAPI"):
        settings = make(security_protocol="SASL_SSL", sasl_mechanism=mechanism)._to_librdkafka()
        assert settings["sasl.mechanism"] == mechanism
        assert "sasl.password" not in settings


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"linger_ms": 2.5, "compression": "zstd"},
        {"compression": "snappy", "delivery_timeout": 0.5},
        {"compression": "gzip", "librdkafka_overrides": {"enable.idempotence": "true"}},
        {"librdkafka_overrides": {"max.in.flight": 1, "retries": 3, "partitioner": "murmur2"}},
    ],
)
def test_librdkafka_accepts_the_rendered_settings(preset: str, changes: dict[str, Any]) -> None:
    producer = Producer(make(preset=preset, **changes)._to_librdkafka())
    producer.flush(0)
    del producer


# -- topics, source ---------------------------------------------------------------------------


def test_resolve_topic_with_prefix_and_map() -> None:
    config = make(topic_prefix="staging.", topic_map={"orders": "orders-v2"})
    assert config._resolve_topic("orders") == "staging.orders-v2"
    assert config._resolve_topic("payments") == "staging.payments"
    assert make()._resolve_topic("orders") == "orders"


@pytest.mark.parametrize("scheme", ["kafka", "http", "https", "tcp", ""])
def test_an_unknown_bootstrap_scheme_is_refused(scheme: str) -> None:
    # librdkafka logs a parse error for it and never connects: every publish then failed as
    # "unreachable", with the cause only in a librdkafka log line.
    entry = f"{scheme}://127.0.0.1:9092"
    refused(
        f"bootstrap_servers entry {entry!r} has scheme {scheme + '://'!r}, which Kafka clients"
        " do not know: give 'host:port', or prefix it with the security protocol (PLAINTEXT://,"
        " SSL://, SASL_PLAINTEXT://, SASL_SSL://)",
        bootstrap_servers=f"a:1,{entry}",
    )


def test_a_bootstrap_scheme_naming_the_security_protocol_is_accepted() -> None:
    for servers in ("PLAINTEXT://127.0.0.1:9092", "plaintext://a:1,b:2", "[::1]:9092"):
        assert make(bootstrap_servers=servers)._to_librdkafka()["bootstrap.servers"] == servers
    sasl = secret_config(bootstrap_servers="SASL_SSL://kafka-1:9093,kafka-2:9093")
    assert sasl._to_librdkafka()["bootstrap.servers"] == "SASL_SSL://kafka-1:9093,kafka-2:9093"
    refused(
        "bootstrap_servers entry 'SSL://127.0.0.1:9093' says SSL:// but security_protocol is"
        " 'PLAINTEXT'; they must agree (drop the prefix, or set security_protocol='SSL')",
        bootstrap_servers="SSL://127.0.0.1:9093",
    )


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        (".", f"'.' is reserved {RULE}"),
        ("..", f"'..' is reserved {RULE}"),
        ("", f"it is empty {RULE}"),
        ("t" * 250, f"it has 250 characters {RULE}"),
        ("a b/c", f"' ', '/' are not allowed {RULE}"),
        ("caf\u00e9", f"'\u00e9' is not allowed {RULE}"),
    ],
)
def test_a_per_call_topic_follows_kafkas_rules(topic: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused_topic:
        make()._resolve_topic(topic)
    assert str(refused_topic.value) == f"topic {topic!r} is not a legal Kafka topic name: {problem}"
    assert make()._resolve_topic("t" * 249) == "t" * 249


def test_resolve_topic_refuses_an_illegal_result() -> None:
    config = make(topic_prefix="p" * 240)
    with pytest.raises(
        ConfigError,
        match=re.escape(
            f"topic 'long-topic' resolves to {'p' * 240 + 'long-topic'!r} (topic_prefix + "
            "topic_map), which is not a legal Kafka topic name"
        ),
    ):
        config._resolve_topic("long-topic")
    with pytest.raises(ConfigError, match=r"^topic 'bad name' is not a legal Kafka topic name"):
        make()._resolve_topic("bad name")


def test_topic_map_is_an_immutable_copy() -> None:
    source = {"orders": "orders-v2"}
    config = make(topic_map=source)
    source["orders"] = "changed"
    assert config._resolve_topic("orders") == "orders-v2"
    with pytest.raises(TypeError):
        config.topic_map["orders"] = "x"  # type: ignore[index]


def test_overrides_are_an_immutable_copy() -> None:
    source: dict[str, str | int | float | bool] = {"batch.num.messages": 5}
    config = make(librdkafka_overrides=source)
    source["batch.num.messages"] = 6
    assert config._to_librdkafka()["batch.num.messages"] == 5
    with pytest.raises(TypeError):
        config.librdkafka_overrides["acks"] = "0"  # type: ignore[index]


def test_ce_source() -> None:
    assert make().ce_source == "/eventwire/eventwire"
    assert make(client_id="orders-api").ce_source == "/eventwire/orders-api"
    assert make(source="/shop/orders").ce_source == "/shop/orders"


# -- dataclass shape --------------------------------------------------------------------------


def test_frozen() -> None:
    config = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.preset = "throughput"  # type: ignore[misc]


def test_keyword_only() -> None:
    with pytest.raises(TypeError):
        PublisherConfig(SERVERS)  # type: ignore[call-arg]


def test_slotted() -> None:
    assert not hasattr(make(), "__dict__")


def test_with_overrides_replaces_and_revalidates() -> None:
    config = make()
    changed = config.with_overrides(preset="low_latency", client_id="x")
    assert (changed.preset, changed.client_id, config.preset) == ("low_latency", "x", "durable")
    with pytest.raises(ConfigError, match=r"^queue_full_timeout must be a finite number"):
        config.with_overrides(queue_full_timeout=0)
    with pytest.raises(ConfigError, match=r"^PublisherConfig has no field lingr_ms; fields are "):
        config.with_overrides(lingr_ms=3)


def test_equal_configs_compare_equal() -> None:
    assert make(topic_map={"a": "b"}) == make(topic_map={"a": "b"})
    assert make() != make(preset="throughput")


# -- refusals: fields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"bootstrap_servers": ""},
            "bootstrap_servers must not be empty; give 'host:port[,host:port]'",
        ),
        ({"bootstrap_servers": 9092}, "bootstrap_servers must be a str, got int"),
        (
            {"bootstrap_servers": "a:1,localhost"},
            "bootstrap_servers entry 'localhost' is not 'host:port' (in 'a:1,localhost')",
        ),
        (
            {"bootstrap_servers": "a:70000"},
            "bootstrap_servers entry 'a:70000' has port 70000, outside 1..65535",
        ),
        (
            {"preset": "fast"},
            "preset must be one of 'durable', 'throughput', 'low_latency', got 'fast'",
        ),
        ({"client_id": ""}, "client_id must be a non-empty str without whitespace, got ''"),
        (
            {"client_id": "my app"},
            "client_id must be a non-empty str without whitespace, got 'my app'",
        ),
        (
            {"source": ""},
            "source must be a non-empty str (a CloudEvents URI-reference) or None, got ''",
        ),
        ({"encoding": "avro"}, "encoding must be one of 'json', 'msgpack', got 'avro'"),
        ({"validate": "no"}, "validate must be a bool, got str"),
        (
            {"topic_prefix": "bad prefix"},
            f"topic_prefix 'bad prefix' is not legal in a Kafka topic name: ' ' is not allowed "
            f"{RULE}",
        ),
        (
            {"topic_prefix": "p" * 250},
            f"topic_prefix {'p' * 250!r} is not legal in a Kafka topic name: it has 250 "
            f"characters, leaving no room for a name {RULE}",
        ),
        (
            {"topic_map": {"orders": "orders/v2"}},
            "topic_map['orders'] resolves to 'orders/v2' (topic_prefix + mapped name), which is "
            f"not a legal Kafka topic name: '/' is not allowed {RULE}",
        ),
        (
            {"topic_prefix": "p" * 200, "topic_map": {"orders": "o" * 50}},
            f"topic_map['orders'] resolves to {'p' * 200 + 'o' * 50!r} (topic_prefix + mapped "
            f"name), which is not a legal Kafka topic name: it has 250 characters {RULE}",
        ),
        (
            {"topic_map": {"orders": ".."}},
            "topic_map['orders'] resolves to '..' (topic_prefix + mapped name), which is "
            f"not a legal Kafka topic name: '..' is reserved {RULE}",
        ),
        (
            {"topic_map": {"orders": ""}},
            "topic_map['orders'] must be a non-empty str, got ''",
        ),
        (
            {"topic_map": {"my orders": "orders"}},
            "topic_map key 'my orders' is not a legal Kafka topic name, so no event could use "
            f"it: ' ' is not allowed {RULE}",
        ),
        (
            {"topic_map": [("a", "b")]},
            "topic_map must be a mapping of str to str, got list",
        ),
        (
            {"queue_full_timeout": 0},
            "queue_full_timeout must be a finite number of seconds greater than 0, got 0",
        ),
        (
            {"queue_full_timeout": float("inf")},
            "queue_full_timeout must be a finite number of seconds greater than 0, got inf",
        ),
        (
            {"delivery_timeout": -1.0},
            "delivery_timeout must be a finite number of seconds greater than 0, got -1.0",
        ),
        (
            {"delivery_timeout": True},
            "delivery_timeout must be a finite number of seconds greater than 0, got True",
        ),
        (
            {"delivery_timeout": 0.0001},
            "delivery_timeout must be from 0.001 to 2.14748e+06 seconds "
            "(librdkafka message.timeout.ms), got 0.0001",
        ),
        (
            {"delivery_timeout": 0.02, "preset": "throughput"},
            "delivery_timeout (0.02 s) must be greater than the linger time "
            "(20 ms, from preset 'throughput')",
        ),
        (
            {"delivery_timeout": 0.5, "linger_ms": 500},
            "delivery_timeout (0.5 s) must be greater than the linger time "
            "(500 ms, from linger_ms)",
        ),
        (
            {"linger_ms": -1},
            "linger_ms must be a number of milliseconds from 0 to 900000, got -1",
        ),
        (
            {"linger_ms": 900_001},
            "linger_ms must be a number of milliseconds from 0 to 900000, got 900001",
        ),
        (
            {"compression": "brotli"},
            "compression must be one of 'none', 'gzip', 'snappy', 'lz4', 'zstd' or None, "
            "got 'brotli'",
        ),
    ],
)
def test_field_refusals(changes: dict[str, Any], message: str) -> None:
    refused(message, **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"security_protocol": "TLS"},
            "security_protocol must be one of 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL', "
            "got 'TLS'",
        ),
        (
            {"security_protocol": "SASL_SSL"},
            "security_protocol 'SASL_SSL' needs sasl_mechanism "
            "(one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER)",
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "scram"},
            "sasl_mechanism must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, "
            "OAUTHBEARER, got 'scram'",
        ),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_password": "pw"},
            "sasl_mechanism 'PLAIN' (security_protocol 'SASL_SSL') needs sasl_username",
        ),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_username": "svc",
            },
            "sasl_mechanism 'SCRAM-SHA-256' (security_protocol 'SASL_SSL') needs sasl_password",
        ),
        (
            {"sasl_password": "pw"},
            "sasl_password is set but security_protocol is 'PLAINTEXT', which does not use "
            "SASL; use 'SASL_SSL' (or 'SASL_PLAINTEXT')",
        ),
        (
            {"security_protocol": "SSL", "sasl_mechanism": "PLAIN"},
            "sasl_mechanism is set but security_protocol is 'SSL', which does not use "
            "SASL; use 'SASL_SSL' (or 'SASL_PLAINTEXT')",
        ),
        (
            {"sasl_username": "svc"},
            "sasl_username is set but security_protocol is 'PLAINTEXT', which does not use "
            "SASL; use 'SASL_SSL' (or 'SASL_PLAINTEXT')",
        ),
        (
            {"sasl_username": ""},
            "sasl_username must be a non-empty str or None, got ''",
        ),
        (
            {
                "ssl_ca_location": "/ca.pem",
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "OAUTHBEARER",
            },
            "ssl_ca_location is set but security_protocol is 'SASL_PLAINTEXT', which does not "
            "use TLS; use 'SSL' or 'SASL_SSL'",
        ),
    ],
)
def test_security_refusals(changes: dict[str, Any], message: str) -> None:
    refused(message, **changes)


# -- refusals: librdkafka overrides -----------------------------------------------------------

OWNED = [
    ("bootstrap.servers", "use the bootstrap_servers field"),
    ("client.id", "use the client_id field"),
    ("on_delivery", "eventwire handles every delivery report; publish() returns the outcome"),
    ("dr_cb", "eventwire handles every delivery report; publish() returns the outcome"),
    ("dr_msg_cb", "eventwire handles every delivery report; publish() returns the outcome"),
    (
        "delivery.report.only.error",
        "eventwire needs every delivery report to resolve publish() calls",
    ),
    ("error_cb", "eventwire consumes client errors (circuit breaker, health, logs)"),
    ("stats_cb", "eventwire consumes librdkafka statistics (metrics)"),
    ("throttle_cb", "eventwire consumes throttle events (metrics)"),
    ("logger", "eventwire routes librdkafka logs itself"),
    ("transactional.id", "use the transactional_id field"),
    ("transaction.timeout.ms", "use the transaction_timeout field (seconds)"),
    ("message.timeout.ms", "use the delivery_timeout field (seconds)"),
    ("delivery.timeout.ms", "use the delivery_timeout field (seconds)"),
    ("linger.ms", "use the linger_ms field"),
    ("queue.buffering.max.ms", "use the linger_ms field"),
    ("compression.type", "use the compression field"),
    ("compression.codec", "use the compression field"),
    ("security.protocol", "use the security_protocol field"),
    ("sasl.mechanism", "use the sasl_mechanism field"),
    ("sasl.mechanisms", "use the sasl_mechanism field"),
    ("sasl.username", "use the sasl_username field"),
    ("sasl.password", "use the sasl_password field"),
    ("ssl.ca.location", "use the ssl_ca_location field"),
    ("Client.ID", "use the client_id field"),
]


@pytest.mark.parametrize(("key", "hint"), OWNED)
def test_owned_keys_are_refused(key: str, hint: str) -> None:
    refused(
        f"librdkafka_overrides[{key!r}] is refused: eventwire sets it; {hint}",
        librdkafka_overrides={key: "x"},
    )


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("topic.message.timeout.ms", "use the delivery_timeout field (seconds)"),
        ("topic.delivery.timeout.ms", "use the delivery_timeout field (seconds)"),
        ("topic.compression.type", "use the compression field"),
        ("Topic.Compression.Codec", "use the compression field"),
        ("default.topic.config", "give topic-level librdkafka settings as plain keys"),
    ],
)
def test_owned_keys_are_refused_under_their_topic_level_names(key: str, hint: str) -> None:
    refused(
        f"librdkafka_overrides[{key!r}] is refused: eventwire sets it; {hint}",
        librdkafka_overrides={key: "x"},
    )


def test_global_topic_metadata_settings_are_accepted() -> None:
    overrides = {"topic.metadata.refresh.interval.ms": 1000, "topic.partitioner": "murmur2"}
    settings = make(librdkafka_overrides=overrides)._to_librdkafka()
    assert {key: settings[key] for key in overrides} == overrides


def _where(key: str) -> str:
    return f"librdkafka_overrides[{key!r}]"


UNSAFE = [
    *[
        (
            key,
            value,
            f"{_where(key)} = {value!r} is refused: eventwire always produces with acks=all "
            "('all' or '-1'); idempotence requires it",
        )
        for key in ("acks", "request.required.acks")
        for value in ("1", 0, 1, "leader")
    ],
    *[
        (
            "enable.idempotence",
            value,
            f"{_where('enable.idempotence')} = {value!r} is refused: idempotence is what keeps "
            "retries from duplicating or reordering events",
        )
        for value in (False, "false", "FALSE")
    ],
    (
        "enable.idempotence",
        "yes",
        f"{_where('enable.idempotence')} must be a bool ('true'/'false'), got 'yes'",
    ),
    *[
        (
            key,
            value,
            f"{_where(key)} = {value!r} is refused: it must be from 1 to 5; with idempotence, "
            "order per partition is only kept with at most 5 requests in flight",
        )
        for key in ("max.in.flight.requests.per.connection", "max.in.flight")
        for value in (6, "1000", 0)
    ],
    (
        "max.in.flight",
        "five",
        f"{_where('max.in.flight')} must be an integer, got 'five'",
    ),
    *[
        (
            key,
            value,
            f"{_where(key)} = {value!r} is refused: it must be at least 1; idempotence needs "
            "retries, and delivery_timeout bounds them",
        )
        for key in ("retries", "message.send.max.retries")
        for value in (0, "0")
    ],
    *[
        (
            "partitioner",
            value,
            f"{_where('partitioner')} = {value!r} is refused: keys must land on the same "
            "partition as from a Java producer; use 'murmur2_random' (default) or 'murmur2'",
        )
        for value in ("consistent_random", "random", "fnv1a")
    ],
    (
        "queue.buffering.max.messages",
        0,
        f"{_where('queue.buffering.max.messages')} = 0 is refused: it must be at least 1",
    ),
]

# librdkafka reads "topic.<name>" as the topic-level <name>: "topic.partitioner=random" placed
# one key on every partition, "topic.message.timeout.ms" replaced delivery_timeout unchecked.
UNSAFE += [
    (f"topic.{key}", value, message.replace(_where(key), _where(f"topic.{key}")))
    for key, value, message in UNSAFE
    if key in {"acks", "request.required.acks", "partitioner"}
]


@pytest.mark.parametrize(("key", "value", "message"), UNSAFE)
def test_unsafe_override_values_are_refused(key: str, value: object, message: str) -> None:
    refused(message, librdkafka_overrides={key: value})


@pytest.mark.parametrize(
    "overrides",
    [
        {"acks": "all"},
        {"acks": "ALL"},
        {"acks": -1},
        {"request.required.acks": "-1"},
        {"enable.idempotence": True},
        {"enable.idempotence": "True"},
        {"max.in.flight": 1},
        {"max.in.flight.requests.per.connection": "5"},
        {"retries": 1},
        {"message.send.max.retries": "2147483647"},
        {"partitioner": "murmur2"},
        {"partitioner": "MURMUR2_RANDOM"},
        {"enable.gapless.guarantee": True},
        {"queue.buffering.max.messages": 1},
    ],
)
def test_safe_override_values_are_accepted(overrides: dict[str, object]) -> None:
    settings = make(librdkafka_overrides=overrides)._to_librdkafka()
    assert {key: settings[key] for key in overrides} == overrides


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"oauth_cb": print},
            "librdkafka_overrides['oauth_cb'] must be a str, int, float or bool, "
            "got builtin_function_or_method",
        ),
        (
            {"batch.num.messages": None},
            "librdkafka_overrides['batch.num.messages'] must be a str, int, float or bool, "
            "got NoneType",
        ),
        ({"": 1}, "librdkafka_overrides keys must be non-empty str, got ''"),
        ({5: 1}, "librdkafka_overrides keys must be non-empty str, got 5"),
    ],
)
def test_override_shapes_are_refused(overrides: dict[Any, Any], message: str) -> None:
    refused(message, librdkafka_overrides=overrides)


def test_overrides_must_be_a_mapping() -> None:
    refused(
        "librdkafka_overrides must be a mapping of str to str/int/float/bool, got list",
        librdkafka_overrides=[("acks", "all")],
    )


# -- secrets ----------------------------------------------------------------------------------


def test_repr_and_str_mask_secrets_and_show_everything_else() -> None:
    config = secret_config(
        librdkafka_overrides={
            "sasl.oauthbearer.client.secret": OAUTH_SECRET,
            "batch.num.messages": 77,
        }
    )
    for text in (repr(config), str(config)):
        assert_no_secret(text)
        assert text.startswith("PublisherConfig(bootstrap_servers='127.0.0.1:1', ")
        assert "sasl_password='***'" in text
        assert "sasl_username='svc-orders'" in text
        assert (
            "librdkafka_overrides={'sasl.oauthbearer.client.secret': '***', "
            "'batch.num.messages': 77}"
        ) in text
        for f in dataclasses.fields(config):
            assert f"{f.name}=" in text
    assert "sasl_password=None" in repr(make())


def test_redacted_librdkafka_masks_secrets() -> None:
    config = secret_config(
        librdkafka_overrides={
            "sasl.oauthbearer.client.secret": OAUTH_SECRET,
            "ssl.key.password": PASSWORD,
            "ssl.key.pem": PASSWORD,
            "sasl.oauthbearer.token.endpoint.url": "https://idp/token",
            "batch.num.messages": 77,
        }
    )
    redacted = config.redacted_librdkafka()
    assert_no_secret(repr(redacted))
    assert redacted["sasl.password"] == "***"
    assert redacted["sasl.oauthbearer.client.secret"] == "***"
    assert redacted["ssl.key.password"] == "***"
    assert redacted["ssl.key.pem"] == "***"
    assert redacted["batch.num.messages"] == 77
    assert redacted["sasl.username"] == "svc-orders"
    assert set(redacted) == set(config._to_librdkafka())
    # the real settings still carry the secrets
    assert config._to_librdkafka()["sasl.password"] == PASSWORD


@pytest.mark.parametrize(
    "key",
    [
        # librdkafka 2.10+ (JWT bearer assertions): was shown in clear by repr() and logs.
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
        "sasl.oauthbearer.client.credentials.client.secret",
        "ssl.keystore.password",
    ],
)
def test_every_librdkafka_secret_key_is_masked(key: str) -> None:
    config = make(librdkafka_overrides={key: PASSWORD})
    assert_no_secret(repr(config))
    assert config.redacted_librdkafka()[key] == "***"
    assert config._scrub(f"bad value {PASSWORD}") == "bad value ***"


@pytest.mark.parametrize(
    "changes",
    [
        {"preset": "fast"},
        {"delivery_timeout": 0},
        {"sasl_mechanism": None},
        {"sasl_username": None},
        {"security_protocol": "PLAINTEXT"},
        {"security_protocol": "SSL"},
        {"sasl_password": b"hunter2-very-secret"},
        {
            "librdkafka_overrides": {
                "sasl.oauthbearer.client.secret": OAUTH_SECRET,
                "acks": "1",
            }
        },
        {"librdkafka_overrides": {"sasl.oauthbearer.client.secret": [OAUTH_SECRET]}},
        {"librdkafka_overrides": {"sasl.password": PASSWORD}},
        {"librdkafka_overrides": {"ssl.key.password": PASSWORD, "dr_cb": "x"}},
    ],
)
def test_error_messages_never_show_secrets(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as raised:
        secret_config(**changes)
    assert_no_secret(str(raised.value))
    assert_no_secret(repr(raised.value))
    with pytest.raises(ConfigError) as raised:
        secret_config().with_overrides(**changes)
    assert_no_secret(str(raised.value))
