"""Throughput cases: N events to a fresh topic, every one confirmed by the broker.

Each case gets a ``Workload`` (the events, their pre-encoded bytes, a fresh 3-partition topic),
warms its client up outside the timed section (connection, producer id, topic metadata, code
paths), then times publishing ``workload.count`` events until the last confirmation. It
returns a ``Measurement`` with wall time, process CPU time (every thread of this process:
librdkafka's, eventwire's poll thread, AIOProducer's executor) and the number of per-message
confirmations it saw.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import gc
import itertools
import os
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import confluent_kafka
import msgspec
from confluent_kafka.aio import AIOProducer

import eventwire
import eventwire.codec
from events import DECLARED_TOPIC, OrderPlaced

#: Events per ``publish_many`` call (and per AIOProducer gather).
CHUNK: Final = 10_000
#: Events published before the timed section of every case (same topic, not counted).
WARMUP_EVENTS: Final = 100
#: Coroutines awaiting one ``publish()`` each in ``async_publish_concurrent``.
CONCURRENT_WORKERS: Final = 1_000
#: ``poll(0)`` interval of the raw ceiling, in messages.
RAW_POLL_EVERY: Final = 1_000
#: Seconds a flush may take before a case is declared failed.
FLUSH_TIMEOUT: Final = 120.0


#: ``await publish(event)`` of a concurrent case: its receipt, or raises.
PublishFn = Callable[[OrderPlaced], Awaitable[Any]]
#: The 7 CloudEvents headers eventwire writes for ``OrderPlaced``, for the hand-written references:
#: each event copies them and sets its own ``ce_id`` (``ce_time`` changes once a millisecond in
#: eventwire, formatted once a second: ~free, so it stays fixed here).
CE_HEADERS: Final[dict[str, str | bytes]] = {
    "ce_specversion": b"1.0",
    "ce_id": "",
    "ce_source": b"/eventwire",
    "ce_type": b"order.placed",
    "ce_eventversion": b"1",
    "content-type": b"application/json",
    "ce_time": b"2026-11-28T12:00:00.000Z",
}


@dataclass(frozen=True)
class Workload:
    """What one case publishes and where."""

    bootstrap_servers: str
    topic: str
    events: Sequence[OrderPlaced]
    payloads: Sequence[tuple[bytes, bytes]]  # (value, key), pre-encoded
    warmup_events: Sequence[OrderPlaced]
    warmup_payloads: Sequence[tuple[bytes, bytes]]

    @property
    def count(self) -> int:
        return len(self.events)

    def config(self, **changes: Any) -> eventwire.PublisherConfig:
        """An eventwire config sending ``OrderPlaced`` to this workload's topic."""
        return eventwire.PublisherConfig(
            bootstrap_servers=self.bootstrap_servers,
            topic_map={DECLARED_TOPIC: self.topic},
            **changes,
        )


@dataclass(frozen=True)
class Measurement:
    """One timed section."""

    wall_s: float
    cpu_s: float
    confirmed: int


class Stopwatch:
    """Wall (``perf_counter``) and process CPU (``process_time``) time of a block.

    A full garbage collection runs before the clocks start, so one case does not pay for the
    garbage of the previous one.
    """

    wall_s: float = 0.0
    cpu_s: float = 0.0

    def __enter__(self) -> Stopwatch:
        gc.collect()
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu_s = time.process_time() - self._cpu0
        self.wall_s = time.perf_counter() - self._wall0


class CaseFailed(AssertionError):
    """A case did not confirm every event (or its client failed)."""


def librdkafka_settings(bootstrap_servers: str, preset: str = "durable") -> dict[str, Any]:
    """eventwire's librdkafka settings for ``preset``, without callables (the raw baselines
    use exactly the producer settings eventwire uses)."""
    config = eventwire.PublisherConfig(
        bootstrap_servers=bootstrap_servers,
        preset=preset,  # type: ignore[arg-type]
    )
    return {k: v for k, v in config._to_librdkafka().items() if not callable(v)}


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _expect(workload: Workload, confirmed: int, errors: Sequence[object] = ()) -> None:
    if confirmed != workload.count or errors:
        first = f"; first error: {errors[0]!r}" if errors else ""
        raise CaseFailed(
            f"{confirmed:,} of {workload.count:,} events confirmed, {len(errors):,} errors{first}"
        )


def _receipts(outcomes: Sequence[object], errors: list[object]) -> int:
    confirmed = 0
    for outcome in outcomes:
        if type(outcome) is eventwire.DeliveryReceipt:
            confirmed += 1
        else:
            errors.append(outcome)
    return confirmed


