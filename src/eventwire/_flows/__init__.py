"""The publishing flows, written once for both twins: publish, publish_many, accept,
accept_many and close.

Each flow is a generator that does the work and *yields what it waits for* (an operation
below); ``AsyncPublisher`` and ``Publisher`` are thin drivers that perform the wait their way
(awaiting, or blocking the calling thread) and send the result back in (httpx's
``Auth.auth_flow``, h11). So the twins cannot drift: the only code that differs between them
is how they wait, and the sinks their callers wait on.

What happens to an event, in order:

1. **codec** — validate, encode, key, CloudEvents headers. A bad event raises
   ``EventValidationError`` and never reaches Kafka;
2. **breaker** — while the circuit breaker is open the event is refused at once with
   ``CircuitOpenError``; with a spool it is committed to the spool instead and produced when
   the breaker closes (``_durable``);
3. **produce** — the core takes it; a full local queue makes the call wait for room (first
   come, first served, up to ``queue_full_timeout``, then ``QueueFullError``);
4. **outcome** — the core settles its delivery report, retries, dead-letters or fails it as
   ``_core.decisions`` says, and the caller's sink gets the outcome.
"""

from eventwire._flows.closing import close
from eventwire._flows.ops import (
    Blocking,
    Breathe,
    Flow,
    Operation,
    Room,
    Tick,
    Wait,
    run,
    run_async,
)
from eventwire._flows.publishing import TAKEN, publish, publish_at_once, publish_many
from eventwire._flows.spooling import accept, accept_many
from eventwire._flows.transacting import begin as begin_transaction
from eventwire._flows.transacting import end as end_transaction
from eventwire._flows.transacting import publish as publish_in_transaction
from eventwire._flows.transacting import publish_many as publish_many_in_transaction
from eventwire._flows.transacting import send_offsets

__all__ = [
    "TAKEN",
    "Blocking",
    "Breathe",
    "Flow",
    "Operation",
    "Room",
    "Tick",
    "Wait",
    "accept",
    "accept_many",
    "begin_transaction",
    "close",
    "end_transaction",
    "publish",
    "publish_at_once",
    "publish_in_transaction",
    "publish_many",
    "publish_many_in_transaction",
    "run",
    "run_async",
    "send_offsets",
]
