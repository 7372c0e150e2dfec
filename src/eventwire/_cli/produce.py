"""``eventwire produce``: validate a JSON Lines file against an event class and publish it.

Each line is checked with the typed decoder of the event (the reference validation: types,
``Meta`` constraints, timezone-aware datetimes, ``Decimal`` money as strings), decoded into the
class, and published with ``AsyncPublisher.publish_many`` in chunks. A bad line is written to
the rejects file and never stops the good ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

import msgspec

import eventwire
from eventwire._cli.errors import INTERRUPTED, OK, REJECTED, UNDELIVERED, CliError
from eventwire._cli.loading import load_event_class
from eventwire._cli.output import report_console


@dataclass
class ProduceSummary:
    """What one run did; ``throughput`` is published events per second of publishing."""

    read: int = 0
    published: int = 0
    rejected: int = 0
    failed: int = 0
    elapsed: float = 0.0
    rejects_file: str | None = None
    topics: dict[str, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.published / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def exit_code(self) -> int:
        if self.failed:
            return UNDELIVERED
        return REJECTED if self.rejected else OK


class _Reject(msgspec.Struct, omit_defaults=True):
    """One line of the rejects file."""

    line: int
    stage: str  # "validation" (never sent) or "delivery" (sent, not acknowledged)
    path: str | None
    reason: str
    text: str
    error: str | None = None


class _LineChecker:
    """Turns one raw line into an event, or into the reason it is refused."""

    def __init__(self, cls: type[Any]) -> None:
        self._cls = cls
        # The reference check: the typed decoder eventwire validates encoded bytes with.
        self._codec = eventwire.EventCodec()
        self._decode = msgspec.json.Decoder(cls).decode

    def check(self, raw: bytes) -> Any:
        """Return the event.

        Raises:
            EventValidationError: the line is not a valid event (``path`` names the field).
        """
        # Whatever the bytes (not JSON, not UTF-8, nested beyond the recursion limit), the
        # typed decode refuses them as a validation error about the line.
        self._codec.validate_bytes(self._cls, raw)
        try:
            return self._decode(raw)
        except Exception as exc:  # the class's own decoder disagreed with the typed one
            raise eventwire.EventValidationError(
                eventwire.spec_of(self._cls).type, "$", str(exc)
            ) from exc


_BOM = b"\xef\xbb\xbf"


def _chunks(stream: BinaryIO, size: int) -> Iterator[list[tuple[int, bytes]]]:
    """Non-blank lines with their 1-based line numbers, ``size`` at a time."""
    chunk: list[tuple[int, bytes]] = []
    for number, line in enumerate(stream, 1):
        # Editors on Windows start UTF-8 files with a byte order mark; JSON may not hold it.
        raw = line.removeprefix(_BOM) if number == 1 else line
        if not raw.strip():
            continue
        # The text stays as written (a rejects line quotes it); JSON allows the whitespace.
        chunk.append((number, raw.rstrip(b"\r\n")))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _open_input(path: str) -> tuple[BinaryIO, int | None]:
    if path == "-":
        return sys.stdin.buffer, None
    try:
        stream = Path(path).open("rb")  # noqa: SIM115 - closed by the caller's ExitStack
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    return stream, Path(path).stat().st_size


def _open_rejects(path: str) -> IO[bytes]:
    try:
        return Path(path).open("wb")
    except OSError as exc:
        raise CliError(f"cannot write the rejects file {path}: {exc.strerror or exc}") from None


def _check_reachable(bootstrap_servers: str, timeout: float) -> None:
    """Fail with one line, before reading anything, when no broker answers."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    quiet = logging.getLogger("eventwire.cli.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    settings: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, "logger": quiet}
    admin = AdminClient(settings)
    try:
        admin.list_topics(timeout=timeout)  # no topic named: listing one would create it
    except KafkaException as exc:
        raise CliError(
            f"cannot reach Kafka at {bootstrap_servers} within {timeout:g} s"
            f" ({exc.args[0].str() if exc.args else exc})"
        ) from None


async def _publish(
    config: eventwire.PublisherConfig,
    cls: type[Any],
    stream: BinaryIO,
    rejects: IO[bytes],
    *,
    topic: str | None,
    chunk_size: int,
    progress: Any,
    task_id: Any,
    summary: ProduceSummary,
) -> None:
    checker = _LineChecker(cls)
    encode = msgspec.json.Encoder().encode

    def reject(number: int, raw: bytes, stage: str, exc: Exception) -> None:
        if isinstance(exc, eventwire.EventValidationError):
            path: str | None = exc.path
            reason = exc.reason
        else:
            path, reason = None, str(exc)
        record = _Reject(
            line=number,
            stage=stage,
            path=path,
            reason=reason,
            text=_text(raw),
            error=type(exc).__name__,
        )
        rejects.write(encode(record) + b"\n")

    def settle(lines: list[tuple[int, bytes]], outcomes: list[eventwire.PublishOutcome]) -> None:
        for (number, raw), outcome in zip(lines, outcomes, strict=True):
            if isinstance(outcome, eventwire.DeliveryReceipt):
                summary.published += 1
                summary.topics[outcome.topic] = summary.topics.get(outcome.topic, 0) + 1
            elif isinstance(outcome, eventwire.EventValidationError):
                # Checked above already; the publisher's own check of the object disagreed.
                summary.rejected += 1
                reject(number, raw, "validation", outcome)
            else:
                summary.failed += 1
                reject(number, raw, "delivery", outcome)

    async with eventwire.AsyncPublisher(config) as publisher:
        started = time.perf_counter()
        in_flight: tuple[list[tuple[int, bytes]], asyncio.Task[Any]] | None = None
        for chunk in _chunks(stream, chunk_size):
            # Checking this chunk overlaps with the delivery of the previous one.
            summary.read += len(chunk)
            events: list[Any] = []
            lines: list[tuple[int, bytes]] = []
            for number, raw in chunk:
                try:
                    events.append(checker.check(raw))
                except eventwire.EventValidationError as exc:
                    summary.rejected += 1
                    reject(number, raw, "validation", exc)
                else:
                    lines.append((number, raw))
            # One chunk at a time is produced, in file order, so order per key is kept.
            if in_flight is not None:
                settle(in_flight[0], await in_flight[1])
                in_flight = None
            if events:
                task = asyncio.create_task(publisher.publish_many(events, topic=topic))
                await asyncio.sleep(0)  # let it hand the chunk to librdkafka now
                in_flight = (lines, task)
            if progress is not None:
                progress.update(task_id, completed=stream.tell() if stream.seekable() else None)
        if in_flight is not None:
            settle(in_flight[0], await in_flight[1])
        summary.elapsed = time.perf_counter() - started


