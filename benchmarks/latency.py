"""Lone-publish latency: one message in flight, raw librdkafka against eventwire.

Both use eventwire's ``low_latency`` preset (linger 0, Nagle off, acks=all, idempotence).

* raw: ``produce(topic, value, key, on_delivery=cb)`` of pre-encoded bytes, then
  ``poll(0.1)`` until ``cb`` fired; the sample is produce -> callback.
* eventwire: ``await AsyncPublisher.publish(event)``; the sample is the whole round trip as the
  caller sees it (encode, validate, produce, delivery report, hand-over to the loop).

Samples are taken in alternating blocks (raw block, eventwire block, then the other way round)
so that a noisy neighbour hits both alike; the first ``warmup`` samples of each are discarded.
"""

from __future__ import annotations

import asyncio
import gc
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
    topics: tuple[str, str],
    events: Sequence[OrderPlaced],
    payloads: Sequence[tuple[bytes, bytes]],
    warmup: int,
) -> LatencySamples:
    raw_topic, eventwire_topic = topics
    producer = confluent_kafka.Producer(librdkafka_settings(bootstrap_servers, "low_latency"))
    config = eventwire.PublisherConfig(
        bootstrap_servers=bootstrap_servers,
        preset="low_latency",
        topic_map={DECLARED_TOPIC: eventwire_topic},
    )
    raw: list[float] = []
    wired: list[float] = []
    try:
        async with eventwire.AsyncPublisher(config) as publisher:
            for block, start in enumerate(range(0, len(events), BLOCK)):
                stop = start + BLOCK
                gc.collect()
                if block % 2 == 0:
                    raw += _raw_block(producer, raw_topic, payloads[start:stop])
                    wired += await _eventwire_block(publisher, events[start:stop])
                else:
                    wired += await _eventwire_block(publisher, events[start:stop])
                    raw += _raw_block(producer, raw_topic, payloads[start:stop])
    finally:
        producer.flush(10)
        producer.close()
    return LatencySamples(raw_us=raw[warmup:], eventwire_us=wired[warmup:])


def measure(
    bootstrap_servers: str,
    topics: tuple[str, str],
    events: Sequence[OrderPlaced],
    payloads: Sequence[tuple[bytes, bytes]],
    warmup: int,
) -> LatencySamples:
    """Take ``len(events) - warmup`` samples of each; ``topics`` is (raw topic, eventwire
    topic), both existing."""
    return asyncio.run(_measure(bootstrap_servers, topics, events, payloads, warmup))
