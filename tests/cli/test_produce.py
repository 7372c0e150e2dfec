"""``eventwire produce`` against the local broker: the good lines arrive, exactly; the bad ones
are in the rejects file with their line number, field path and reason."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from eventwire._cli import FAILURE, INTERRUPTED, OK, REJECTED, UNDELIVERED
from eventwire.testing import LocalBroker
from tests.cli.conftest import ROOT, assert_one_line_error, run_cli, stderr_lines
from tests.events import OrderPlaced, order

EVENT = "tests.events:OrderPlaced"
_encode = msgspec.json.Encoder().encode

#: One kind of bad line per residue, with the path the rejects file must name.
BAD_KINDS: dict[str, str] = {
    "malformed": "$",
    "wrong_type": "$.order_id",
    "constraint": "$.line_items[1].quantity",
    "float_money": "$.total_price",
    "naive_datetime": "$.created_at",
    "missing_field": "$",
    "bad_currency": "$.currency",
}


def _bad_line(n: int, kind: str) -> bytes:
    good = _encode(order(n))
    if kind == "malformed":
        return good[:-5]
    if kind == "wrong_type":
        return good.replace(f'"ord-{n:06d}"'.encode(), str(n).encode(), 1)
    if kind == "constraint":
        return good.replace(b'"quantity":2', b'"quantity":0', 1)
    if kind == "float_money":
        return good.replace(b'"total_price":"119.94"', b'"total_price":119.94', 1)
    if kind == "naive_datetime":
        return good.replace(b'Z","currency"', b'","currency"', 1)
    if kind == "missing_field":
        return _encode({"order_id": f"ord-{n:06d}"})
    return good.replace(b'"EUR"', b'"euro"', 1)


def write_file(path: Path, lines: int, bad_every: int = 100) -> tuple[list[bytes], dict[int, str]]:
    """``lines`` orders, every ``bad_every``-th one broken; returns the good lines and
    ``{line number: expected path}`` of the bad ones."""
    good: list[bytes] = []
    bad: dict[int, str] = {}
    kinds = list(BAD_KINDS)
    with path.open("wb") as out:
        for n in range(lines):
            if n % bad_every == bad_every // 2:
                kind = kinds[(n // bad_every) % len(kinds)]
                out.write(_bad_line(n, kind) + b"\n")
                bad[n + 1] = BAD_KINDS[kind]
            else:
                line = _encode(order(n))
                out.write(line + b"\n")
                good.append(line)
    return good, bad


def _summary(stdout: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(stdout)
    return result


def test_acceptance_100k_lines_with_1_percent_bad(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    events = tmp_path / "orders.jsonl"
    rejects = tmp_path / "rejects.jsonl"
    good, bad = write_file(events, 100_000)
    assert len(bad) == 1_000
    topic = eventwire_broker.unique_topic("cli-produce")

    started = time.perf_counter()
    result = run_cli(
        "produce", "--event", EVENT, "--file", str(events), "--topic", topic,
        "--bootstrap-servers", eventwire_broker.bootstrap_servers,
        "--rejects", str(rejects), "--json",
    )  # fmt: skip
    took = time.perf_counter() - started
    assert result.returncode == REJECTED, result.stderr
    assert stderr_lines(result) == []  # no progress bar when not a terminal, no log noise
    summary = _summary(result.stdout)
    assert summary["read"] == 100_000
    assert summary["published"] == 99_000
    assert summary["rejected"] == 1_000
    assert summary["failed"] == 0
    assert summary["topics"] == {topic: 99_000}
    print(f"100k lines: {took:.1f} s wall, {summary['throughput_per_s']} events/s publishing")

    # A consumer sees exactly the good lines: all of them, nothing else, each once.
    records = eventwire_broker.consume(topic, timeout=120)
    assert len(records) == 99_000
    assert sorted(r.value or b"" for r in records) == sorted(good)
    assert {r.header("ce_type") for r in records} == {b"order.placed"}
    decoded = msgspec.json.decode(records[0].value or b"", type=OrderPlaced)
    assert records[0].key == decoded.order_id.encode()

    # The rejects file names every bad line: number, field path, reason and the text.
    rejected = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert {r["line"]: r["path"] for r in rejected} == bad
    assert all(r["stage"] == "validation" and r["reason"] for r in rejected)
    text_of = {n + 1: line for n, line in enumerate(events.read_bytes().splitlines())}
    assert all(r["text"].encode() == text_of[r["line"]] for r in rejected)
    reasons = {r["path"]: r["reason"] for r in rejected}
    assert reasons["$.line_items[1].quantity"] == "Expected `int` >= 1"
    assert "Decimal" in reasons["$.total_price"]
    assert "timezone" in reasons["$.created_at"]


def test_all_good_exits_0_and_prints_a_table(eventwire_broker: LocalBroker, tmp_path: Path) -> None:
    events = tmp_path / "orders.jsonl"
    good, bad = write_file(events, 50, bad_every=10**9)
    assert not bad
    Path(f"{events}.rejects.jsonl").write_text('{"line": 3, "stage": "validation"}\n')
    events.write_bytes(events.read_bytes().replace(b"\n", b"\n\n", 3))  # blank lines: skipped
    topic = eventwire_broker.unique_topic("cli-good")
    result = run_cli(
        "produce", "--event", EVENT, "--file", str(events), "--topic", topic,
        "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--chunk-size", "7",
    )  # fmt: skip
    assert result.returncode == OK, result.stderr
    assert "published" in result.stdout
    assert "50" in result.stdout
    # Nothing rejected: no rejects file (one left by an earlier run is removed).
    assert not Path(f"{events}.rejects.jsonl").exists()
    records = eventwire_broker.consume(topic, timeout=30)
    assert sorted(r.value or b"" for r in records) == sorted(good)
    # One key per order, and in file order within each partition.
    numbers = [int((r.key or b"").decode().removeprefix("ord-")) for r in records]
    for partition in {r.partition for r in records}:
        mine = [n for n, r in zip(numbers, records, strict=True) if r.partition == partition]
        assert mine == sorted(mine)


def test_stdin_and_msgpack_and_the_declared_topic(
    eventwire_broker: LocalBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "orders.jsonl"
    good, bad = write_file(events, 30, bad_every=10)
    topic = eventwire_broker.unique_topic("cli-stdin")
    result = run_cli(
        "produce", "--event", EVENT, "--file", "-", "--topic", topic,
        "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--encoding", "msgpack",
        "--rejects", str(tmp_path / "r.jsonl"), "--json",
        stdin=events.read_bytes(),
    )  # fmt: skip
    assert result.returncode == REJECTED, result.stderr
    assert _summary(result.stdout)["published"] == len(good)
    records = eventwire_broker.consume(topic, timeout=30)
    assert {r.header("content-type") for r in records} == {b"application/msgpack"}
    as_json = sorted(
        _encode(msgspec.msgpack.decode(r.value or b"", type=OrderPlaced)) for r in records
    )
    assert as_json == sorted(good)
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["line"] for line in lines) == sorted(bad)


def test_an_event_the_producer_cannot_deliver_exits_4(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    events = tmp_path / "orders.jsonl"
    too_large = _encode(order(1, notes="x" * 2_000_000))  # over librdkafka's message.max.bytes
    events.write_bytes(b"\n".join([_encode(order(0)), too_large, _encode(order(2))]) + b"\n")
    topic = eventwire_broker.unique_topic("cli-undelivered")
    rejects = tmp_path / "rejects.jsonl"
    result = run_cli(
        "produce", "--event", EVENT, "--file", str(events), "--topic", topic,
        "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--rejects", str(rejects),
        "--json",
    )  # fmt: skip
    assert result.returncode == UNDELIVERED, result.stderr
    summary = _summary(result.stdout)
    assert (summary["published"], summary["rejected"], summary["failed"]) == (2, 0, 1)
    # The library's warning, one line on stderr as the command writes its own.
    [warning] = stderr_lines(result)
    assert warning.startswith(f"eventwire: warning: eventwire.publish_failed topic={topic} ")
    assert warning.endswith(" code=MSG_SIZE_TOO_LARGE attempts=0")
    [reject] = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert (reject["line"], reject["stage"], reject["path"]) == (2, "delivery", None)
    assert "PublishError" in reject["error"]
    records = eventwire_broker.consume(topic, timeout=30)
    assert sorted(r.value or b"" for r in records) == sorted([_encode(order(0)), _encode(order(2))])


def test_sigint_stops_a_long_run_with_one_line_and_exit_130(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    events = tmp_path / "orders.jsonl"
    write_file(events, 200_000, bad_every=10**9)
    topic = eventwire_broker.unique_topic("cli-interrupted")
    argv = [sys.executable, "-m", "eventwire", "produce", "--event", EVENT, "--file", str(events)]
    with subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
        [*argv, "--topic", topic, "--bootstrap-servers", eventwire_broker.bootstrap_servers],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        # Mid-run: the first events have arrived.
        eventwire_broker.consume(topic, count=1_000, timeout=60)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == INTERRUPTED
    [line] = stderr_lines(subprocess.CompletedProcess(argv, 0, out, err))
    assert line.startswith("eventwire: error: interrupted after ")
    assert out == ""
    # What was reported published did arrive; the run stopped well before the end.
    published = int(line.split(" lines: ")[1].split(" published")[0].replace(",", ""))
    arrived = len(eventwire_broker.consume(topic, timeout=30))
    assert published <= arrived < 200_000


def test_a_utf8_bom_and_crlf_line_ends_are_read_as_text_editors_write_them(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    events = tmp_path / "orders.jsonl"
    good = [_encode(order(n)) for n in range(3)]
    events.write_bytes(b"\xef\xbb\xbf" + b"".join(line + b"\r\n" for line in good))
    topic = eventwire_broker.unique_topic("cli-bom")
    result = run_cli(
        "produce", "--event", EVENT, "--file", str(events), "--topic", topic,
        "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--json",
    )  # fmt: skip
    assert result.returncode == OK, result.stdout + result.stderr
    records = eventwire_broker.consume(topic, count=3, timeout=30)
    assert sorted(r.value or b"" for r in records) == sorted(good)


def test_an_illegal_topic_is_one_error_before_anything_is_read(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    events = tmp_path / "orders.jsonl"
    write_file(events, 5, bad_every=10**9)
    rejects = tmp_path / "rejects.jsonl"
    result = run_cli(
        "produce", "--event", EVENT, "--file", str(events), "--topic", "no such/topic",
        "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--rejects", str(rejects),
    )  # fmt: skip
    assert result.returncode == FAILURE
    assert_one_line_error(result, "'no such/topic'", "not a legal Kafka topic name")
    assert not rejects.exists()


def test_a_run_without_rejects_writes_no_rejects_file(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    events = tmp_path / "orders.jsonl"
    write_file(events, 5, bad_every=10**9)
    rejects = tmp_path / "rejects.jsonl"
    result = run_cli(
        "produce", "--event", EVENT, "--file", str(events),
        "--topic", eventwire_broker.unique_topic("cli-no-rejects"),
        "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--rejects", str(rejects),
        "--json",
    )  # fmt: skip
    assert result.returncode == OK, result.stderr
    assert _summary(result.stdout)["rejects_file"] is None
    assert not rejects.exists()  # was created empty


def test_the_start_up_is_not_counted_as_publishing_time(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    # The idempotent producer gets its id after ~50 ms or in 500 ms steps (librdkafka's retry
    # timer): 12 lines "took" 0.5 or 1.0 s, and the summary said 24 or 12 events/s. The first
    # event now goes alone; the time until its receipt is the start-up, reported apart, and
    # the throughput counts the rest over their own time.
    events = tmp_path / "orders.jsonl"
    write_file(events, 12, bad_every=10**9)
    result = run_cli(
        "produce", "--event", EVENT, "--file", str(events),
        "--topic", eventwire_broker.unique_topic("cli-startup"),
        "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--json",
    )  # fmt: skip
    assert result.returncode == OK, result.stderr
    summary = _summary(result.stdout)
    assert summary["published"] == 12
    startup, elapsed = summary["startup_s"], summary["elapsed_s"]
    assert isinstance(startup, float)
    assert isinstance(elapsed, float)
    assert startup > 0
    assert elapsed > 0
    assert summary["throughput_per_s"] == pytest.approx(11 / elapsed, rel=0.05)


def _with_unknown_fields(n: int) -> bytes:
    line = msgspec.json.decode(_encode(order(n)))
    line["coupon"] = "SPRING"
    line["line_items"][1]["gift_note"] = "for you"
    return _encode(line)


def test_unknown_fields_are_counted_or_refused(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    events = tmp_path / "orders.jsonl"
    lines = [_with_unknown_fields(0), _encode(order(1)), _with_unknown_fields(2)]
    events.write_bytes(b"\n".join(lines) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    common = [
        "produce", "--event", EVENT, "--file", str(events), "--rejects", str(rejects),
        "--bootstrap-servers", eventwire_broker.bootstrap_servers, "--json",
    ]  # fmt: skip
    dropped_topic = eventwire_broker.unique_topic("cli-unknown")
    result = run_cli(*common, "--topic", dropped_topic)
    assert result.returncode == OK, result.stderr
    summary = _summary(result.stdout)
    assert summary["published"] == 3
    assert summary["unknown_fields"] == {"$.coupon": 2, "$.line_items[].gift_note": 2}
    assert len(eventwire_broker.consume(dropped_topic, count=3)) == 3

    strict_topic = eventwire_broker.unique_topic("cli-forbid")
    result = run_cli(*common, "--topic", strict_topic, "--forbid-unknown-fields")
    assert result.returncode == REJECTED, result.stderr
    summary = _summary(result.stdout)
    assert (summary["published"], summary["rejected"]) == (1, 2)
    refused = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["path"], r["error"]) for r in refused] == [
        (1, "$.line_items[1].gift_note", "EventValidationError"),
        (3, "$.line_items[1].gift_note", "EventValidationError"),
    ]
    assert refused[0]["reason"] == (
        "unknown fields $.line_items[1].gift_note, $.coupon (--forbid-unknown-fields)"
    )
    [record] = eventwire_broker.consume(strict_topic, count=1)
    assert record.value == _encode(order(1))


def _produce_stream(broker: LocalBroker, topic: str, rejects: Path) -> subprocess.Popen[bytes]:
    """``produce --file -`` reading from a pipe the test writes to."""
    return subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
        [sys.executable, "-m", "eventwire", "produce", "--event", EVENT, "--file", "-",
         "--topic", topic, "--bootstrap-servers", broker.bootstrap_servers, "--json",
         "--rejects", str(rejects)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_slow_stream_is_published_as_it_arrives(
    eventwire_broker: LocalBroker, tmp_path: Path
) -> None:
    topic = eventwire_broker.unique_topic("cli-stream")
    process = _produce_stream(eventwire_broker, topic, tmp_path / "rejects.jsonl")
    try:
        assert process.stdin is not None
        process.stdin.write(b"".join(_encode(order(n)) + b"\n" for n in range(3)))
        process.stdin.flush()
        # Far fewer than --chunk-size (10,000) lines, and the stream stays open: they are
        # published once the first has waited --chunk-wait (0.2 s), not at the end.
        arrived = eventwire_broker.consume(topic, count=3, timeout=30)
        assert sorted(r.value or b"" for r in arrived) == sorted(
            _encode(order(n)) for n in range(3)
        )
        out, err = process.communicate(_encode(order(3)) + b"\n", timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == OK, err
    assert _summary(out.decode())["published"] == 4


def test_ctrl_c_stops_a_stream_at_once(eventwire_broker: LocalBroker, tmp_path: Path) -> None:
    topic = eventwire_broker.unique_topic("cli-stream-sigint")
    process = _produce_stream(eventwire_broker, topic, tmp_path / "rejects.jsonl")
    try:
        assert process.stdin is not None
        process.stdin.write(_encode(order(0)) + b"\n")
        process.stdin.flush()
        eventwire_broker.consume(topic, count=1, timeout=30)  # running, waiting for input
        process.send_signal(signal.SIGINT)
        # Before: ignored until the next line arrived (none does; stdin stays open).
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        out, err = process.communicate()
    assert process.returncode == INTERRUPTED
    [line] = stderr_lines(subprocess.CompletedProcess([], 0, out.decode(), err.decode()))
    assert line.startswith("eventwire: error: interrupted after 1 lines: 1 published")
