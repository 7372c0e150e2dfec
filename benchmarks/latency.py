"""Lone-publish latency: one message in flight, raw librdkafka against eventwire.

Both use eventwire's ``low_latency`` preset (linger 0, Nagle off, acks=all, idempotence).

* raw: ``produce(topic, value, key, on_delivery=cb)`` of pre-encoded bytes, then
  ``poll(0.1)`` until ``cb`` fired; the sample is produce -> callback.
* design minimum: the least of the design the core issue prescribes, hand-written: pre-encoded
  bytes, ``produce()`` from the event loop, one background thread blocking in ``poll()``, its
  delivery callback hands over with one ``loop.call_soon_threadsafe``, the caller awaits a
  future. What any publisher built that way pays over raw, before encoding anything.
* eventwire: ``await AsyncPublisher.publish(event)``; the sample is the whole round trip as the
  caller sees it (encode, validate, produce, delivery report, hand-over to the loop).

Samples are taken in alternating blocks (raw block, eventwire block, then the other way round)
so that a noisy neighbour hits both alike; the first ``warmup`` samples of each are discarded.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import confluent_kafka
from throughput import CaseFailed, librdkafka_settings

import eventwire
from events import DECLARED_TOPIC, OrderPlaced

BLOCK: Final = 100


@dataclass(frozen=True)
class LatencySamples:
    """Round-trip times in microseconds, warm-up excluded."""

    raw_us: list[float]
    eventwire_us: list[float]
    design_us: list[float]


def _raw_block(producer: Any, topic: str, payloads: Sequence[tuple[bytes, bytes]]) -> list[float]:
    samples: list[float] = []
    fired: list[int] = []
    failures: list[object] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        fired.append(time.perf_counter_ns())
        if err is not None:
            failures.append(err)

    produce = producer.produce
    poll = producer.poll
    for value, key in payloads:
        fired.clear()
        start = time.perf_counter_ns()
        produce(topic, value, key, on_delivery=on_delivery)
        while not fired:
            poll(0.1)
        samples.append((fired[0] - start) / 1000)
    if failures:
        raise CaseFailed(f"raw latency: {len(failures)} delivery errors, first {failures[0]!r}")
    return samples


class _DesignMinimum:
    """A producer polled by its own thread; callbacks resolve futures through the loop."""

    def __init__(self, bootstrap_servers: str, loop: asyncio.AbstractEventLoop) -> None:
        self.producer = confluent_kafka.Producer(
            librdkafka_settings(bootstrap_servers, "low_latency")
        )
        self._loop = loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="design-minimum-poll")
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def block(self, topic: str, payloads: Sequence[tuple[bytes, bytes]]) -> list[float]:
        samples: list[float] = []
        call_soon = self._loop.call_soon_threadsafe
        produce = self.producer.produce
        for value, key in payloads:
            future: asyncio.Future[Any] = self._loop.create_future()

            def on_delivery(err: Any, _msg: Any, future: asyncio.Future[Any] = future) -> None:
                call_soon(future.set_result, err)

            start = time.perf_counter_ns()
            produce(topic, value, key, on_delivery=on_delivery)
            err = await future
            samples.append((time.perf_counter_ns() - start) / 1000)
            if err is not None:
                raise CaseFailed(f"design-minimum latency: delivery error {err!r}")
        return samples

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.producer.flush(10)
        self.producer.close()


async def _eventwire_block(
    publisher: eventwire.AsyncPublisher, events: Sequence[OrderPlaced]
) -> list[float]:
    samples: list[float] = []
    for event in events:
        start = time.perf_counter_ns()
        await publisher.publish(event)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


async def _measure(
    bootstrap_servers: str,
    topics: tuple[str, str, str],
    events: Sequence[OrderPlaced],
    payloads: Sequence[tuple[bytes, bytes]],
    warmup: int,
) -> LatencySamples:
    raw_topic, eventwire_topic, design_topic = topics
    producer = confluent_kafka.Producer(librdkafka_settings(bootstrap_servers, "low_latency"))
    design = _DesignMinimum(bootstrap_servers, asyncio.get_running_loop())
    config = eventwire.PublisherConfig(
        bootstrap_servers=bootstrap_servers,
        preset="low_latency",
        topic_map={DECLARED_TOPIC: eventwire_topic},
    )
    raw: list[float] = []
    wired: list[float] = []
    minimum: list[float] = []
    try:
        async with eventwire.AsyncPublisher(config) as publisher:
            for block, start in enumerate(range(0, len(events), BLOCK)):
                stop = start + BLOCK
                gc.collect()
                if block % 2 == 0:
                    raw += _raw_block(producer, raw_topic, payloads[start:stop])
                    minimum += await design.block(design_topic, payloads[start:stop])
                    wired += await _eventwire_block(publisher, events[start:stop])
                else:
                    wired += await _eventwire_block(publisher, events[start:stop])
                    minimum += await design.block(design_topic, payloads[start:stop])
                    raw += _raw_block(producer, raw_topic, payloads[start:stop])
    finally:
        design.close()
        producer.flush(10)
        producer.close()
    return LatencySamples(
        raw_us=raw[warmup:], eventwire_us=wired[warmup:], design_us=minimum[warmup:]
    )


def measure(
    bootstrap_servers: str,
    topics: tuple[str, str, str],
    events: Sequence[OrderPlaced],
    payloads: Sequence[tuple[bytes, bytes]],
    warmup: int,
) -> LatencySamples:
    """Take ``len(events) - warmup`` samples of each; ``topics`` is (raw topic, eventwire
    topic, design-minimum topic), all existing."""
    return asyncio.run(_measure(bootstrap_servers, topics, events, payloads, warmup))