# -- 1. raw ceiling ----------------------------------------------------------------------------


def raw_ceiling(workload: Workload) -> Measurement:
    """``Producer.produce(topic, value, key)``, no callback, ``poll(0)`` every 1000, ``flush()``.

    There is no per-message callback to count; ``flush()`` returning 0 means librdkafka holds
    no undelivered message. The caller also checks the topic's offsets afterwards.
    """
    producer = confluent_kafka.Producer(librdkafka_settings(workload.bootstrap_servers))
    produce = producer.produce
    poll = producer.poll
    topic = workload.topic
    for value, key in workload.warmup_payloads:
        produce(topic, value, key)
    if producer.flush(FLUSH_TIMEOUT) != 0:
        raise CaseFailed("warm-up messages were not delivered")
    with Stopwatch() as watch:
        for i, (value, key) in enumerate(workload.payloads, 1):
            try:
                produce(topic, value, key)
            except BufferError:  # queue full (only when N exceeds the preset's queue size)
                poll(0.005)
                produce(topic, value, key)
            if i % RAW_POLL_EVERY == 0:
                poll(0)
        remaining = producer.flush(FLUSH_TIMEOUT)
    producer.close()
    if remaining != 0:
        raise CaseFailed(f"{remaining:,} messages still undelivered after flush()")
    return Measurement(watch.wall_s, watch.cpu_s, workload.count)


# -- 1b. raw with CloudEvents headers (reference, not a target) -------------------------------


def raw_headers_callback(workload: Workload) -> Measurement:
    """Raw ``produce()`` of pre-encoded bytes WITH eventwire's CloudEvents headers and a
    per-message callback: what any CloudEvents publisher pays before its own code runs.

    Informational: it is not an eventwire case and has no target; it shows how much of the
    ceiling is left once every record carries its headers and a delivery report is counted.
    """
    codec = eventwire.codec.EventCodec(validate=False)
    headers = [codec.encode(event).headers for event in workload.events]
    producer = confluent_kafka.Producer(librdkafka_settings(workload.bootstrap_servers))
    produce = producer.produce
    poll = producer.poll
    topic = workload.topic
    delivered = [0]

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is None:
            delivered[0] += 1

    for value, key in workload.warmup_payloads:
        produce(topic, value, key)
    if producer.flush(FLUSH_TIMEOUT) != 0:
        raise CaseFailed("warm-up messages were not delivered")
    with Stopwatch() as watch:
        for i, ((value, key), record_headers) in enumerate(
            zip(workload.payloads, headers, strict=True), 1
        ):
            try:
                produce(topic, value, key, on_delivery=on_delivery, headers=record_headers)
            except BufferError:
                poll(0.005)
                produce(topic, value, key, on_delivery=on_delivery, headers=record_headers)
            if i % RAW_POLL_EVERY == 0:
                poll(0)
        remaining = producer.flush(FLUSH_TIMEOUT)
    producer.close()
    if remaining != 0:
        raise CaseFailed(f"{remaining:,} messages still undelivered after flush()")
    return Measurement(watch.wall_s, watch.cpu_s, delivered[0])


# -- 1c. the least a validating CloudEvents publisher does (reference, not a target) ----------


def handwritten_minimum(workload: Workload) -> Measurement:
    """Hand-written minimum of a validating CloudEvents publisher, one loop: per event the compiled
    check, ``msgspec`` encode, key, the 7 CloudEvents headers (fresh ``ce_id``), ``produce()``
    with a per-message callback; ``poll(0)`` every 1000, ``flush()``.

    Informational: see ``_minimum``.
    """
    return _minimum(workload, validate=True)


def handwritten_minimum_novalidate(workload: Workload) -> Measurement:
    """``handwritten_minimum`` without the check: encode, key, headers, ``produce()``."""
    return _minimum(workload, validate=False)


