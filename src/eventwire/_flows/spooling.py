"""accept, accept_many, and the submission to the spool every spooled call goes through."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eventwire._codec import EncodedEvent
from eventwire._core.record import Sink
from eventwire._core.state import State
from eventwire._durable.relay import Relay, Submission
from eventwire._errors import EventwireError, PublisherClosedError, SpoolFullError
from eventwire._flows.ops import BREATHE, SPOOL_SLICE, TICK, Flow, Tick, Wait, refuse_rest
from eventwire._messages import CLOSED_MESSAGE, spool_full_error

if TYPE_CHECKING:
    from eventwire._publisher import PublisherBase
    from eventwire._telemetry import CallTelemetry


def accept(pub: PublisherBase, encoded: EncodedEvent, sink: Sink) -> Flow[None]:
    """Commit one event to the spool; returns once it is durable."""
    yield from submit_one(pub, pub._need_spool(), encoded, sink)


def accept_many(
    pub: PublisherBase,
    events: Sequence[Any],
    topic: str | None,
    results: list[Any],
    target: Callable[[EncodedEvent, int], Sink],
) -> Flow[None]:
    """Commit events to the spool in order; ``results[i]`` is set to the error that kept
    event ``i`` out (the driver set the handles of the others through ``target``)."""
    relay = pub._need_spool()
    submissions, indexes = yield from encode_for_spool(pub, events, topic, results, target)
    # Each accepted event's send ends later, at its delivery: one span per message, as for
    # a lone accept (no call telemetry).
    refused = yield from submit(pub, relay, submissions)
    if refused is not None:
        first, error = refused
        for index in indexes[first:]:
            results[index] = error


def encode_for_spool(
    pub: PublisherBase,
    events: Sequence[Any],
    topic: str | None,
    outcomes: list[Any],
    target: Callable[[EncodedEvent, int], Sink],
) -> Flow[tuple[list[Submission], list[int]]]:
    """Encode ``events`` into submissions; a refused event's error goes into ``outcomes`` at
    its index; ``target`` gives each event's sink. Returns the submissions and their
    indexes."""
    encode = pub._batch_encoder()
    lifecycle = pub._core.lifecycle
    submissions: list[Submission] = []
    indexes: list[int] = []
    for index, event in enumerate(events):
        if index and not index % SPOOL_SLICE:
            yield BREATHE
            if lifecycle.state is not State.OPEN:  # closing meanwhile
                refuse_rest(outcomes, index, pub._core.closed_message)
                break
        try:
            enc = encode(event, topic)
        except EventwireError as exc:
            outcomes[index] = exc
            continue
        submissions.append((enc, target(enc, index), index))
        indexes.append(index)
    return submissions, indexes


def submit_one(pub: PublisherBase, relay: Relay, encoded: EncodedEvent, sink: Sink) -> Flow[None]:
    refused = yield from submit(pub, relay, [(encoded, sink, 0)])
    if refused is not None:
        raise refused[1]


def submit(
    pub: PublisherBase,
    relay: Relay,
    submissions: Sequence[Submission],
    call: CallTelemetry | None = None,
) -> Flow[tuple[int, EventwireError] | None]:
    """Hand ``submissions`` to the spool writer in order, as room allows, and wait until they
    are committed. Returns ``None``, or ``(first, error)``: those from ``first`` on were not
    accepted (the spool stayed full, or the publisher closed).

    Raises:
        SpoolError: a commit failed.
    """
    lifecycle = pub._core.lifecycle
    commits = []
    done = 0
    refused: tuple[int, EventwireError] | None = None
    while done < len(submissions):
        if lifecycle.state is not State.OPEN:  # closing began while this call ran
            refused = (done, PublisherClosedError(CLOSED_MESSAGE))
            break
        room = relay.room()
        if room <= 0:
            try:
                yield from _spool_room(pub, relay, submissions[done][0])
            except (SpoolFullError, PublisherClosedError) as exc:
                refused = (done, exc)
                break
            continue
        part = submissions[done : done + room]
        on_commit, commit = pub._commit_waiter()
        try:
            relay.submit(part, on_commit, call)
        except PublisherClosedError as exc:  # closed while this call waited or encoded
            refused = (done, exc)
            break
        commits.append(commit)
        done += len(part)
    for commit in commits:
        yield Wait(commit)
    return refused


def _spool_room(pub: PublisherBase, relay: Relay, enc: EncodedEvent) -> Flow[None]:
    deadline = time.monotonic() + pub._config.spool_full_timeout
    while relay.room() <= 0:
        pub._check_open()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise spool_full_error(enc, relay.max_events, pub._config.spool_full_timeout)
        yield Tick(min(remaining, TICK))
