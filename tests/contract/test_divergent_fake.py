"""The suite's self-test: fakes that drift from the real publishers in one way each must fail
the contract checks that cover that behaviour.

The checks are called directly, so a caught divergence is an expected exception here and
the run stays green; a divergence the suite misses makes this test fail.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping
from typing import Any

import pytest

import eventwire
from eventwire.testing import AsyncFakePublisher, FakePublisher, MemoryBroker
from tests.contract import checks
from tests.contract.checks import CHECKS, Check
from tests.contract.harness import FakeTarget

# A check fails with AssertionError, with pytest's Failed ("DID NOT RAISE"), or with whatever
# the divergence makes the fake raise: any of these would turn the contract run red.
CheckFailed = (Exception, pytest.fail.Exception)


class _HeaderDroppingBroker(MemoryBroker):
    def write(self, queued: Any) -> Any:
        outcome = super().write(queued)
        record = self.records[-1]
        if outcome[0] is None and record.topic == queued.topic:
            kept = tuple(h for h in record.headers if not h[0].startswith("ce_"))
            self.records[-1] = record._replace(headers=kept)
        return outcome


class HeaderDroppingFake(AsyncFakePublisher):
    """Records events without their CloudEvents headers."""

    def __init__(
        self, config: eventwire.PublisherConfig | None = None, *, partitions: int = 3
    ) -> None:
        super().__init__(config, broker=_HeaderDroppingBroker(partitions))


class _Crc32Broker(MemoryBroker):
    def place(self, topic: str, key: bytes | None) -> int:
        if key is None:
            return super().place(topic, key)
        return zlib.crc32(key) % self.partitions_of(topic)


class Crc32Fake(FakePublisher):
    """Places keys with CRC32 (librdkafka's default partitioner), not murmur2."""

    def __init__(
        self, config: eventwire.PublisherConfig | None = None, *, partitions: int = 3
    ) -> None:
        super().__init__(config, broker=_Crc32Broker(partitions))


class UnvalidatedFake(AsyncFakePublisher):
    """Skips validation: encodes whatever it is given."""

    def __init__(
        self, config: eventwire.PublisherConfig | None = None, *, partitions: int = 3
    ) -> None:
        assert config is not None
        super().__init__(dataclasses.replace(config, validate=False), partitions=partitions)


class TopicMapIgnoringFake(FakePublisher):
    """Applies the topic prefix but not the topic map."""

    def __init__(
        self,
        config: eventwire.PublisherConfig | None = None,
        *,
        partitions: int | Mapping[str, int] = 3,
    ) -> None:
        assert config is not None
        super().__init__(dataclasses.replace(config, topic_map={}), partitions=partitions)


DIVERGENCES: list[tuple[type[AsyncFakePublisher] | type[FakePublisher], list[Check]]] = [
    (
        HeaderDroppingFake,
        [
            checks.check_cloudevents_headers,
            checks.check_user_headers_follow_and_reserved_ones_are_refused,
        ],
    ),
    (
        Crc32Fake,
        [
            checks.check_receipts_place_keys_by_murmur2_with_increasing_offsets,
            checks.check_key_override,
        ],
    ),
    (
        UnvalidatedFake,
        [
            checks.check_validation_errors_name_the_path_and_send_nothing,
            checks.check_publish_many_outcomes_in_order_around_a_bad_event,
        ],
    ),
    (TopicMapIgnoringFake, [checks.check_topic_map_prefix_and_call_override]),
]


@pytest.mark.parametrize(
    ("fake", "catching"), DIVERGENCES, ids=[cls.__name__ for cls, _ in DIVERGENCES]
)
async def test_the_suite_catches_a_divergent_fake(
    fake: type[AsyncFakePublisher] | type[FakePublisher], catching: list[Check]
) -> None:
    failed: list[str] = []
    for check in CHECKS:
        target = FakeTarget(fake)
        try:
            await check(target)
        except CheckFailed:  # every way a check can fail counts as a catch
            failed.append(check.__name__)
        finally:
            await target.aclose()
    # At least the checks written for this behaviour catch it (others may too).
    assert {check.__name__ for check in catching} <= set(failed), failed


@pytest.mark.parametrize("fake", [AsyncFakePublisher, FakePublisher])
async def test_the_honest_fakes_pass_every_check(
    fake: type[AsyncFakePublisher] | type[FakePublisher],
) -> None:
    for check in CHECKS:
        target = FakeTarget(fake)
        await check(target)
        await target.aclose()
