"""The checks of a ``PublisherConfig``'s fields: each refuses a value with a message that
says what is expected. Pure functions of the values, so the class stays about its fields,
presets and rendering."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from eventwire._errors import ConfigError
from eventwire._librdkafka import PRESETS, check_override
from eventwire._options import BreakerPolicy, DeadLetterPolicy, RetryPolicy, Telemetry
from eventwire._security_settings import RENDERED_KEYS, SECURITY_PROTOCOLS
from eventwire._topics import prefix_problem, topic_problem

ENCODINGS: Final = ("json", "msgpack")
COMPRESSIONS: Final = ("none", "gzip", "snappy", "lz4", "zstd")
# librdkafka caps: linger.ms (queue.buffering.max.ms) and message.timeout.ms.
MAX_LINGER_MS: Final = 900_000
MAX_MESSAGE_TIMEOUT_MS: Final = 2_147_483_647

_BOOTSTRAP_ENTRY: Final = re.compile(
    r"(?:(?P<scheme>[^/]*)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>[0-9]{1,5})"
)


def check_seconds(name: str, value: object) -> None:
    """Refuse anything but a finite number of seconds greater than 0."""
    valid = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
    if not valid:
        raise ConfigError(
            f"{name} must be a finite number of seconds greater than 0, got {value!r}"
        )


def check_bootstrap(servers: object) -> None:
    """``host:port[,host:port]``, each optionally prefixed with a security protocol."""
    if not isinstance(servers, str):
        raise ConfigError(f"bootstrap_servers must be a str, got {type(servers).__name__}")
    if not servers.strip():
        raise ConfigError("bootstrap_servers must not be empty; give 'host:port[,host:port]'")
    for entry in servers.split(","):
        match = _BOOTSTRAP_ENTRY.fullmatch(entry.strip())
        if match is None:
            raise ConfigError(
                f"bootstrap_servers entry {entry.strip()!r} is not 'host:port' (in {servers!r})"
            )
        if not 1 <= int(match["port"]) <= 65535:
            raise ConfigError(
                f"bootstrap_servers entry {entry.strip()!r} has port {match['port']}, "
                "outside 1..65535"
            )
        scheme = match["scheme"]
        if scheme is not None and scheme.upper() not in SECURITY_PROTOCOLS:
            # librdkafka would log a parse error and never connect: every publish would
            # then fail as "unreachable", far from the cause.
            raise ConfigError(
                f"bootstrap_servers entry {entry.strip()!r} has scheme {scheme + '://'!r}, "
                "which Kafka clients do not know: give 'host:port', or prefix it with the "
                f"security protocol ({', '.join(p + '://' for p in SECURITY_PROTOCOLS)})"
            )


def check_identity(
    *, preset: object, client_id: object, source: object, encoding: object, validate: object
) -> None:
    """The preset, the client and CloudEvents source names, the encoding, ``validate``."""
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(map(repr, PRESETS))}, got {preset!r}")
    if not isinstance(client_id, str) or not client_id or any(c.isspace() for c in client_id):
        raise ConfigError(
            f"client_id must be a non-empty str without whitespace, got {client_id!r}"
        )
    if source is not None and (not isinstance(source, str) or not source):
        raise ConfigError(
            f"source must be a non-empty str (a CloudEvents URI-reference) or None, got {source!r}"
        )
    if encoding not in ENCODINGS:
        raise ConfigError(
            f"encoding must be one of {', '.join(map(repr, ENCODINGS))}, got {encoding!r}"
        )
    if not isinstance(validate, bool):
        raise ConfigError(f"validate must be a bool, got {type(validate).__name__}")


def checked_topic_map(prefix: str, topic_map: object) -> Mapping[str, str]:
    """The prefix and every mapping, checked against Kafka's topic rules; a read-only copy."""
    problem = prefix_problem(prefix)
    if problem is not None:
        raise ConfigError(f"topic_prefix {prefix!r} is not legal in a Kafka topic name: {problem}")
    if not isinstance(topic_map, Mapping):
        raise ConfigError(
            f"topic_map must be a mapping of str to str, got {type(topic_map).__name__}"
        )
    checked = dict(topic_map)
    for declared, mapped in checked.items():
        problem = topic_problem(declared)
        if problem is not None:
            raise ConfigError(
                f"topic_map key {declared!r} is not a legal Kafka topic name, so no event "
                f"could use it: {problem}"
            )
        if not isinstance(mapped, str) or not mapped:
            raise ConfigError(f"topic_map[{declared!r}] must be a non-empty str, got {mapped!r}")
        topic = prefix + mapped
        problem = topic_problem(topic)
        if problem is not None:
            raise ConfigError(
                f"topic_map[{declared!r}] resolves to {topic!r} (topic_prefix + mapped name), "
                f"which is not a legal Kafka topic name: {problem}"
            )
    return MappingProxyType(checked)