def _minimum(workload: Workload, *, validate: bool) -> Measurement:
    """The least a CloudEvents publisher does per event, hand-written in one loop.

    Informational: the per-event work any publisher meeting the core issue must do, with no
    bookkeeping, no per-event outcome object, no asyncio and no second thread. The distance
    from here to ``async_publish_many`` is eventwire's own overhead; the distance from here to
    the ceiling is the floor no such publisher gets under on this machine.
    """
    # eventwire's compiled pre-check of the event type: the cheapest correct validation known.
    check = eventwire.codec.EventCodec()._type_codec(OrderPlaced).check
    encode = msgspec.json.Encoder().encode
    producer = confluent_kafka.Producer(librdkafka_settings(workload.bootstrap_servers))
    produce = producer.produce
    poll = producer.poll
    topic = workload.topic
    delivered = [0]

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is None:
            delivered[0] += 1

    for value, key in workload.warmup_payloads:
        produce(topic, value, key, on_delivery=on_delivery)
    if producer.flush(FLUSH_TIMEOUT) != 0:
        raise CaseFailed("warm-up messages were not delivered")
    delivered[0] = 0
    new_headers = CE_HEADERS.copy
    with Stopwatch() as watch:
        for i, event in enumerate(workload.events, 1):
            if validate and not check(event):
                raise CaseFailed(f"event {i} did not pass the check")
            value = encode(event)
            key = event.order_id.encode()
            headers = new_headers()
            headers["ce_id"] = f"0123456789abcdef-{i:x}"
            try:
                produce(topic, value, key, on_delivery=on_delivery, headers=headers)
            except BufferError:
                poll(0.005)
                produce(topic, value, key, on_delivery=on_delivery, headers=headers)
            if i % RAW_POLL_EVERY == 0:
                poll(0)
        remaining = producer.flush(FLUSH_TIMEOUT)
    producer.close()
    if remaining != 0:
        raise CaseFailed(f"{remaining:,} messages still undelivered after flush()")
    return Measurement(watch.wall_s, watch.cpu_s, delivered[0])


def handwritten_minimum_outcome(workload: Workload) -> Measurement:
    """``handwritten_minimum`` plus the per-event outcome, per chunk: a receipt per event.

    Informational: see ``_minimum_outcome``.
    """
    return _minimum_outcome(workload, validate=True)


def handwritten_minimum_outcome_novalidate(workload: Workload) -> Measurement:
    """``handwritten_minimum_outcome`` without the check."""
    return _minimum_outcome(workload, validate=False)


def _minimum_outcome(workload: Workload, *, validate: bool) -> Measurement:
    """The least a CloudEvents publisher does for ``publish_many(chunk)``'s contract, hand-written
    in one loop: ``_minimum``'s work per event, plus the per-event outcome the target names.

    confluent-kafka's Python API has one per-message handle, the ``on_delivery`` callable, so
    the outcome needs one callable object per event that knows its place; it writes the
    event's ``DeliveryReceipt`` (topic, partition, offset, timestamp, ``ce_id``) into the
    chunk's outcome list. As the case's caller does, each chunk's outcomes are complete
    (``flush()``) before the next chunk starts. No asyncio, no second thread, no counters,
    retries or close bookkeeping.
    """
    check = eventwire.codec.EventCodec()._type_codec(OrderPlaced).check
    encode = msgspec.json.Encoder().encode
    producer = confluent_kafka.Producer(librdkafka_settings(workload.bootstrap_servers))
    produce = producer.produce
    poll = producer.poll
    topic = workload.topic
    receipt = eventwire.DeliveryReceipt
    outcomes: list[Any] = []

    class Slot:
        __slots__ = ("event_id", "index")

        def __init__(self, index: int, event_id: str) -> None:
            self.index = index
            self.event_id = event_id

        def __call__(self, err: Any, msg: Any) -> None:
            outcomes[self.index] = (
                err
                if err is not None
                else receipt(
                    topic, msg.partition(), msg.offset(), msg.timestamp()[1], self.event_id
                )
            )

    for value, key in workload.warmup_payloads:
        produce(topic, value, key)
    if producer.flush(FLUSH_TIMEOUT) != 0:
        raise CaseFailed("warm-up messages were not delivered")
    new_headers = CE_HEADERS.copy
    confirmed = 0
    errors: list[object] = []
    counter = 0
    with Stopwatch() as watch:
        for chunk in chunks(workload.events, CHUNK):
            outcomes = [None] * len(chunk)
            for index, event in enumerate(chunk):
                if validate and not check(event):
                    raise CaseFailed(f"event {counter} did not pass the check")
                counter += 1
                value = encode(event)
                key = event.order_id.encode()
                headers = new_headers()
                event_id = headers["ce_id"] = f"0123456789abcdef-{counter:x}"
                slot = Slot(index, event_id)
                try:
                    produce(topic, value, key, on_delivery=slot, headers=headers)
                except BufferError:
                    poll(0.005)
                    produce(topic, value, key, on_delivery=slot, headers=headers)
                if counter % RAW_POLL_EVERY == 0:
                    poll(0)
            if producer.flush(FLUSH_TIMEOUT) != 0:
                raise CaseFailed("a chunk was not delivered")
            confirmed += _receipts(outcomes, errors)
    producer.close()
    _expect(workload, confirmed, errors)
    return Measurement(watch.wall_s, watch.cpu_s, confirmed)


