"""Shared pieces of the fault suite: the event, the publishing driver and the tally.

Every test publishes ``EVENTWIRE_FAULT_EVENTS`` events (a small default for CI; ``make faults``
runs 100,000), injects faults when the publishing reaches given fractions of that count, then
reads the topic back and compares what arrived with what each caller was told.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

import eventwire
from eventwire.testing import ConsumedRecord, capture_logs

#: Events per test; ``make faults`` sets 100,000.
EVENTS = int(os.environ.get("EVENTWIRE_FAULT_EVENTS", "4000"))
#: Keys the events are spread over; order is checked per key.
KEYS = 16
#: Events per ``publish_many`` call, and calls in flight at once.
CHUNK = 200
WINDOW = 5

#: Spool modes the fault tests run in: without a spool events are published
#: (``publish_many``), with one they are accepted (``accept_many``: durable) and their
#: deliveries awaited.
SPOOL_MODES = ("spool-off", "spool-on")


@eventwire.event(topic="ticks", key="stream", type="fault.tick", version=1)
class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """One event of the fault suite: ``seq`` counts up per ``stream`` (the key)."""

    stream: str
    seq: int
    n: int  # position in the whole run
    pad: str


def ticks(count: int = EVENTS, keys: int = KEYS) -> list[Tick]:
    pad = "x" * 200
    return [Tick(stream=f"s{n % keys:02d}", seq=n // keys, n=n, pad=pad) for n in range(count)]


@pytest.fixture(params=SPOOL_MODES)
def spool_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def publisher_config(
    spool_mode: str, bootstrap_servers: str, spool_dir: Path | None = None, **settings: Any
) -> eventwire.PublisherConfig:
    """The config of one fault test in one spool mode (``spool-on`` needs ``spool_dir``)."""
    if spool_mode == "spool-on":
        assert spool_dir is not None, "spool-on needs a directory for the spool file"
        settings["spool_path"] = spool_dir / "spool.db"
    else:
        assert spool_mode == "spool-off"
    return eventwire.PublisherConfig(bootstrap_servers=bootstrap_servers, **settings)


# -- publishing under faults -----------------------------------------------------------------


Fault = Callable[["Run"], Coroutine[Any, Any, None]]


@dataclass
class Run:
    """What one publishing run sent and was told, filled in as chunks complete."""

    events: Sequence[Tick]
    outcomes: list[eventwire.PublishOutcome | None] = field(default_factory=list)
    submitted: int = 0
    settled: int = 0
    errors: int = 0
    accepted: int = 0  # with a spool: events that were durable when accept_many returned
    logs: list[MutableMapping[str, Any]] = field(default_factory=list)

    async def until(self, condition: Callable[[], bool], *, within: float, what: str) -> None:
        """Wait (polling) until ``condition()``; fail the test after ``within`` seconds."""
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, f"not within {within:g} s: {what}"
            await asyncio.sleep(0.01)


async def publish_under_faults(
    publisher: eventwire.AsyncPublisher,
    events: Sequence[Tick],
    faults: Sequence[tuple[float, Fault]],
) -> Run:
    """Publish ``events`` in chunks (``WINDOW`` calls in flight) and start each fault once
    the given fraction of the events was handed to the publisher and the previous fault has
    ended (publishing waits for it meanwhile). Returns when every event is settled and every
    fault has ended."""
    run = Run(events, outcomes=[None] * len(events))
    pending_faults = sorted(faults, key=lambda fault: fault[0])
    running: set[asyncio.Task[None]] = set()
    in_flight: set[asyncio.Task[None]] = set()

    spooled = publisher.config.spool_path is not None

    async def chunk(start: int, part: Sequence[Tick]) -> None:
        if spooled:
            handles = await publisher.accept_many(part)
            run.accepted += sum(1 for h in handles if isinstance(h, eventwire.Accepted))
            outcomes = [await _delivered(h) for h in handles]
        else:
            outcomes = await publisher.publish_many(part)
        run.outcomes[start : start + len(part)] = outcomes
        run.settled += len(part)
        run.errors += sum(1 for o in outcomes if not isinstance(o, eventwire.DeliveryReceipt))

    with capture_logs() as logs:
        run.logs = logs
        for start in range(0, len(events), CHUNK):
            while pending_faults and start >= pending_faults[0][0] * len(events):
                # One fault at a time: the next starts once the previous one has ended.
                for task in running:
                    await task
                _, fault = pending_faults.pop(0)
                running = {asyncio.create_task(fault(run))}
            if len(in_flight) >= WINDOW:
                done, in_flight = await asyncio.wait(in_flight, return_when="FIRST_COMPLETED")
                for task in done:
                    task.result()
            part = events[start : start + CHUNK]
            in_flight.add(asyncio.create_task(chunk(start, part)))
            run.submitted = start + len(part)
        for task in [*in_flight, *running]:
            await task
    return run


async def _delivered(
    handle: eventwire.Accepted | eventwire.EventwireError,
) -> eventwire.PublishOutcome:
    if not isinstance(handle, eventwire.Accepted):  # kept out of the spool: its error
        return handle
    try:
        return await handle.delivered()
    except eventwire.PublishError as error:
        return error


# -- the tally -------------------------------------------------------------------------------


def _ambiguous_ids(run: Run) -> set[str]:
    """Events whose outcome was ambiguous at some point (the broker may have written them)."""
    found = {
        str(log["event_id"])
        for log in run.logs
        if log.get("error_class") == "ambiguous" and "event_id" in log
    }
    found.update(o.event_id for o in run.outcomes if isinstance(o, eventwire.AmbiguousPublishError))
    return found


@dataclass(frozen=True)
class Tally:
    """Published events against what was read back."""

    published: int
    receipts: int
    errors: int
    consumed: int  # records read back, duplicates included
    lost: int  # a receipt, but never read back
    silent: int  # neither read back nor reported as an error
    duplicates: int  # extra copies read back (same ce_id)
    unexplained_duplicates: int  # duplicates of an event that never had an ambiguous outcome
    errored_but_delivered: int  # reported as an error, yet read back
    unexplained_errored_but_delivered: int  # ... without any ambiguous outcome
    order_violations: int  # keys whose first copies are not in publishing order
    incomplete_keys: int  # keys whose read-back sequence is not the published one
    recreations: int
    ambiguous: int

    def line(self) -> str:
        return (
            f"published={self.published} receipts={self.receipts} errors={self.errors} "
            f"consumed={self.consumed} lost={self.lost} silent={self.silent} "
            f"duplicates={self.duplicates} "
            f"(unexplained {self.unexplained_duplicates}) "
            f"errored_but_delivered={self.errored_but_delivered} "
            f"(unexplained {self.unexplained_errored_but_delivered}) "
            f"order_violations={self.order_violations} incomplete_keys={self.incomplete_keys} "
            f"ambiguous={self.ambiguous} recreations={self.recreations}"
        )


def tally(run: Run, records: Sequence[ConsumedRecord]) -> Tally:
    """Compare the run with the records read back (in (partition, offset) order)."""
    outcomes = run.outcomes
    assert all(o is not None for o in outcomes), "an event has no outcome"
    ids: list[str] = []
    for outcome in outcomes:
        event_id = getattr(outcome, "event_id", None)
        assert isinstance(event_id, str), f"an outcome without an event id: {outcome!r}"
        ids.append(event_id)
    published = set(ids)
    assert len(published) == len(ids), "ce_id reused across events"
    receipts = {o.event_id for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)}
    errors = published - receipts

    by_id = dict(zip(ids, run.events, strict=True))
    copies: Counter[str] = Counter()
    first_seqs: dict[str, list[int]] = defaultdict(list)
    for record in records:
        raw = record.header("ce_id")
        assert raw is not None, "a record without ce_id"
        event_id = raw.decode()
        assert event_id in by_id, f"read back an event nobody published: {event_id}"
        tick = msgspec.json.decode(record.value or b"", type=Tick)
        assert tick == by_id[event_id], "the record's body does not match its ce_id"
        copies[event_id] += 1
        if copies[event_id] == 1:
            first_seqs[tick.stream].append(tick.seq)
    consumed = set(copies)
    ambiguous = _ambiguous_ids(run)
    duplicated = {event_id for event_id, n in copies.items() if n > 1}
    errored_delivered = errors & consumed
    expected_seqs: dict[str, list[int]] = defaultdict(list)
    for event in run.events:
        expected_seqs[event.stream].append(event.seq)
    return Tally(
        published=len(published),
        receipts=len(receipts),
        errors=len(errors),
        consumed=sum(copies.values()),
        lost=len(receipts - consumed),
        silent=len(published - consumed - errors),
        duplicates=sum(n - 1 for n in copies.values()),
        unexplained_duplicates=len(duplicated - ambiguous),
        errored_but_delivered=len(errored_delivered),
        unexplained_errored_but_delivered=len(errored_delivered - ambiguous),
        order_violations=sum(1 for seqs in first_seqs.values() if seqs != sorted(seqs)),
        incomplete_keys=sum(
            1 for stream, seqs in expected_seqs.items() if first_seqs.get(stream) != seqs
        ),
        recreations=sum(1 for log in run.logs if log["event"] == "eventwire.producer_recreated"),
        ambiguous=len(ambiguous),
    )


def assert_all_delivered_in_order(counts: Tally) -> None:
    """Every event delivered (no error, none lost), every key complete and in order, and a
    duplicate only where the outcome was ambiguous."""
    assert counts.errors == 0
    assert counts.lost == 0
    assert counts.silent == 0
    assert counts.incomplete_keys == 0
    assert counts.unexplained_duplicates == 0


@pytest.fixture
def report(
    record_property: Callable[[str, object], None], request: pytest.FixtureRequest
) -> Callable[[Tally], None]:
    """Print a tally (``-rA`` shows it) and attach its figures to the junit report."""

    def show(counts: Tally) -> None:
        print(f"{request.node.name}: {counts.line()}")
        for name, value in vars(counts).items():
            record_property(name, value)

    return show
