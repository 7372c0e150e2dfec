"""The event loop settles report batches one per iteration, in order (a burst of reports
must not stall the loop's other tasks)."""

from __future__ import annotations

import asyncio

import pytest

from eventwire._async_settling import LoopSettler


async def test_a_burst_is_settled_one_batch_per_loop_iteration_in_order() -> None:
    loop = asyncio.get_running_loop()
    seen: list[object] = []
    settler = LoopSettler(loop, seen.extend)  # type: ignore[arg-type]
    done = loop.create_future()

    def burst() -> None:  # what one hand-over of the poll thread looks like: 3 batches at once
        for batch in ([1, 2], [3], [4, 5]):
            settler.settle(batch)  # type: ignore[arg-type]
        loop.call_soon(seen.append, "other task")

    loop.call_soon(burst)
    loop.call_soon(lambda: loop.call_soon(lambda: loop.call_soon(done.set_result, None)))
    await done

    # The first batch at once (no added latency), the rest in later iterations, in order,
    # with the other callback in between.
    assert seen == [1, 2, 3, "other task", 4, 5]


async def test_a_lone_batch_is_settled_at_once_and_the_next_one_too() -> None:
    loop = asyncio.get_running_loop()
    seen: list[object] = []
    settler = LoopSettler(loop, seen.extend)  # type: ignore[arg-type]

    settler.settle([1])  # type: ignore[list-item]
    assert seen == [1]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    settler.settle([2])  # type: ignore[list-item]
    assert seen == [1, 2]


async def test_a_batch_whose_settling_raised_does_not_stop_the_next_ones() -> None:
    loop = asyncio.get_running_loop()
    seen: list[object] = []

    def settle(batch: list[object]) -> None:
        if batch == ["bad"]:
            raise RuntimeError("boom")
        seen.extend(batch)

    settler = LoopSettler(loop, settle)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        settler.settle(["bad"])  # type: ignore[list-item]
    settler.settle([1])  # type: ignore[list-item]  # queued: the failed one is "this iteration"
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert seen == [1]