def handwritten_straightforward(workload: Workload) -> Measurement:
    """What a user would write by hand: typed-decode check, ``uuid4``, ``isoformat``, a callback
    per event writing its receipt, per chunk of 10,000.

    The second row of issue 19: per event ``msgspec.json.encode``, a typed
    ``msgspec.json.decode(value, type=OrderPlaced)`` as the validation, a headers dict with
    ``str(uuid.uuid4())`` and ``datetime.now(UTC).isoformat()``, ``produce()`` with a closure
    that stores the receipt; ``poll(0)`` every 1000, each chunk flushed before the next.
    """
    encode = msgspec.json.Encoder().encode
    decode = msgspec.json.Decoder(OrderPlaced).decode
    producer = confluent_kafka.Producer(librdkafka_settings(workload.bootstrap_servers))
    produce = producer.produce
    poll = producer.poll
    topic = workload.topic
    receipt = eventwire.DeliveryReceipt
    for value, key in workload.warmup_payloads:
        produce(topic, value, key)
    if producer.flush(FLUSH_TIMEOUT) != 0:
        raise CaseFailed("warm-up messages were not delivered")
    confirmed = 0
    errors: list[object] = []
    counter = 0
    with Stopwatch() as watch:
        for chunk in chunks(workload.events, CHUNK):
            outcomes: list[Any] = [None] * len(chunk)
            for index, event in enumerate(chunk):
                value = encode(event)
                decode(value)  # raises msgspec.ValidationError on a bad event
                counter += 1
                event_id = str(uuid.uuid4())
                headers = {
                    "ce_specversion": b"1.0",
                    "ce_id": event_id,
                    "ce_source": b"/eventwire",
                    "ce_type": b"order.placed",
                    "ce_eventversion": b"1",
                    "content-type": b"application/json",
                    "ce_time": dt.datetime.now(dt.UTC).isoformat(),
                }

                def on_delivery(
                    err: Any,
                    msg: Any,
                    index: int = index,
                    event_id: str = event_id,
                    slots: list[Any] = outcomes,
                ) -> None:
                    slots[index] = (
                        err
                        if err is not None
                        else receipt(
                            topic, msg.partition(), msg.offset(), msg.timestamp()[1], event_id
                        )
                    )

                key = event.order_id.encode()
                try:
                    produce(topic, value, key, on_delivery=on_delivery, headers=headers)
                except BufferError:
                    poll(0.005)
                    produce(topic, value, key, on_delivery=on_delivery, headers=headers)
                if counter % RAW_POLL_EVERY == 0:
                    poll(0)
            if producer.flush(FLUSH_TIMEOUT) != 0:
                raise CaseFailed("a chunk was not delivered")
            confirmed += _receipts(outcomes, errors)
    producer.close()
    _expect(workload, confirmed, errors)
    return Measurement(watch.wall_s, watch.cpu_s, confirmed)


# -- 2. AIOProducer ----------------------------------------------------------------------------


async def _aio(workload: Workload) -> Measurement:
    # AIOProducer resolves a message's future inside Producer.poll(), which it runs only right
    # after each produce_batch of 1000 and on flush(). A background task keeps polling (as
    # eventwire's poll thread does), so futures resolve while later chunks are produced.
    settings = librdkafka_settings(workload.bootstrap_servers)
    topic = workload.topic
    errors: list[object] = []
    async with AIOProducer(settings) as producer:
        warm = [
            await producer.produce(topic, value, key) for value, key in workload.warmup_payloads
        ]
        await producer.flush()
        await asyncio.gather(*warm)

        polling = True

        async def poller() -> None:
            while polling:
                await producer.poll(0.05)

        poll_task = asyncio.create_task(poller())
        try:
            with Stopwatch() as watch:
                confirmed = 0
                in_flight: deque[asyncio.Future[list[Any]]] = deque()
                for chunk in chunks(workload.payloads, CHUNK):
                    futures = [await producer.produce(topic, value, key) for value, key in chunk]
                    in_flight.append(asyncio.gather(*futures, return_exceptions=True))
                    while len(in_flight) > 2:
                        confirmed += _messages(await in_flight.popleft(), errors)
                await producer.flush()  # hands over the buffer's last partial batch
                while in_flight:
                    confirmed += _messages(await in_flight.popleft(), errors)
        finally:
            polling = False
            await poll_task
    _expect(workload, confirmed, errors)
    return Measurement(watch.wall_s, watch.cpu_s, confirmed)


def _messages(results: Sequence[Any], errors: list[object]) -> int:
    confirmed = 0
    for result in results:
        if isinstance(result, BaseException):
            errors.append(result)
        else:
            confirmed += 1
    return confirmed


