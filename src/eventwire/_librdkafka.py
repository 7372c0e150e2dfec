"""librdkafka's settings as eventwire uses them: the presets, the keys eventwire owns, and the
checks of raw overrides (what would weaken durability, ordering or key placement is refused).

Secrets among raw overrides are recognised by their key's name (a password, passphrase,
secret, token or private key) and shown as ``'***'``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, TypeAlias

from eventwire._errors import ConfigError

LibrdkafkaValue: TypeAlias = str | int | float | bool

MASK: Final = "***"

PRESETS: Final[Mapping[str, Mapping[str, LibrdkafkaValue]]] = MappingProxyType(
    {
        "durable": MappingProxyType(
            {
                "linger.ms": 5,
                "compression.type": "none",
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 100_000,
                "queue.buffering.max.kbytes": 1_048_576,
            }
        ),
        "throughput": MappingProxyType(
            {
                "linger.ms": 20,
                "compression.type": "lz4",
                "batch.size": 1_000_000,
                "batch.num.messages": 100_000,
                "queue.buffering.max.messages": 1_000_000,
                "queue.buffering.max.kbytes": 2_097_152,
            }
        ),
        "low_latency": MappingProxyType(
            {
                "linger.ms": 0,
                "compression.type": "none",
                "batch.num.messages": 1_000,
                "socket.nagle.disable": True,
                "queue.buffering.max.messages": 100_000,
            }
        ),
    }
)


# Keys eventwire sets itself, and what to use instead. Compared lower-cased; aliases included.
OWNED_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "bootstrap.servers": "use the bootstrap_servers field",
        "metadata.broker.list": "use the bootstrap_servers field",
        "client.id": "use the client_id field",
        "message.timeout.ms": "use the delivery_timeout field (seconds)",
        "delivery.timeout.ms": "use the delivery_timeout field (seconds)",
        "linger.ms": "use the linger_ms field",
        "queue.buffering.max.ms": "use the linger_ms field",
        "compression.type": "use the compression field",
        "compression.codec": "use the compression field",
        "security.protocol": "use the security_protocol field",
        "sasl.mechanism": "use the sasl_mechanism field",
        "sasl.mechanisms": "use the sasl_mechanism field",
        "sasl.username": "use the sasl_username field",
        "sasl.password": "use the sasl_password field",
        "ssl.ca.location": "use the ssl_ca_location field",
        "on_delivery": "eventwire handles every delivery report; publish() returns the outcome",
        "dr_cb": "eventwire handles every delivery report; publish() returns the outcome",
        "dr_msg_cb": "eventwire handles every delivery report; publish() returns the outcome",
        "delivery.report.only.error": (
            "eventwire needs every delivery report to resolve publish() calls"
        ),
        "error_cb": "eventwire consumes client errors (circuit breaker, health, logs)",
        "stats_cb": "eventwire consumes librdkafka statistics (metrics)",
        "throttle_cb": "eventwire consumes throttle events (metrics)",
        "logger": "eventwire routes librdkafka logs itself",
        "transactional.id": "use the transactional_id field",
        "transaction.timeout.ms": "use the transaction_timeout field (seconds)",
        "default.topic.config": "give topic-level librdkafka settings as plain keys",
    }
)
# librdkafka applies "topic.<name>" to the default topic configuration, so "topic.partitioner"
# is "partitioner": checked under the plain name (global keys named topic.metadata.* are not
# checked settings either way).
TOPIC_LEVEL_PREFIX: Final = "topic."

_SECRET_MARKERS: Final = (
    "password",
    "passphrase",  # sasl.oauthbearer.assertion.private.key.passphrase
    "private.key",
    "secret",
    "token",
    ".pem",
    "ssl.key",
    "sasl.oauthbearer.config",
    "credential",
)


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def _shown(key: str, value: object) -> str:
    """The repr of an override value for messages: masked when the key names a secret."""
    return repr(MASK) if is_secret_key(key) else repr(value)


def check_override(key: object, value: object) -> None:
    """Refuse a raw override eventwire owns, or whose value is not a librdkafka value or would
    weaken durability, ordering or key placement; the message names the key, never a secret.

    Raises:
        ConfigError: the override is refused.
    """
    if not isinstance(key, str) or not key.strip():
        raise ConfigError(f"librdkafka_overrides keys must be non-empty str, got {key!r}")
    name = key.strip().lower().removeprefix(TOPIC_LEVEL_PREFIX)
    hint = OWNED_KEYS.get(name)
    if hint is not None:
        raise ConfigError(f"librdkafka_overrides[{key!r}] is refused: eventwire sets it; {hint}")
    if not isinstance(value, str | int | float | bool):
        raise ConfigError(
            f"librdkafka_overrides[{key!r}] must be a str, int, float or bool, "
            f"got {type(value).__name__}"
        )
    _check_override_value(key, name, value)


def _check_override_value(key: str, name: str, value: LibrdkafkaValue) -> None:
    """Refuse an override value that would weaken durability, ordering or key placement."""
    text = str(value).strip().lower()
    where = f"librdkafka_overrides[{key!r}]"
    shown = _shown(key, value)
    if name in {"acks", "request.required.acks"}:
        if text not in {"all", "-1"}:
            raise ConfigError(
                f"{where} = {shown} is refused: eventwire always produces with acks=all "
                "('all' or '-1'); idempotence requires it"
            )
    elif name == "enable.idempotence":
        if text not in {"true", "false"}:
            raise ConfigError(f"{where} must be a bool ('true'/'false'), got {shown}")
        if text == "false":
            raise ConfigError(
                f"{where} = {shown} is refused: idempotence is what keeps retries from "
                "duplicating or reordering events"
            )
    elif name in {"max.in.flight.requests.per.connection", "max.in.flight"}:
        count = _as_int(where, shown, text)
        if not 1 <= count <= 5:
            raise ConfigError(
                f"{where} = {shown} is refused: it must be from 1 to 5; with idempotence, "
                "order per partition is only kept with at most 5 requests in flight"
            )
    elif name in {"retries", "message.send.max.retries"}:
        if _as_int(where, shown, text) < 1:
            raise ConfigError(
                f"{where} = {shown} is refused: it must be at least 1; idempotence needs "
                "retries, and delivery_timeout bounds them"
            )
    elif name == "partitioner":
        if text not in {"murmur2_random", "murmur2"}:
            raise ConfigError(
                f"{where} = {shown} is refused: keys must land on the same partition as from "
                "a Java producer; use 'murmur2_random' (default) or 'murmur2'"
            )
    elif name == "queue.buffering.max.messages" and _as_int(where, shown, text) < 1:
        raise ConfigError(f"{where} = {shown} is refused: it must be at least 1")


def _as_int(where: str, shown: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{where} must be an integer, got {shown}") from None
