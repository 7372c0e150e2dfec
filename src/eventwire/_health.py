"""Health of a publisher: ``HealthStatus`` and the cached broker probe behind it.

The probe is a metadata request with a bounded timeout, run on the core's poll thread (never
on the caller's thread or the event loop) at most once per ``HealthProbe.interval``, and only
while someone asks: ``health()`` keeps it wanted for ``HealthProbe.keep_alive`` seconds. A
publisher nobody asks about sends no probes. ``health()`` itself only reads cached state:
cheap enough for a readiness probe every second.
"""

from __future__ import annotations

import time
from typing import Final

import msgspec


class HealthStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of a publisher's health (``publisher.health()``).

    Attributes:
        ready: the publisher can deliver now: not closed, the broker answered the last probe,
            the circuit breaker is not open or probing, and its spool (if any) has not failed.
        reasons: why it is not ready (empty when ready).
        broker_reachable: the last metadata probe's verdict (one that timed out while events
            were acknowledged since the previous probe counts as reachable: a slow broker);
            ``None`` before the first probe (the first ``health()`` call starts them).
        probed_at: when that probe finished, seconds since the Unix epoch.
        breaker_state: ``"closed"``, ``"open"``, ``"half_open"`` or ``"disabled"``.
        queue_depth: messages in librdkafka's queue (waiting or in flight).
        outstanding: accepted events whose outcome is not settled yet.
        spool_backlog: events in the durable spool; ``None`` without a spool.
        spool_oldest_age: seconds since the oldest spooled event was accepted; ``None``
            without a spool or when it is empty.
        delivered: events acknowledged over the publisher's lifetime.
        failed: events that failed over the publisher's lifetime.
        last_error: the last client error librdkafka reported (code and reason, no secret).
        last_error_at: when, seconds since the Unix epoch.
        closed: ``close``/``aclose`` was called.
        checked_at: when this snapshot was taken, seconds since the Unix epoch.
    """

    ready: bool
    reasons: tuple[str, ...]
    broker_reachable: bool | None
    probed_at: float | None
    breaker_state: str
    queue_depth: int
    outstanding: int
    spool_backlog: int | None
    spool_oldest_age: float | None
    delivered: int
    failed: int
    last_error: str | None
    last_error_at: float | None
    closed: bool
    checked_at: float

    def as_dict(self) -> dict[str, object]:
        """The snapshot as a dict of JSON-ready values (``reasons`` as a list)."""
        result: dict[str, object] = msgspec.json.decode(msgspec.json.encode(self))
        return result

    def to_json(self) -> str:
        """The snapshot as a JSON object (e.g. the body of a readiness endpoint)."""
        return msgspec.json.encode(self).decode()


class Stats(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A snapshot of a publisher's figures, as telemetry and health read them.

    Attributes:
        outstanding: events accepted whose outcome is not settled yet.
        delivered: events acknowledged by Kafka.
        failed: events whose delivery failed (their callers got the error).
        retries: re-sends scheduled after failed attempts.
        dead_lettered: events written to the dead-letter topic.
        recreations: producers replaced after fatal errors.
        queue_depth: messages in librdkafka's queue.
        breaker_state: ``"closed"``, ``"open"``, ``"half_open"`` or ``"disabled"``.
        spool_backlog: events in the durable spool (``None`` without one).
        spool_oldest_age: seconds since the oldest spooled event was accepted.
    """

    outstanding: int
    delivered: int
    failed: int
    retries: int
    dead_lettered: int
    recreations: int
    queue_depth: int
    breaker_state: str
    spool_backlog: int | None = None
    spool_oldest_age: float | None = None


class HealthProbe:
    """The cached outcome of the broker probe. Written by the poll thread, read anywhere
    (single attribute writes; readers tolerate a probe finishing meanwhile)."""

    #: Seconds between probes while wanted.
    interval: Final = 0.5
    #: Seconds a probe may take (a broker that does not answer in time is unreachable).
    timeout: Final = 1.0
    #: Seconds probes go on after the last ``health()`` call.
    keep_alive: Final = 30.0

    def __init__(self) -> None:
        self.reachable: bool | None = None
        self.probed_at: float | None = None
        self._last = -float("inf")
        self._wanted_until = -float("inf")
        self._delivered: int | None = None  # at the previous probe of this probing run

    @property
    def wanted(self) -> bool:
        return time.monotonic() < self._wanted_until

    def want(self) -> None:
        """Someone asked: keep probing for ``keep_alive`` seconds."""
        if not self.wanted:  # probing (re)starts: deliveries before it say nothing
            self._delivered = None
        self._wanted_until = time.monotonic() + self.keep_alive

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval

    def record(self, reachable: bool, delivered: int) -> None:
        """A probe's outcome; ``delivered`` is the publisher's count of acknowledged events.

        A probe that timed out while the cluster acknowledged events since the last one says
        the broker is slow, not unreachable (a round trip over ``timeout``): readiness must
        not drop a publisher that delivers.
        """
        self._last = time.monotonic()
        since = self._delivered
        self.reachable = reachable or (since is not None and delivered > since)
        self._delivered = delivered
        self.probed_at = time.time()