def aioproducer(workload: Workload) -> Measurement:
    """``confluent_kafka.aio.AIOProducer`` with the same settings, every future awaited."""
    return asyncio.run(_aio(workload))


# -- 2b. aiokafka (a peer) ---------------------------------------------------------------------


async def _aiokafka(workload: Workload) -> Measurement:
    # Imported here: aiokafka is a peer measured when installed (the `bench` extra).
    from aiokafka import AIOKafkaProducer

    encode = msgspec.json.Encoder().encode
    topic = workload.topic
    producer = AIOKafkaProducer(
        bootstrap_servers=workload.bootstrap_servers,
        acks="all",
        linger_ms=5,  # no idempotence: Tansu refuses aiokafka's InitProducerId
    )
    errors: list[object] = []
    try:
        await producer.start()
        for value, key in workload.warmup_payloads:
            await producer.send_and_wait(topic, value, key=key)
        confirmed = 0
        counter = 0
        with Stopwatch() as watch:
            for chunk in chunks(workload.events, CHUNK):
                futures = []
                for event in chunk:
                    counter += 1
                    headers = CE_HEADERS.copy()
                    headers["ce_id"] = f"0123456789abcdef-{counter:x}".encode()
                    futures.append(
                        await producer.send(
                            topic,
                            encode(event),
                            key=event.order_id.encode(),
                            headers=list(headers.items()),
                        )
                    )
                for result in await asyncio.gather(*futures, return_exceptions=True):
                    if isinstance(result, BaseException):
                        errors.append(result)
                    else:
                        confirmed += 1
    finally:
        await producer.stop()
    _expect(workload, confirmed, errors)
    return Measurement(watch.wall_s, watch.cpu_s, confirmed)


def aiokafka_send(workload: Workload) -> Measurement:
    """aiokafka's ``AIOKafkaProducer.send`` (peer): the event encoded from the struct, the 7
    CloudEvents headers, acks=all, every future awaited per chunk; no validation."""
    return asyncio.run(_aiokafka(workload))


# -- 2c. FastStream (a peer) -------------------------------------------------------------------


async def _faststream(workload: Workload) -> Measurement:
    # Imported here: FastStream is a peer measured when installed (the `bench` extra).
    from fast_depends.msgspec import MsgSpecSerializer
    from faststream.confluent import KafkaBroker

    # eventwire's own librdkafka settings (acks=all, idempotence, linger 5 ms...), passed as
    # FastStream's raw `config`, which overrides its defaults (linger 0, no idempotence).
    # security.protocol is left to librdkafka's default (plaintext): FastStream only accepts it
    # in lower case.
    settings = librdkafka_settings(workload.bootstrap_servers)
    del settings["security.protocol"]
    broker = KafkaBroker(
        workload.bootstrap_servers, config=settings, serializer=MsgSpecSerializer()
    )
    publisher = broker.publisher(workload.topic)
    template = {k: v.decode() for k, v in CE_HEADERS.items() if isinstance(v, bytes)}
    del template["content-type"]  # FastStream sets it from its codec: application/json
    errors: list[object] = []
    try:
        await broker.start()
        for event in workload.warmup_events:
            await publisher.publish(event, key=event.order_id, headers=template)
        confirmed = 0
        counter = 0
        with Stopwatch() as watch:
            for chunk in chunks(workload.events, CHUNK):
                futures = []
                for event in chunk:
                    counter += 1
                    headers = template.copy()
                    headers["ce_id"] = f"0123456789abcdef-{counter:x}"
                    futures.append(
                        await publisher.publish(
                            event, key=event.order_id, headers=headers, no_confirm=True
                        )
                    )
                confirmed += _messages(
                    await asyncio.gather(*futures, return_exceptions=True), errors
                )
    finally:
        await broker.stop()
    _expect(workload, confirmed, errors)
    return Measurement(watch.wall_s, watch.cpu_s, confirmed)


def faststream_publish(workload: Workload) -> Measurement:
    """FastStream's Kafka publisher (peer): ``publish(event, no_confirm=True)``, futures gathered.

    Each event with the 7 CloudEvents headers, every future awaited per chunk of 10,000; no
    validation (FastStream has none on publish).

    ``faststream[confluent]`` rather than ``faststream[kafka]``: it publishes through
    confluent-kafka, as eventwire and the raw references do, with eventwire's librdkafka
    settings including idempotence (aiokafka's ``InitProducerId`` is refused by Tansu), so its
    distance to ``aioproducer`` is FastStream's own layer. The event is encoded by FastStream's
    ``MsgSpecSerializer``; FastStream adds its ``correlation_id`` header (a ``uuid4`` per
    message, 8 headers in all). ``publish()`` does not validate what it sends: FastStream's
    validation (fast_depends) is of what a subscriber receives. Per event: the middleware
    chain, a loop future and a ``call_soon_threadsafe`` from its poll thread's callback.
    """
    return asyncio.run(_faststream(workload))


