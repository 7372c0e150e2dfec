"""The process around a publisher: ``os.fork()`` (multiprocessing, gunicorn ``--preload``) and
interpreter exit with a publisher left open. Real processes, a real broker, read back."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

import eventwire
from eventwire.testing import ProxiedBroker
from tests.events import order
from tests.integration.conftest import Topics

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]


def _in_forked_child(work: Callable[[], object]) -> object:
    """Run ``work`` in a child forked from this (threaded) process; its JSON result back."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: forking with threads
        pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 1
        try:
            signal.alarm(30)  # a child that hangs is killed: the parent then sees no result
            os.write(write, json.dumps(work()).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child failed: {text!r}"
    return json.loads(text)


def _refusal(call: Callable[[], object]) -> str:
    try:
        call()
    except eventwire.PublisherClosedError as exc:
        return str(exc)
    return "accepted"


def test_sync_publisher_used_in_a_forked_child_refuses_one_built_there_delivers(
    topics: Topics,
) -> None:
    with eventwire.Publisher(topics.config()) as publisher:
        # Connected before the fork: a fork while a librdkafka thread resolves the broker's
        # address leaves glibc's getaddrinfo lock held in the child (docs/operations.md, "Fork").
        first = publisher.publish(order(1))

        def child() -> object:
            refusals = [
                _refusal(lambda: publisher.publish(order(2))),
                _refusal(lambda: publisher.publish_many([order(3), order(4)])),
            ]
            report = publisher.close(5.0)
            with eventwire.Publisher(topics.config()) as own:  # built after the fork: works
                receipt = own.publish(order(6))
            return {
                "refusals": refusals,
                "report": [report.delivered, report.undelivered],
                "event_id": receipt.event_id,
            }

        outcome = _in_forked_child(child)
        last = publisher.publish(order(5))
    assert isinstance(outcome, dict)
    for refusal in outcome["refusals"]:
        assert f"created in process {os.getpid()}" in refusal
        assert "os.fork()" in refusal
    assert outcome["report"] == [0, 0]  # the child's close leaves the parent's publisher alone
    records = topics.broker.consume(topics.name("orders"))
    expected = [first.event_id, last.event_id, outcome["event_id"]]
    assert sorted(r.header("ce_id") for r in records) == sorted(e.encode() for e in expected)


def test_async_publisher_built_before_fork_and_never_used_refuses_in_the_child(
    topics: Topics,
) -> None:
    # gunicorn --preload: the application module builds its publisher before the workers fork.
    inherited = eventwire.AsyncPublisher(topics.config())

    def child() -> object:
        async def work() -> object:
            refusal = await _async_refusal(inherited)
            threads = threading.active_count()  # no poll thread started for the inherited one
            report = await inherited.aclose(5.0)
            return {"refusal": refusal, "threads": threads, "undelivered": report.undelivered}

        return asyncio.run(work())

    outcome = _in_forked_child(child)
    assert isinstance(outcome, dict)
    assert "os.fork()" in outcome["refusal"]
    assert outcome["threads"] == 1
    assert outcome["undelivered"] == 0

    async def parent() -> None:  # the parent's publisher was never touched by the child
        receipt = await inherited.publish(order(7))
        await inherited.aclose(5.0)
        [record] = topics.broker.consume(topics.name("orders"))
        assert record.header("ce_id") == receipt.event_id.encode()

    asyncio.run(parent())


async def _async_refusal(publisher: eventwire.AsyncPublisher) -> str:
    try:
        await publisher.publish(order(1))
    except eventwire.PublisherClosedError as exc:
        return str(exc)
    return "accepted"


def _line_starting(stream: IO[str], word: str) -> str:
    """The child's next line on stdout starting with ``word``."""
    for line in stream:
        if line.startswith(word):
            return line.strip()
    raise AssertionError(f"the child ended before printing {word!r}")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_publisher_left_open_delivers_what_it_holds_at_exit(
    proxied: ProxiedBroker, mode: str
) -> None:
    count = 500
    topic = proxied.unique_topic("orders")
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "tests.integration.lifecycle_child",
            mode,
            *("--bootstrap", proxied.bootstrap_servers, "--topic", topic, "--count", str(count)),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        _line_starting(child.stdout, "ready")
        proxied.proxy.pause()  # nothing is acknowledged until the child is exiting
        child.stdin.write("go\n")
        child.stdin.flush()
        assert _line_starting(child.stdout, "queued") == f"queued {count}"
        proxied.proxy.resume()
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    # Warnings, on stderr by Python's logging defaults (the child configures no logging).
    assert "eventwire.closed_at_exit" in err
    if mode == "async":  # the loop closed with the events in flight: said once, delivered anyway
        assert err.count("eventwire.loop_closed") == 1
    assert "eventwire.settle_failed" not in err
    assert "eventwire." not in out
    records = proxied.consume(topic, count=count + 1)
    ids = {r.header("ce_id") for r in records}
    assert len(records) == len(ids) == count + 1


def test_publisher_dropped_unclosed_warns_and_then_releases_its_threads(topics: Topics) -> None:
    others = set(threading.enumerate())
    publisher = eventwire.Publisher(topics.config())
    outcomes = publisher.publish_many([order(n) for n in range(50)])
    [poll_thread] = [
        t for t in set(threading.enumerate()) - others if t.name.startswith("eventwire")
    ]
    with pytest.warns(ResourceWarning, match=r"unclosed Publisher \(0 events outstanding\)"):
        del publisher  # collected here: no reference cycle holds a publisher
    poll_thread.join(30.0)  # it stopped, and the producer's threads and sockets with it
    assert not poll_thread.is_alive()
    records = topics.broker.consume(topics.name("orders"))
    assert sorted(r.header("ce_id") for r in records) == sorted(
        o.event_id.encode() for o in outcomes if isinstance(o, eventwire.DeliveryReceipt)
    )
    assert len(records) == 50