def check_timing(
    *,
    queue_full_timeout: object,
    delivery_timeout: float,
    linger_ms: object,
    compression: object,
    effective_linger_ms: float,
    preset: str,
) -> None:
    """The waits, the linger (given, or ``effective_linger_ms`` from the preset) and the
    compression; ``delivery_timeout`` must outlast the linger."""
    check_seconds("queue_full_timeout", queue_full_timeout)
    check_seconds("delivery_timeout", delivery_timeout)
    if linger_ms is not None and (
        not _is_number(linger_ms) or not 0 <= linger_ms <= MAX_LINGER_MS  # type: ignore[operator]
    ):
        raise ConfigError(
            f"linger_ms must be a number of milliseconds from 0 to {MAX_LINGER_MS}, "
            f"got {linger_ms!r}"
        )
    if compression is not None and compression not in COMPRESSIONS:
        raise ConfigError(
            f"compression must be one of {', '.join(map(repr, COMPRESSIONS))} or None, "
            f"got {compression!r}"
        )
    timeout_ms = int(delivery_timeout * 1000)
    if timeout_ms < 1 or timeout_ms > MAX_MESSAGE_TIMEOUT_MS:
        raise ConfigError(
            f"delivery_timeout must be from 0.001 to {MAX_MESSAGE_TIMEOUT_MS / 1000:g} "
            f"seconds (librdkafka message.timeout.ms), got {delivery_timeout!r}"
        )
    if timeout_ms <= effective_linger_ms:
        raise ConfigError(
            f"delivery_timeout ({delivery_timeout:g} s) must be greater than the "
            f"linger time ({effective_linger_ms:g} ms, from "
            f"{'linger_ms' if linger_ms is not None else 'preset ' + repr(preset)})"
        )


def check_spool(path: object, max_events: object, full_timeout: object) -> None:
    """A spool path whose folder exists, a positive event bound, a wait in seconds."""
    if path is not None:
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ConfigError(f"spool_path must be a non-empty path or None, got {path!r}")
        parent = os.path.dirname(os.path.abspath(os.fspath(path)))
        if not os.path.isdir(parent):
            problem = "is not a directory" if os.path.exists(parent) else "does not exist"
            raise ConfigError(f"spool_path {os.fspath(path)!r}: {parent!r} {problem}")
    if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
        raise ConfigError(f"spool_max_events must be an int >= 1, got {max_events!r}")
    check_seconds("spool_full_timeout", full_timeout)


def check_policies(retry: object, dead_letter: object, breaker: object, telemetry: object) -> None:
    """Each policy field holds its policy type."""
    if not isinstance(retry, RetryPolicy):
        raise ConfigError("retry must be a RetryPolicy (RetryPolicy.never() to turn it off)")
    if dead_letter is not None and not isinstance(dead_letter, DeadLetterPolicy):
        raise ConfigError("dead_letter must be a DeadLetterPolicy or None")
    if breaker is not None and not isinstance(breaker, BreakerPolicy):
        raise ConfigError("breaker must be a BreakerPolicy or None")
    if not isinstance(telemetry, Telemetry):
        raise ConfigError("telemetry must be a Telemetry")


def checked_overrides(raw: object, security: object) -> Mapping[str, Any]:
    """Raw librdkafka settings, each checked (``_librdkafka.check_override``); none that a
    ``security`` object renders itself. A read-only copy."""
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"librdkafka_overrides must be a mapping of str to str/int/float/bool, "
            f"got {type(raw).__name__}"
        )
    overrides = dict(raw)
    for key, value in overrides.items():
        check_override(key, value)
        if security is not None and key.strip().lower() in RENDERED_KEYS:
            raise ConfigError(
                f"librdkafka_overrides[{key!r}] is refused: security="
                f"{type(security).__name__}(...) sets it; use its fields"
            )
    return MappingProxyType(overrides)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