# -- 3, 4. AsyncPublisher.publish_many ---------------------------------------------------------


async def _async_many(workload: Workload, validate: bool, **changes: Any) -> Measurement:
    errors: list[object] = []
    config = workload.config(validate=validate, **changes)
    async with eventwire.AsyncPublisher(config) as publisher:
        warm = await publisher.publish_many(workload.warmup_events)
        if _receipts(warm, errors) != len(warm):
            raise CaseFailed(f"warm-up failed: {errors[0]!r}")
        with Stopwatch() as watch:
            confirmed = 0
            for chunk in chunks(workload.events, CHUNK):
                confirmed += _receipts(await publisher.publish_many(chunk), errors)
    _expect(workload, confirmed, errors)
    return Measurement(watch.wall_s, watch.cpu_s, confirmed)


def async_publish_many(workload: Workload) -> Measurement:
    """``await AsyncPublisher.publish_many(chunk)``, default config (validation on)."""
    return asyncio.run(_async_many(workload, validate=True))


def async_publish_many_novalidate(workload: Workload) -> Measurement:
    """``await AsyncPublisher.publish_many(chunk)`` with ``validate=False``."""
    return asyncio.run(_async_many(workload, validate=False))


# -- 4b. OpenTelemetry overhead ------------------------------------------------------------------
# ``async_publish_many`` runs with opentelemetry-api only (this process configures no SDK), so
# eventwire detects the no-op providers once and skips all per-event telemetry. The two cases
# below bracket it: telemetry switched off explicitly, and the SDK recording everything.


def async_publish_many_otel_off(workload: Workload) -> Measurement:
    """``async_publish_many`` with ``Telemetry(enabled=False)``: reference for the API-only case."""
    return asyncio.run(_async_many(workload, True, telemetry=eventwire.Telemetry(enabled=False)))


def async_publish_many_otel_sdk(workload: Workload) -> Measurement:
    """``async_publish_many`` with the OTel SDK recording spans (batch processor, no-op
    exporter) and metrics (in-memory reader), librdkafka statistics every 5 s."""
    from otel_sdk import sdk_providers

    tracer_provider, meter_provider = sdk_providers()
    telemetry = eventwire.Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        return asyncio.run(_async_many(workload, True, telemetry=telemetry))
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


def async_publish_many_otel_message(workload: Workload) -> Measurement:
    """``async_publish_many_otel_sdk`` with ``Telemetry(spans="message")``: a span per event."""
    from otel_sdk import sdk_providers

    tracer_provider, meter_provider = sdk_providers()
    telemetry = eventwire.Telemetry(
        tracer_provider=tracer_provider, meter_provider=meter_provider, spans="message"
    )
    try:
        return asyncio.run(_async_many(workload, True, telemetry=telemetry))
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


