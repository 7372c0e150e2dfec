"""What the Kafka client says on its own: ``error_cb`` reports and librdkafka's log lines.

Both are served on the poll thread. Client errors are recorded (the last one feeds health and
the messages of later failures), logged at most once per interval per code, and passed on:
a fatal one asks for the producer's replacement, ``_ALL_BROKERS_DOWN`` makes the breaker
suspect the cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from confluent_kafka import KafkaError

from eventwire._core.denials import Denials
from eventwire._logs import librdkafka_log
from eventwire._logs import log as _log

_ALL_BROKERS_DOWN: Final = KafkaError._ALL_BROKERS_DOWN


class RepeatLimit:
    """Lets the first line of each kind through, then at most one per ``interval`` seconds."""

    __slots__ = ("_clock", "_interval", "_seen")

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._seen: dict[object, tuple[float, int]] = {}  # kind -> (logged at, left out since)

    def admit(self, kind: object) -> int | None:
        """``None``: leave this line out; else log it, with how many were left out before."""
        now = self._clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self._interval:
            self._seen[kind] = (seen[0], seen[1] + 1)
            return None
        self._seen[kind] = (now, 0)
        return 0 if seen is None else seen[1]


class ClientErrors:
    """The client's ``error_cb``: what it last said, how often connections failed, and the
    refusals of this client it reported (``denials``)."""

    __slots__ = (
        "_last_cause",
        "_lines",
        "_on_denied_fatal",
        "_on_fatal",
        "_on_unreachable",
        "connection_errors",
        "denials",
        "last_error",
        "last_error_at",
        "reached",
    )

    def __init__(
        self,
        *,
        on_fatal: Callable[[str], None],
        on_unreachable: Callable[[str], None],
        denials: Denials,
        on_denied_fatal: Callable[[str], None],
        reached: Callable[[], bool],
    ) -> None:
        self._on_fatal = on_fatal
        self._on_unreachable = on_unreachable
        self._on_denied_fatal = on_denied_fatal
        #: Whether the cluster ever answered this publisher (read when it reports).
        self.reached = reached
        #: Refusals of this client: reported here, confirmed by the probes.
        self.denials = denials
        self._lines = RepeatLimit()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        #: The last error other than _ALL_BROKERS_DOWN (which follows every failed
        #: connection): the cause a failure message names (a refused TLS or SASL handshake).
        self._last_cause: str | None = None
        #: Reports so far (connection failures, request timeouts...): a message produced
        #: before the latest of them may have been sent and put back in the queue.
        self.connection_errors = 0

    def __call__(self, err: Any) -> None:
        self.last_error = f"{err.name()}: {err.str()}"
        self.last_error_at = time.time()
        if err.code() != _ALL_BROKERS_DOWN:
            self._last_cause = self.last_error
        self.connection_errors += 1
        # An unreachable cluster reports every failed connect attempt (several a second): one
        # line per error code, then at most one per interval with how many were left out.
        repeated = 0 if err.fatal() else self._lines.admit(err.code())
        if repeated is not None:
            _log.warning(
                "eventwire.kafka_error",
                code=err.name(),
                reason=err.str(),
                fatal=bool(err.fatal()),
                repeated=repeated,
            )
        denial = self.denials.observe(err.name(), err.str())
        if err.fatal():
            reason = f"fatal error {err.name()}: {err.str()}"
            if denial is not None and denial.kind == "authorization":
                # A new producer would be refused the same at once: replaced later, not now.
                self._on_denied_fatal(reason)
            else:
                self._on_fatal(reason)
        elif err.code() == _ALL_BROKERS_DOWN:
            self.denials.all_brokers_down(self.reached())
            self._on_unreachable(self.denials.reason or err.name())
        elif denial is not None and denial.kind == "authentication":
            # Suspected like an unreachable cluster: a failed probe confirms it.
            self._on_unreachable(denial.summary)

    @property
    def cause(self) -> str | None:
        """The client error that may explain why the cluster never answered."""
        return self._last_cause or self.last_error


class LibrdkafkaLog:
    """librdkafka's own log lines as ``eventwire.librdkafka`` events (logger
    ``eventwire.librdkafka``), so they reach the application's log pipeline instead of raw
    stderr (served by ``poll()``); a line of the same level and facility repeats at most once
    per ``RepeatLimit`` interval."""

    __slots__ = ("_lines", "_scrub")

    def __init__(self, scrub: Callable[[str], str]) -> None:
        self._scrub = scrub
        self._lines = RepeatLimit()

    def log(self, level: int, fmt: str, *args: object) -> None:
        # confluent-kafka calls log(level, "%s [%s] %s", facility, client name, message).
        facility, client, message = (*args, "", "", "")[:3]
        repeated = self._lines.admit((level, facility))
        if repeated is None:
            return
        librdkafka_log.log(
            level,
            "eventwire.librdkafka",
            facility=str(facility),
            client=str(client),
            text=self._scrub(str(message)),
            repeated=repeated,
        )
