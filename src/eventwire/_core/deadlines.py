"""Delivery deadlines: eventwire times out an attempt itself, before librdkafka would.

librdkafka times out each message on its own (``message.timeout.ms``, scanned once a
second). When a partition's older messages time out in the queue (no connection yet, no
producer id yet) and the connection comes back before the newer ones time out, librdkafka
sends the newer ones at once, and the retry of an older one lands after a newer one of its key:
order per key is lost (seen on Apache Kafka with "coordinator load in progress" delaying the
producer id under load).

So the core keeps the records it handed to the transport in hand-over order, each with the
time it must be acknowledged by (``delivery_timeout`` after it was produced); librdkafka's
own timeout is a backstop, set later (``PublisherConfig._message_timeout_ms``). When the
oldest record still waiting passes its deadline, the poll thread fails **everything queued at
once** (a purge of the queue, in order), so no newer event of its key can be sent before it is
re-sent; a record still in flight (the broker holds it) makes the core replace the producer,
which purges that too.
Expired records report ``_MSG_TIMED_OUT``, as librdkafka would have. The newer records purged
with them are marked ``swept``: the purge is not their own failure, so they are re-sent
whatever the retry policy (``_core.decisions``), and keep their deadline.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Final

from confluent_kafka import KafkaError

if TYPE_CHECKING:
    from eventwire._core.record import InFlight


_PURGE_QUEUE: Final = KafkaError._PURGE_QUEUE


def mark_swept(reports: list[InFlight]) -> None:
    """Mark the records purged from the queue alongside expired ones (``reports``: what the
    purge reported, ``ProducerHandle.sweep``) as ``swept``."""
    for record in reports:
        err = record.err
        if not record.expired and isinstance(err, KafkaError) and err.code() == _PURGE_QUEUE:
            record.swept = True


class Deadlines:
    """The records handed to the transport, oldest first, with their deadlines.

    Producing threads append (``deque.append`` is atomic); only the poll thread pops. An
    entry is stale once its record reported (``pending`` false), was produced again (its
    ``deadline`` changed) or belongs to a replaced producer; stale entries are dropped when
    they reach the front. A swept record resumes with its deadline, appended after newer
    records (``arm``): found when the entries before it are, at most ``timeout`` late, still
    before librdkafka's own timeout of its re-send.
    """

    __slots__ = ("append", "entries", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.entries: deque[tuple[float, InFlight]] = deque()
        #: Producing threads' way in: ``append((record.deadline, record))`` after produce().
        self.append = self.entries.append

    def arm(self, record: InFlight) -> float:
        """Mark ``record`` as about to be produced (before ``produce``: its report may come
        back on the poll thread before ``produce`` returns); returns its deadline: a swept
        record's attempt goes on, with the deadline it had."""
        if record.swept:
            deadline = record.deadline  # until its next report settles (``Settlement``)
        else:
            deadline = record.deadline = time.monotonic() + self.timeout
        record.expired = False
        record.pending = True
        return deadline

    def expired(self, generation: int, now: float | None = None) -> list[InFlight]:
        """The records of producer ``generation`` still waiting past their deadline, oldest
        first, each marked ``expired`` and no longer tracked."""
        now = time.monotonic() if now is None else now
        entries = self.entries
        found: list[InFlight] = []
        while entries:
            deadline, record = entries[0]
            if (
                not record.pending
                or record.expired  # found already: a swept record's resumed entry
                or record.deadline != deadline
                or record.generation != generation
            ):
                entries.popleft()
                continue
            if deadline > now:
                break
            entries.popleft()
            record.expired = True
            found.append(record)
        return found
