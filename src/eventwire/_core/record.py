"""The in-flight record: one accepted event on its way to Kafka, and the sink that settles it.

The core builds every record (``ProducerCore.record``); a publisher only supplies the *sink*
that turns the final outcome into what its caller waits on (a future, a batch slot, a thread
event, a spool row). Every field is set by the constructor: no module fills a slot later
and reads it back with a default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from eventwire._codec import EncodedEvent
from eventwire._outcome import DeliveryReceipt

if TYPE_CHECKING:
    from eventwire._errors import PublishError


class Sink(Protocol):
    """Where the final outcome of a record goes. ``settle`` runs where outcomes are settled
    (the event loop thread for the async publisher, the poll thread for the sync one), once
    per record."""

    def settle(self, record: InFlight, outcome: DeliveryReceipt | PublishError) -> None: ...


def _unbound(record: InFlight) -> None:
    raise RuntimeError("a record reported before the core took it")


class InFlight(msgspec.Struct, eq=False):
    """One accepted event waiting for its delivery report.

    The instance is librdkafka's ``on_delivery`` callback, so producing allocates no closure;
    the callback only records the report and queues the record for the poll thread's next
    hand-over. ``slot`` is the record's place in its sink (a batch index), so a batch of
    10,000 events shares one sink.

    A ``msgspec.Struct`` (compared by identity) rather than a class with ``__slots__``: its
    defaults are set in C, which halves the cost of making one, once per event. It stays
    tracked by the cyclic collector: a record can be part of a cycle through its sink.
    """

    encoded: EncodedEvent
    sink: Sink
    slot: int = 0
    #: A durable event (in the spool) is never given up for a transient failure: when its
    #: retries run out it is *parked* (re-sent later, its key still held).
    durable: bool = False
    _append: Callable[[InFlight], None] = _unbound
    #: The latest report, until settled: ``None`` (delivered: ``receipt`` says where), a
    #: ``KafkaError``, or the ``PublishError`` of a re-send librdkafka refused.
    err: Any = None
    receipt: DeliveryReceipt | None = None
    failures: int = 0
    first_failure: float = 0.0
    #: The producer generation it was last handed to (a replaced producer's reports are
    #: purges of the core's own doing).
    generation: int = 0
    #: The client's connection-error count when it was last handed to librdkafka.
    connection_errors: int = 0
    #: An earlier attempt failed ambiguously: it may be in Kafka.
    maybe_written: bool = False
    #: Acceptance order: failures of one key are re-sent in this order.
    order: int = 0
    #: The telemetry's span of this event and its start time (``None`` while nothing
    #: records, and for the events of a batch call: its telemetry records them), and the
    #: span of the batch call it belongs to.
    span: Any = None
    t0: float | None = None
    call_span: Any = None
    #: The latest attempt: when it must be acknowledged by (monotonic seconds), whether its
    #: report is still to come, and whether the core timed it out (``_core.deadlines``).
    deadline: float = 0.0
    pending: bool = False
    expired: bool = False
    #: Purged from the queue because an older record passed its deadline: the latest
    #: report is not this record's own failure (``_core.deadlines``); still set while its
    #: attempt resumes, until its next report.
    swept: bool = False
    #: No attempt can have been written: every failed report so far came without a
    #: partition (librdkafka never assigned one: no metadata for its topic).
    unsent: bool = True

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