def async_publish_many_otel_unsampled(workload: Workload) -> Measurement:
    """``async_publish_many_otel_sdk`` inside an unsampled caller span (the SDK's parent-based
    sampler drops the trace): metrics recorded, the caller's context propagated."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
    from otel_sdk import sdk_providers

    tracer_provider, meter_provider = sdk_providers(ParentBased(ALWAYS_OFF))
    telemetry = eventwire.Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    tracer = tracer_provider.get_tracer("benchmark")

    async def unsampled() -> Measurement:
        with tracer.start_as_current_span("caller"):
            return await _async_many(workload, True, telemetry=telemetry)

    try:
        return asyncio.run(unsampled())
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()


# -- 4c. AsyncPublisher.publish_many with the durable spool -------------------------------------


def async_publish_many_spool(workload: Workload) -> Measurement:
    """AsyncPublisher with spool: ``publish_many(chunk)``, each event committed to the SQLite
    spool (WAL, synchronous=FULL, group commit) before it is produced, deleted on delivery."""
    with tempfile.TemporaryDirectory(prefix="eventwire-bench-") as directory:
        spool_path = os.path.join(directory, "spool.db")
        return asyncio.run(_async_many(workload, True, spool_path=spool_path))


# -- 5. concurrent AsyncPublisher.publish ------------------------------------------------------


async def _async_concurrent(workload: Workload) -> Measurement:
    async with eventwire.AsyncPublisher(workload.config()) as publisher:
        return await _concurrent_workers(publisher.publish, workload, eventwire.EventwireError)


async def _concurrent_workers(
    publish: PublishFn,
    workload: Workload,
    failure: type[Exception],
) -> Measurement:
    """Warm up (the warm-up events gathered), then time ``CONCURRENT_WORKERS`` tasks that share
    one iterator of the events, each awaiting one ``publish(event)`` at a time."""
    await asyncio.gather(*(publish(e) for e in workload.warmup_events))
    errors: list[object] = []
    confirmed = 0
    queue = iter(workload.events)  # shared by the workers; next() never yields

    async def worker() -> None:
        nonlocal confirmed
        for event in queue:
            try:
                await publish(event)
            except failure as exc:
                errors.append(exc)
            else:
                confirmed += 1

    with Stopwatch() as watch:
        workers = [asyncio.create_task(worker()) for _ in range(CONCURRENT_WORKERS)]
        await asyncio.gather(*workers)
    _expect(workload, confirmed, errors)
    return Measurement(watch.wall_s, watch.cpu_s, confirmed)


def async_publish_concurrent(workload: Workload) -> Measurement:
    """1000 coroutines, each awaiting one ``publish()`` receipt at a time, N in total."""
    return asyncio.run(_async_concurrent(workload))


# -- 5b. the least an asyncio publisher with one awaited receipt per call does (reference) ----


def _minimal_async_publisher(
    topic: str, bootstrap_servers: str
) -> tuple[PublishFn, Callable[[], int]]:
    """The least an asyncio publisher does that gives each ``await publish(event)`` its own
    receipt, following the hand-over the core issue prescribes; returns ``(publish, close)``
    (``close`` returns how many messages stayed undelivered). Call it on the running loop.

    Per event: the compiled check, encode, key, the 7 headers of ``_minimum``, a loop future,
    ``produce()`` with a per-message callback (a ``functools.partial`` naming the future:
    confluent-kafka passes no opaque), the caller awaiting the future. One thread blocks in
    ``poll()``; its callbacks only collect ``(future, receipt or error)``, and after each
    ``poll()`` the batch goes to the loop with one ``call_soon_threadsafe``, where the futures
    are resolved. A full queue makes ``publish`` wait until the next batch was settled. No
    counters, retries, breaker or bookkeeping for close: nothing beyond the required work.
    """
    check = eventwire.codec.EventCodec()._type_codec(OrderPlaced).check
    encode = msgspec.json.Encoder().encode
    producer = confluent_kafka.Producer(librdkafka_settings(bootstrap_servers))
    produce = producer.produce
    loop = asyncio.get_running_loop()
    room = asyncio.Event()
    ids = itertools.count()
    new_headers = CE_HEADERS.copy

    def settle(batch: list[tuple[asyncio.Future[Any], Any]]) -> None:
        # Loop thread: one call per poll batch.
        for future, outcome in batch:
            if type(outcome) is tuple:
                future.set_result(outcome)
            else:
                future.set_exception(outcome)
        room.set()

    collect, stop_polling = _poll_thread(producer, loop, settle)

    def on_delivery(future: asyncio.Future[Any], err: Any, msg: Any) -> None:
        # Poll thread: record only; the future belongs to the loop.
        if err is None:
            collect((future, (topic, msg.partition(), msg.offset(), msg.timestamp()[1])))
        else:
            collect((future, confluent_kafka.KafkaException(err)))

    async def publish(event: OrderPlaced) -> Any:
        if not check(event):
            raise CaseFailed(f"event {event.order_id} did not pass the check")
        value = encode(event)
        key = event.order_id.encode()
        headers = new_headers()
        headers["ce_id"] = f"0123456789abcdef-{next(ids):x}"
        future = loop.create_future()
        callback = functools.partial(on_delivery, future)
        while True:
            try:
                produce(topic, value, key, on_delivery=callback, headers=headers)
            except BufferError:
                room.clear()
                await room.wait()
            else:
                return await future

    def close() -> int:
        stop_polling()
        remaining: int = producer.flush(FLUSH_TIMEOUT)
        producer.close()
        return remaining

    return publish, close


def _poll_thread(
    producer: Any, loop: asyncio.AbstractEventLoop, settle: Callable[[list[Any]], object]
) -> tuple[Callable[[Any], None], Callable[[], None]]:
    """Start one thread blocking in ``producer.poll()``; what delivery callbacks ``collect``
    during one ``poll()`` goes to ``settle`` on the loop with one ``call_soon_threadsafe``.
    Returns ``(collect, stop)``."""
    reports: list[Any] = []
    stop = threading.Event()
    call_soon = loop.call_soon_threadsafe

    def run() -> None:
        poll = producer.poll
        while not stop.is_set():
            poll(0.05)
            if reports:  # filled only by callbacks inside poll(), on this thread
                batch = reports.copy()
                reports.clear()
                call_soon(settle, batch)

    def stop_thread() -> None:
        stop.set()
        thread.join()

    thread = threading.Thread(target=run, name="concurrent-minimum-poll")
    thread.start()
    return reports.append, stop_thread


async def _concurrent_minimum(workload: Workload) -> Measurement:
    publish, close = _minimal_async_publisher(workload.topic, workload.bootstrap_servers)
    try:
        measured = await _concurrent_workers(publish, workload, confluent_kafka.KafkaException)
    finally:
        remaining = close()
    if remaining != 0:
        raise CaseFailed(f"{remaining:,} messages still undelivered after flush()")
    return measured


def handwritten_concurrent_minimum(workload: Workload) -> Measurement:
    """Hand-written minimum of ``async_publish_concurrent``: 1000 workers, one receipt each.

    Per event the check, encode, key, headers, ``produce()`` with a callback and a future the
    worker awaits; one poll thread hands each poll batch to the loop with one
    ``call_soon_threadsafe``, which resolves the futures.

    Informational: see ``_concurrent_minimum``.
    """
    return asyncio.run(_concurrent_minimum(workload))


# -- 6, 7. Publisher.publish_many --------------------------------------------------------------


def _sync_many(workload: Workload, validate: bool) -> Measurement:
    errors: list[object] = []
    with eventwire.Publisher(workload.config(validate=validate)) as publisher:
        warm = publisher.publish_many(workload.warmup_events)
        if _receipts(warm, errors) != len(warm):
            raise CaseFailed(f"warm-up failed: {errors[0]!r}")
        with Stopwatch() as watch:
            confirmed = 0
            for chunk in chunks(workload.events, CHUNK):
                confirmed += _receipts(publisher.publish_many(chunk), errors)
    _expect(workload, confirmed, errors)
    return Measurement(watch.wall_s, watch.cpu_s, confirmed)


def sync_publish_many_novalidate(workload: Workload) -> Measurement:
    """``Publisher.publish_many(chunk)`` with ``validate=False``."""
    return _sync_many(workload, validate=False)


def sync_publish_many(workload: Workload) -> Measurement:
    """``Publisher.publish_many(chunk)``, validation on."""
    return _sync_many(workload, validate=True)


#: Every throughput case, in report order; ``raw_ceiling`` is the denominator of every ratio.
CASES: Final[dict[str, Callable[[Workload], Measurement]]] = {
    "raw_ceiling": raw_ceiling,
    "raw_headers_callback": raw_headers_callback,
    "handwritten_minimum": handwritten_minimum,
    "handwritten_minimum_novalidate": handwritten_minimum_novalidate,
    "handwritten_minimum_outcome": handwritten_minimum_outcome,
    "handwritten_minimum_outcome_novalidate": handwritten_minimum_outcome_novalidate,
    "handwritten_concurrent_minimum": handwritten_concurrent_minimum,
    "handwritten_straightforward": handwritten_straightforward,
    "aioproducer": aioproducer,
    "aiokafka_send": aiokafka_send,
    "faststream_publish": faststream_publish,
    "async_publish_many": async_publish_many,
    "async_publish_many_novalidate": async_publish_many_novalidate,
    "async_publish_many_otel_off": async_publish_many_otel_off,
    "async_publish_many_otel_sdk": async_publish_many_otel_sdk,
    "async_publish_many_otel_message": async_publish_many_otel_message,
    "async_publish_many_otel_unsampled": async_publish_many_otel_unsampled,
    "async_publish_many_spool": async_publish_many_spool,
    "async_publish_concurrent": async_publish_concurrent,
    "sync_publish_many_novalidate": sync_publish_many_novalidate,
    "sync_publish_many": sync_publish_many,
}
CEILING: Final = "raw_ceiling"
#: The peers' packages (the `bench` extra): a case whose package is not installed is skipped.
REQUIRES: Final[dict[str, str]] = {"aiokafka_send": "aiokafka", "faststream_publish": "faststream"}

#: One-line description of each case, for the report.
DESCRIPTIONS: Final[dict[str, str]] = {
    name: (fn.__doc__ or "").strip().splitlines()[0] for name, fn in CASES.items()
}


def pairs(events: Sequence[OrderPlaced]) -> list[tuple[bytes, bytes]]:
    """Pre-encoded ``(value, key)`` of each event: the bytes eventwire would put on the wire."""
    encode = msgspec.json.Encoder().encode
    return [(encode(e), e.order_id.encode()) for e in events]