def run_produce(
    *,
    event: str,
    file: str,
    topic: str | None,
    bootstrap_servers: str,
    rejects: str | None,
    encoding: str,
    preset: str,
    chunk_size: int,
    delivery_timeout: float,
    connect_timeout: float,
    show_progress: bool,
) -> ProduceSummary:
    """Validate and publish every line of ``file``; returns what happened.

    Raises:
        CliError: the event class, the input or the rejects file cannot be used, the
            configuration is refused, or no broker answers.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cls = load_event_class(event)
    try:
        config = eventwire.PublisherConfig(
            bootstrap_servers=bootstrap_servers,
            preset=preset,  # type: ignore[arg-type]  # argparse restricts the choices
            encoding=encoding,  # type: ignore[arg-type]
            client_id="eventwire-cli",
            source="/eventwire/cli",
            delivery_timeout=delivery_timeout,
        )
        if topic is not None:  # else every line would fail on it, one by one
            config.resolve_topic(topic)
    except eventwire.ConfigError as exc:
        raise CliError(f"invalid configuration: {exc}") from None
    rejects_path = rejects or (
        "eventwire-rejects.jsonl" if file == "-" else f"{file}.rejects.jsonl"
    )
    summary = ProduceSummary(rejects_file=rejects_path)
    with contextlib.ExitStack() as stack:
        stream, size = _open_input(file)
        if file != "-":
            stack.enter_context(stream)
        _check_reachable(bootstrap_servers, timeout=connect_timeout)
        rejects_out = stack.enter_context(_open_rejects(rejects_path))
        console = Console(stderr=True)
        progress = None
        task = None
        if show_progress and console.is_terminal:
            progress = stack.enter_context(
                Progress(
                    TextColumn("publishing {task.fields[name]}"),
                    BarColumn(),
                    DownloadColumn(),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    transient=True,
                )
            )
            task = progress.add_task("publish", total=size, name=Path(file).name)
        # A shell starts background jobs with SIGINT ignored; Ctrl-C and `kill -INT` must
        # still stop the run (asyncio.run then cancels it and the publisher closes).
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
            stack.callback(signal.signal, signal.SIGINT, previous)
        try:
            asyncio.run(
                _publish(
                    config,
                    cls,
                    stream,
                    rejects_out,
                    topic=topic,
                    chunk_size=chunk_size,
                    progress=progress,
                    task_id=task,
                    summary=summary,
                )
            )
        except KeyboardInterrupt:
            raise CliError(
                f"interrupted after {summary.read:,} lines: {summary.published:,} published,"
                f" {summary.rejected:,} rejected, {summary.failed:,} failed (the chunk in flight"
                " was closed: its events may have been delivered too)",
                INTERRUPTED,
            ) from None
    return summary


def print_summary(summary: ProduceSummary, *, as_json: bool) -> None:
    """The summary on stdout: a table, or one JSON object with ``as_json``."""
    if as_json:
        payload = {
            "read": summary.read,
            "published": summary.published,
            "rejected": summary.rejected,
            "failed": summary.failed,
            "elapsed_s": round(summary.elapsed, 3),
            "throughput_per_s": round(summary.throughput, 1),
            "topics": summary.topics,
            "rejects_file": summary.rejects_file,
            "exit_code": summary.exit_code,
        }
        sys.stdout.write(msgspec.json.encode(payload).decode() + "\n")
        return
    from rich.table import Table

    table = Table(title="eventwire produce", show_header=False)
    table.add_row("lines read", f"{summary.read:,}")
    table.add_row("published", f"{summary.published:,}")
    table.add_row("rejected (invalid)", f"{summary.rejected:,}")
    table.add_row("failed (not delivered)", f"{summary.failed:,}")
    table.add_row(
        "throughput", f"{summary.throughput:,.0f} events/s ({summary.elapsed:.2f} s publishing)"
    )
    for name, count in sorted(summary.topics.items()):
        table.add_row(f"topic {name}", f"{count:,}")
    if summary.rejected or summary.failed:
        table.add_row("rejects file", summary.rejects_file or "")
    report_console().print(table)
