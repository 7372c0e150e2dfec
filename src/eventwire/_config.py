"""PublisherConfig: presets, librdkafka rendering, and refusal of unsafe settings.

Every preset produces with ``acks=all``, idempotence and at most 5 requests in flight (order per
partition is kept), and places keys with ``murmur2_random`` (the Java client's partitioner).
Raw librdkafka settings are accepted only as explicit overrides and are checked: a setting that
would trade those guarantees away, or that eventwire owns, is refused with the reason.

Secrets (``sasl_password``, the ``Secret`` fields of ``security``, and any override whose key
names a password, passphrase, secret, token or private key) are shown as ``'***'`` in
``repr()``, in :meth:`PublisherConfig.redacted_librdkafka` and in every error message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from eventwire._config_checks import (
    MAX_MESSAGE_TIMEOUT_MS,
    check_bootstrap,
    check_identity,
    check_policies,
    check_spool,
    check_timing,
    checked_overrides,
    checked_topic_map,
)
from eventwire._config_sources import config_kwargs, env_missing, env_settings, properties_settings
from eventwire._errors import ConfigError
from eventwire._librdkafka import (
    MASK,
    PRESETS,
    LibrdkafkaValue,
    is_secret_key,
)
from eventwire._options import BreakerPolicy, DeadLetterPolicy, RetryPolicy, Telemetry
from eventwire._security import Secret, Security
from eventwire._security_settings import (
    check_security,
    config_secrets,
    librdkafka_settings,
    revealed,
)
from eventwire._topics import topic_problem
from eventwire._transaction_settings import (
    check_transaction_fields,
    transaction_settings,
    transactional_bounds,
)

Preset: TypeAlias = Literal["durable", "throughput", "low_latency"]
Encoding: TypeAlias = Literal["json", "msgpack"]
Compression: TypeAlias = Literal["none", "gzip", "snappy", "lz4", "zstd"]
SecurityProtocol: TypeAlias = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]

#: librdkafka's message.timeout.ms is delivery_timeout plus this fraction of it, at least
#: _BACKSTOP_MIN seconds (see _message_timeout_ms).
_BACKSTOP_FRACTION: Final = 0.1
_BACKSTOP_MIN: Final = 1.0


class _FromPreset(float):
    """The default of a bound the preset gives (a float: the field's type is kept)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FROM_PRESET"


#: The default of ``delivery_timeout`` and ``queue_full_timeout``: the preset's value.
FROM_PRESET: Final[float] = _FromPreset("nan")
#: The default of ``retry``: the preset's policy.
RETRY_FROM_PRESET: Final = RetryPolicy()
#: The fields whose change gives the values the preset gave again (``with_overrides``).
_PRESET_INPUTS: Final = frozenset({"preset", "transactional_id", "transaction_timeout"})
_SENTINELS: Final[Mapping[str, object]] = MappingProxyType(
    {
        "delivery_timeout": FROM_PRESET,
        "queue_full_timeout": FROM_PRESET,
        "retry": RETRY_FROM_PRESET,
    }
)
#: What each preset gives the bounds that are not set. low_latency is for a request path:
#: a caller waits at most queue_full_timeout + delivery_timeout (librdkafka retries within
#: it), so eventwire does not retry after it (see docs/failures.md for the formula).
_PRESET_BOUNDS: Final[Mapping[str, Mapping[str, object]]] = MappingProxyType(
    {
        "durable": {"delivery_timeout": 120.0, "queue_full_timeout": 30.0, "retry": RetryPolicy()},
        "throughput": {
            "delivery_timeout": 120.0,
            "queue_full_timeout": 30.0,
            "retry": RetryPolicy(),
        },
        "low_latency": {
            "delivery_timeout": 5.0,
            "queue_full_timeout": 0.5,
            "retry": RetryPolicy.never(),
        },
    }
)


@dataclass(frozen=True, kw_only=True, slots=True)
class PublisherConfig:
    """How a publisher connects to Kafka and produces; checked when built, then immutable.

    Every preset produces with ``acks=all``, idempotence, at most 5 requests in flight per
    connection (order per partition is kept) and the ``murmur2_random`` partitioner (a key lands
    on the same partition as from a Java producer). None of this can be overridden.

    Attributes:
        bootstrap_servers: initial brokers, ``"host:port[,host:port...]"``; bracketed IPv6
            hosts are accepted, and so is a prefix naming ``security_protocol``
            (``PLAINTEXT://``, ``SSL://``, ``SASL_PLAINTEXT://``, ``SASL_SSL://``; any other
            scheme, such as ``kafka://`` or ``http://``, is refused).
        preset: tuning profile: ``"durable"`` (default; linger 5 ms, no compression),
            ``"throughput"`` (linger 20 ms, lz4, large batches and queue) or ``"low_latency"``
            (linger 0 ms, Nagle off; bounds fit for a request path: ``delivery_timeout`` 5 s,
            ``queue_full_timeout`` 0.5 s, no retry after librdkafka gave up). The preset
            gives ``delivery_timeout``, ``queue_full_timeout`` and ``retry`` unless they are
            set (see ``FROM_PRESET``).
        client_id: librdkafka ``client.id``; also names the default CloudEvents source.
        source: CloudEvents ``source`` attribute; ``None`` means ``/eventwire/{client_id}``.
        encoding: payload encoding, ``"json"`` or ``"msgpack"``.
        validate: validate each event (types, constraints, timezone-aware datetimes, finite
            Decimals) before producing it.
        topic_prefix: prepended to every topic after ``topic_map`` (e.g. ``"staging."``).
        topic_map: declared topic -> topic name to use instead (before the prefix). Stored as a
            read-only copy.
        queue_full_timeout: seconds a publish waits for room in the local producer queue
            before it fails with ``QueueFullError``; default: the preset's (30 s; 0.5 s with
            ``low_latency``).
        delivery_timeout: seconds one attempt may take, librdkafka's retries included: at
            that age eventwire times it out (librdkafka's ``message.timeout.ms`` is a backstop
            10 %, at least 1 s, later); must exceed the linger time; default: the preset's
            (120 s; 5 s with ``low_latency``).
        linger_ms: milliseconds librdkafka waits to fill a batch (``linger.ms``, 0 to
            900000); ``None`` keeps the preset's value.
        compression: ``compression.type``; ``None`` keeps the preset's value.
        security: how the client proves who it is and encrypts: ``TLS(...)`` (``SSL``, mTLS
            with a client certificate), ``SaslPlain``, ``SaslScram``, ``OAuthBearer`` (tokens
            from your code) or ``OidcClientCredentials`` (librdkafka's OIDC client), from
            ``eventwire.security``; a SASL variant runs over ``TLS()`` unless its ``tls`` is
            ``None``. ``None`` (default) leaves it to the fields below. Given with any of
            them, or with an override of a key it sets, the config is refused.
        security_protocol: ``security.protocol`` (the short form of ``security``).
        sasl_mechanism: ``sasl.mechanism`` (``PLAIN``, ``SCRAM-SHA-256``, ``SCRAM-SHA-512``,
            ``GSSAPI`` or ``OAUTHBEARER``); required with a ``SASL_*`` protocol.
        sasl_username: ``sasl.username``; required with PLAIN and SCRAM.
        sasl_password: ``sasl.password`` (a ``str`` or ``Secret``; never shown); required with
            PLAIN and SCRAM.
        ssl_ca_location: ``ssl.ca.location``, CA bundle path; only with ``SSL``/``SASL_SSL``.
        librdkafka_overrides: raw librdkafka settings applied last. Keys eventwire owns or
            that have a field above are refused, and so are values that would weaken
            durability, ordering or key placement. Values whose key names a password,
            passphrase, secret, token or private key are never shown. Stored as a read-only
            copy.
        retry: how failed deliveries are re-sent after librdkafka gave up (``RetryPolicy``;
            ``RetryPolicy.never()`` to turn it off); default: the preset's
            (``RetryPolicy()``; ``RetryPolicy.never()`` with ``low_latency``). A caller of
            ``publish()`` waits at most ``queue_full_timeout`` + ``delivery_timeout`` +
            ``retry.deadline`` + ``delivery_timeout`` (the last re-send starts before the
            deadline); never a re-send while the circuit breaker is open.
        dead_letter: where permanent failures and exhausted retries are written; ``None``
            (default) means the caller gets the error and nothing is written.
        breaker: when to stop sending to an unreachable cluster and fail fast
            (``CircuitOpenError``); ``None`` turns the breaker off.
        telemetry: OpenTelemetry providers and propagator (``Telemetry``; default: the
            global ones, nothing recorded unless an SDK is configured).
        spool_path: file of the durable spool (SQLite, WAL); ``None`` (default) turns it off.
            With a spool, an event is committed to this file before it is produced and
            removed on its delivery report; what is left is replayed on the next start. While
            the breaker is open, events are spooled instead of failing. One publisher (one
            process) uses a file at a time.
        spool_max_events: most events the spool holds (accepted, not yet acknowledged); when
            full, publishing waits for room.
        spool_full_timeout: seconds a publish waits for room in a full spool before it fails
            with ``SpoolFullError`` (the event is then not accepted; nothing is dropped).
        transactional_id: librdkafka ``transactional.id``: the publisher publishes only in
            Kafka transactions (``publisher.transaction()``); a second instance with the same
            id fences the first. Refuses a spool, a dead-letter policy and a retry policy.
        transaction_timeout: seconds a transaction may stay open before Kafka aborts it
            (``transaction.timeout.ms``); it also bounds commit and abort, and
            ``delivery_timeout`` (the preset's is lowered to it). docs/transactions.md.

    Raises:
        ConfigError: a field is invalid or contradicts another; the message names the field
            and the reason, never a secret.
    """

    bootstrap_servers: str
    preset: Preset = "durable"
    client_id: str = "eventwire"
    source: str | None = None
    encoding: Encoding = "json"
    validate: bool = True
    topic_prefix: str = ""
    topic_map: Mapping[str, str] = field(default_factory=dict)
    queue_full_timeout: float = FROM_PRESET
    delivery_timeout: float = FROM_PRESET
    linger_ms: float | None = None
    compression: Compression | None = None
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | Secret | None = None
    ssl_ca_location: str | None = None
    security: Security | None = None
    librdkafka_overrides: Mapping[str, LibrdkafkaValue] = field(default_factory=dict)
    retry: RetryPolicy = RETRY_FROM_PRESET
    dead_letter: DeadLetterPolicy | None = None
    breaker: BreakerPolicy | None = field(default_factory=BreakerPolicy)
    telemetry: Telemetry = field(default_factory=Telemetry)
    spool_path: str | os.PathLike[str] | None = None
    spool_max_events: int = 1_000_000
    spool_full_timeout: float = 30.0
    transactional_id: str | None = None
    transaction_timeout: float = 60.0

    #: The fields whose values came from the preset (``with_overrides`` of another preset
    #: gives them the new preset's values).
    _from_preset: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._take_preset_bounds()
        check_bootstrap(self.bootstrap_servers)
        check_identity(
            preset=self.preset,
            client_id=self.client_id,
            source=self.source,
            encoding=self.encoding,
            validate=self.validate,
        )
        topic_map = checked_topic_map(self.topic_prefix, self.topic_map)
        object.__setattr__(self, "topic_map", topic_map)
        check_timing(
            queue_full_timeout=self.queue_full_timeout,
            delivery_timeout=self.delivery_timeout,
            linger_ms=self.linger_ms,
            compression=self.compression,
            effective_linger_ms=self._linger_ms(),
            preset=self.preset,
        )
        self._check_security()
        overrides = checked_overrides(self.librdkafka_overrides, self.security)
        object.__setattr__(self, "librdkafka_overrides", overrides)
        check_policies(self.retry, self.dead_letter, self.breaker, self.telemetry)
        check_spool(self.spool_path, self.spool_max_events, self.spool_full_timeout)
        self._check_transactions()  # after the policies: it lowers the preset's bounds

    def _check_transactions(self) -> None:
        maximum = MAX_MESSAGE_TIMEOUT_MS / 1000
        check_transaction_fields(self.transactional_id, self.transaction_timeout, maximum)
        if self.transactional_id is None:
            return
        retry, delivery_timeout = transactional_bounds(
            transaction_timeout=self.transaction_timeout,
            spool_path=self.spool_path,
            dead_letter=self.dead_letter,
            retry=self.retry,
            retry_from_preset="retry" in self._from_preset,
            delivery_timeout=self.delivery_timeout,
            delivery_from_preset="delivery_timeout" in self._from_preset,
            linger_ms=self._linger_ms(),
        )
        object.__setattr__(self, "retry", retry)
        object.__setattr__(self, "delivery_timeout", delivery_timeout)

    # -- public ------------------------------------------------------------------------------

    @property
    def ce_source(self) -> str:
        """The CloudEvents ``source``: ``source`` if given, else ``/eventwire/{client_id}``."""
        return self.source if self.source is not None else f"/eventwire/{self.client_id}"

    def _resolve_topic(self, declared: str) -> str:
        """The Kafka topic for a declared (or per-call) topic name.

        Args:
            declared: the topic name an event class declares, or a per-call override.

        Returns:
            ``topic_prefix + topic_map.get(declared, declared)``.

        Raises:
            ConfigError: ``declared`` or the resulting name is not a legal Kafka topic name
                (e.g. an empty name, or a prefix that makes it longer than 249 characters).
        """
        # A per-call topic must be legal itself: an empty one resolved to the prefix alone.
        problem = topic_problem(declared)
        if problem is not None:
            raise ConfigError(f"topic {declared!r} is not a legal Kafka topic name: {problem}")
        topic = self.topic_prefix + self.topic_map.get(declared, declared)
        problem = topic_problem(topic)
        if problem is not None:
            raise ConfigError(
                f"topic {declared!r} resolves to {topic!r} (topic_prefix + topic_map), which is "
                f"not a legal Kafka topic name: {problem}"
            )
        return topic

    def _to_librdkafka(self) -> dict[str, LibrdkafkaValue]:
        """The settings for ``confluent_kafka.Producer``, in a new dict.

        Built from the fixed guarantees, then the preset, then ``linger_ms`` and
        ``compression``, then ``librdkafka_overrides``. It holds secrets in clear: log
        :meth:`redacted_librdkafka` instead.
        """
        settings: dict[str, LibrdkafkaValue] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "acks": "all",
            "enable.idempotence": True,
            "max.in.flight.requests.per.connection": 5,
            "partitioner": "murmur2_random",
            "message.timeout.ms": self._message_timeout_ms(),
            "security.protocol": self.security_protocol,
        }
        if self.security is not None:
            settings.update(librdkafka_settings(self.security))
        if self.sasl_mechanism is not None:
            settings["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            settings["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            settings["sasl.password"] = revealed(self.sasl_password)
        if self.ssl_ca_location is not None:
            settings["ssl.ca.location"] = self.ssl_ca_location
        if self.transactional_id is not None:
            settings.update(transaction_settings(self.transactional_id, self.transaction_timeout))
        settings.update(PRESETS[self.preset])
        if self.linger_ms is not None:
            settings["linger.ms"] = self.linger_ms
        elif self.transactional_id is not None:
            settings["linger.ms"] = 0  # see _linger_ms
        if self.compression is not None:
            settings["compression.type"] = self.compression
        settings.update(self.librdkafka_overrides)
        return settings

    def redacted_librdkafka(self) -> dict[str, LibrdkafkaValue]:
        """The settings the publisher gives ``confluent_kafka.Producer`` (the fixed guarantees,
        then the preset, then ``linger_ms`` and ``compression``, then
        ``librdkafka_overrides``), every secret value replaced by ``'***'``, for logs."""
        secrets = set(self._secrets())
        return {
            key: MASK if is_secret_key(key) or value in secrets else value
            for key, value in self._to_librdkafka().items()
        }

    def _secrets(self) -> list[str]:
        return config_secrets(self.security, self.sasl_password, self.librdkafka_overrides)

    def _scrub(self, text: str) -> str:
        """``text`` with every secret value of this config replaced by ``'***'`` (for
        messages that quote librdkafka, which may echo a rejected value)."""
        # Longest first: a secret that contains another is masked whole.
        for secret in sorted(set(self._secrets()), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def _take_preset_bounds(self) -> None:
        bounds = _PRESET_BOUNDS.get(self.preset) if isinstance(self.preset, str) else None
        if bounds is None:
            return  # an unknown preset is refused by _check_identity
        taken = []
        for name, value in bounds.items():
            if getattr(self, name) is _SENTINELS[name]:
                object.__setattr__(self, name, value)
                taken.append(name)
        object.__setattr__(self, "_from_preset", frozenset(taken))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **fields: Any) -> PublisherConfig:
        """A config from ``EVENTWIRE_*`` environment variables, the way services are deployed:
        ``EVENTWIRE_`` and a librdkafka key, upper-cased, dots as underscores
        (``EVENTWIRE_BOOTSTRAP_SERVERS``, ``EVENTWIRE_SECURITY_PROTOCOL``,
        ``EVENTWIRE_SASL_USERNAME``, ``EVENTWIRE_SSL_CA_LOCATION``, ...; docs/security.md has
        the table). Empty variables count as unset.

        Args:
            environ: the variables; default ``os.environ``.
            **fields: further ``PublisherConfig`` fields, over what the variables give.

        Raises:
            ConfigError: a variable is missing, contradicts another, names a file that does
                not exist, or is an unknown ``EVENTWIRE_SASL_*``/``EVENTWIRE_SSL_*`` name; the
                message names the variable, never a secret.
        """
        settings = env_settings(os.environ if environ is None else environ)
        kwargs = config_kwargs(settings, missing=env_missing)
        return cls._from_source(kwargs, fields, env_missing("bootstrap.servers"))

    @classmethod
    def from_properties(cls, path: str | os.PathLike[str], **fields: Any) -> PublisherConfig:
        """A config from a librdkafka- or Java-style properties file: the ``client.properties``
        Confluent Cloud hands out, or what ``kafka-console-producer --producer.config`` reads
        (``sasl.jaas.config`` included). Consumer and Schema Registry keys are skipped,
        Java-only keys refused with what to do instead, other keys checked librdkafka
        overrides; docs/security.md has the table.

        Args:
            path: the properties file.
            **fields: further ``PublisherConfig`` fields, over what the file gives.

        Raises:
            ConfigError: the file cannot be read, or a setting is missing, contradicts another
                or has no equivalent; the message names the file and line, never a secret.
        """
        name = os.fspath(path)
        kwargs = config_kwargs(properties_settings(name), missing=lambda key: f"{key} in {name}")
        return cls._from_source(kwargs, fields, f"bootstrap.servers in {name}")

    @classmethod
    def _from_source(
        cls, kwargs: dict[str, Any], fields: Mapping[str, Any], bootstrap: str
    ) -> PublisherConfig:
        kwargs.update(fields)
        if "bootstrap_servers" not in kwargs:
            raise ConfigError(f"{bootstrap} is required (the Kafka cluster's host:port list)")
        return cls(**kwargs)

    def with_overrides(self, **changes: Any) -> PublisherConfig:
        """A copy with the given fields replaced, checked again like a new config.

        Args:
            **changes: field names and their new values.

        Raises:
            ConfigError: a name is not a field, or the result is refused.
        """
        names = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(
                f"PublisherConfig has no field {', '.join(unknown)}; fields are "
                f"{', '.join(sorted(names))}"
            )
        if changes.keys() & _PRESET_INPUTS:  # values the preset gave follow the new inputs
            for name in self._from_preset - changes.keys():
                changes[name] = _SENTINELS[name]
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        parts: list[str] = []
        for f in dataclasses.fields(self):
            value: object = getattr(self, f.name)
            if f.name == "sasl_password" and value is not None:
                value = MASK
            elif f.name == "topic_map":
                value = dict(self.topic_map)
            elif f.name == "librdkafka_overrides":
                value = {
                    key: MASK if is_secret_key(key) else item
                    for key, item in self.librdkafka_overrides.items()
                }
            parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- checks ------------------------------------------------------------------------------

    def _check_security(self) -> None:
        short_form = {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_username": self.sasl_username,
            "sasl_password": self.sasl_password,
            "ssl_ca_location": self.ssl_ca_location,
        }
        check_security(self.security, short_form, self.bootstrap_servers)

    # -- helpers -----------------------------------------------------------------------------

    def _message_timeout_ms(self) -> int:
        # The core times attempts out itself at delivery_timeout, failing everything queued
        # at once so that order per key holds (_core.deadlines); librdkafka's own per-message
        # timeout is only a backstop, 10 % (at least 1 s) later.
        # Capped at transaction.timeout.ms for a transactional producer, as librdkafka
        # requires (in a transaction any failed record aborts it: order is not at stake).
        timeout = self.delivery_timeout
        backstop = timeout + max(_BACKSTOP_MIN, timeout * _BACKSTOP_FRACTION)
        cap = MAX_MESSAGE_TIMEOUT_MS
        if self.transactional_id is not None:
            cap = int(self.transaction_timeout * 1000)
        return min(int(backstop * 1000), cap)

    def _linger_ms(self) -> float:
        if self.linger_ms is not None:
            return self.linger_ms
        if self.transactional_id is not None:
            return 0.0  # its caller waits for its events: lingering only delays the commit
        return float(PRESETS[self.preset]["linger.ms"])
