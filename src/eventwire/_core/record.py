"""The in-flight record: one accepted event on its way to Kafka, and the sink that settles it.

The core builds every record (``ProducerCore.record``); a publisher only supplies the *sink*
that turns the final outcome into what its caller waits on (a future, a batch slot, a thread
event, a spool row). Every field is set by the constructor: no module fills a slot later
and reads it back with a default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from eventwire._outcome import DeliveryReceipt

if TYPE_CHECKING:
    from eventwire._codec import EncodedEvent
    from eventwire._errors import PublishError


class Sink(Protocol):
    """Where the final outcome of a record goes. ``settle`` runs where outcomes are settled
    (the event loop thread for the async publisher, the poll thread for the sync one), once
    per record."""

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None: ...


class InFlight:
    """One accepted event waiting for its delivery report.

    The instance is librdkafka's ``on_delivery`` callback, so producing allocates no closure;
    the callback only records the report and queues the record for the poll thread's next
    hand-over. ``slot`` is the record's place in its sink (a batch index), so a batch of
    10,000 events shares one sink.
    """

    __slots__ = (
        "_append",
        "connection_errors",
        "deadline",
        "durable",
        "encoded",
        "err",
        "expired",
        "failures",
        "first_failure",
        "generation",
        "maybe_written",
        "order",
        "pending",
        "receipt",
        "sink",
        "slot",
        "span",
        "t0",
        "unsent",
    )

    def __init__(
        self, encoded: EncodedEvent, sink: Sink, slot: int = 0, *, durable: bool = False
    ) -> None:
        self.encoded = encoded
        self.sink = sink
        self.slot = slot
        #: A durable event (in the spool) is never given up for a transient failure: when
        #: its retries run out it is *parked* (re-sent later, its key still held).
        self.durable = durable
        self._append: Callable[[InFlight], None] = _unbound
        #: The latest report, until settled: ``None`` (delivered: ``receipt`` says where), a
        #: ``KafkaError``, or the ``PublishError`` of a re-send librdkafka refused.
        self.err: Any = None
        self.receipt: DeliveryReceipt | None = None
        self.failures = 0
        self.first_failure = 0.0
        #: The producer generation it was last handed to (a replaced producer's reports are
        #: purges of the core's own doing).
        self.generation = 0
        #: The client's connection-error count when it was last handed to librdkafka.
        self.connection_errors = 0
        #: An earlier attempt failed ambiguously: it may be in Kafka.
        self.maybe_written = False
        #: Acceptance order: failures of one key are re-sent in this order.
        self.order = 0
        #: The telemetry's span and start time (``None`` while nothing records).
        self.span: Any = None
        self.t0: float | None = None
        #: The latest attempt: when it must be acknowledged by (monotonic seconds), whether
        #: its report is still to come, and whether the core timed it out (``_core.deadlines``).
        self.deadline = 0.0
        self.pending = False
        self.expired = False
        #: No attempt can have been written: every failed report so far came without a
        #: partition (librdkafka never assigned one: no metadata for its topic).
        self.unsent = True

    def __call__(self, err: Any, msg: Any) -> None:
        # Runs inside Producer.poll() on the poll thread: only record, never settle here.
        # The report lives on the instance (no tuple per delivery for the cyclic collector),
        # and librdkafka's message, which holds a copy of the record, is dropped right away.
        self.err = err
        self.pending = False
        if err is None:
            enc = self.encoded
            self.receipt = DeliveryReceipt(
                enc.topic, msg.partition(), msg.offset(), msg.timestamp()[1], enc.event_id
            )
        elif msg.partition() is not None:
            self.unsent = False
        self._append(self)

    def refused(self, error: PublishError) -> None:
        """Report a re-send that librdkafka refused (a synthetic failed delivery)."""
        self.err = error
        self.pending = False
        self._append(self)

    def settle(self, outcome: DeliveryReceipt | PublishError) -> None:
        """Hand the final outcome to the sink."""
        self.sink.settle(self, outcome)


def _unbound(record: InFlight) -> None:
    raise RuntimeError("a record reported before the core took it")
