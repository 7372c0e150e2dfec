"""``eventwire produce``: validate a JSON Lines file against an event class and publish it.

Each line is checked with the typed decoder of the event (the reference validation: types,
``Meta`` constraints, timezone-aware datetimes, ``Decimal`` money as strings), decoded into the
class, and published with ``AsyncPublisher.publish_many`` in chunks. A bad line is written to
the rejects file and never stops the good ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import msgspec

import eventwire
import eventwire.codec
import eventwire.inspect
from eventwire._cli.connection import check_connection, connection_kwargs
from eventwire._cli.errors import INTERRUPTED, OK, REJECTED, UNDELIVERED, CliError
from eventwire._cli.input import FileInput, Line, StreamInput, open_input
from eventwire._cli.loading import load_event_class
from eventwire._cli.output import report_console
from eventwire._cli.paths import refuse_overwriting, source_of
from eventwire._events import strict_validation_type

#: Unknown fields named in the summary table (the JSON summary has them all).
_SHOWN_FIELDS: Final = 5


@dataclass
class ProduceSummary:
    """What one run did.

    ``startup`` is the time until the first event was acknowledged (connecting, and the
    idempotent producer's id, which librdkafka requests in 500 ms steps); ``elapsed`` is the
    publishing after it, and ``throughput`` the events published in that time per second.
    """

    read: int = 0
    published: int = 0
    rejected: int = 0
    failed: int = 0
    startup: float = 0.0
    elapsed: float = 0.0
    #: Events published after the start-up (what ``throughput`` counts).
    steady: int = 0
    rejects_file: str | None = None
    topics: dict[str, int] = field(default_factory=dict)
    #: Unknown fields (dropped, or refused with --forbid-unknown-fields) -> lines holding them.
    unknown_fields: dict[str, int] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.steady / self.elapsed if self.elapsed > 0 else 0.0

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


_UNKNOWN_FIELD: Final = re.compile(r"^Object contains unknown field `(?P<name>.*)`$")
_INDEX: Final = re.compile(r"\[[^\]]*\]")


class _UnknownFieldsError(eventwire.EventValidationError):
    """A valid line with fields the event class does not have, refused on request."""

    def __init__(self, event_type: str, fields: list[str]) -> None:
        self.fields = fields
        plural = "s" if len(fields) > 1 else ""
        super().__init__(
            event_type,
            fields[0],
            f"unknown field{plural} {', '.join(fields)} (--forbid-unknown-fields)",
        )


class _LineChecker:
    """Turns one raw line into an event, or into the reason it is refused, and finds the
    fields the event class does not have (msgspec drops them silently)."""

    def __init__(self, cls: type[Any], *, forbid_unknown_fields: bool) -> None:
        self._cls = cls
        self._type = eventwire.inspect.spec_of(cls).type
        # The reference check: the typed decoder eventwire validates encoded bytes with.
        self._codec = eventwire.codec.EventCodec()
        self._decode = msgspec.json.Decoder(cls).decode
        # The same check refusing unknown fields: one decode when the line has none.
        self._strict = msgspec.json.Decoder(strict_validation_type(cls)).decode
        self._forbid = forbid_unknown_fields

    def check(self, raw: bytes) -> tuple[Any, list[str]]:
        """Return the event and the paths of the unknown fields it dropped.

        Raises:
            EventValidationError: the line is not a valid event (``path`` names the field),
                or it has unknown fields and they are forbidden.
        """
        # Invalid, unknown fields, or bytes nothing decodes: the reference check tells which.
        with contextlib.suppress(Exception):
            self._strict(raw)
            return self._decoded(raw), []
        # Whatever the bytes (not JSON, not UTF-8, nested beyond the recursion limit), the
        # typed decode refuses them as a validation error about the line.
        self._codec.validate_bytes(self._cls, raw)
        try:
            unknown = self._unknown_fields(raw)
        except Exception as exc:  # a valid line the untyped decoder refuses (nesting)
            raise eventwire.EventValidationError(self._type, "$", str(exc)) from exc
        if unknown and self._forbid:
            raise _UnknownFieldsError(self._type, unknown)
        return self._decoded(raw), unknown

    def _decoded(self, raw: bytes) -> Any:
        try:
            return self._decode(raw)
        except Exception as exc:  # the class's own decoder disagreed with the typed one
            raise eventwire.EventValidationError(self._type, "$", str(exc)) from exc

    def _unknown_fields(self, raw: bytes) -> list[str]:
        """Every unknown field of a valid line: the strict decoder names one at a time, so
        each is removed from a plain copy of the line until it passes."""
        document: Any = msgspec.json.decode(raw)
        found: list[str] = []
        for _ in range(1_000):  # each round removes a field: bounded by the line's size
            try:
                self._strict(msgspec.json.encode(document))
            except msgspec.ValidationError as exc:
                reason, at, where = str(exc).rpartition(" - at `")
                # msgspec names no path for the top level
                reason, where = (reason, where.rstrip("`")) if at else (str(exc), "$")
                match = _UNKNOWN_FIELD.match(reason)
                if match is None:
                    break
                name = match["name"]
                found.append(f"{where}.{name}")
                container = _at(document, where)
                # A path through a dict's values ("[...]") names no key: the field cannot be
                # removed to look for more.
                if not isinstance(container, dict) or name not in container:
                    break
                del container[name]
            else:
                break
        return found


def _at(document: Any, path: str) -> Any:
    """The value at a msgspec error path (``$``, ``$.a.b``, ``$.a[0].b``), or ``None``."""
    node = document
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path.removeprefix("$")):
        try:
            node = node[name] if name else node[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return node


class _RejectsFile:
    """The rejects file, created when the first line is rejected: a run without rejects
    leaves none (and removes one left by an earlier run, which would tell of lines that are
    now fine)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._out: IO[bytes] | None = None
        self._encode = msgspec.json.Encoder().encode

    def check_writable(self) -> None:
        """Fail now, before reading anything, rather than at the first rejected line.

        Raises:
            CliError: the file or its folder cannot be written.
        """
        target = Path(self.path)
        folder = target.parent if str(target.parent) else Path()
        problem = None
        if target.is_dir():
            problem = "it is a directory"
        elif target.exists() and not os.access(target, os.W_OK):
            problem = "permission denied"
        elif not folder.is_dir():
            problem = f"{folder} is not a directory"
        elif not target.exists() and not os.access(folder, os.W_OK | os.X_OK):
            problem = f"cannot create files in {folder}"
        if problem is not None:
            raise CliError(f"cannot write the rejects file {self.path}: {problem}")

    @property
    def written(self) -> bool:
        return self._out is not None

    def write(self, record: _Reject) -> None:
        if self._out is None:
            try:
                self._out = Path(self.path).open("wb")  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise CliError(
                    f"cannot write the rejects file {self.path}: {exc.strerror or exc}"
                ) from None
        self._out.write(self._encode(record) + b"\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            return
        target = Path(self.path)
        if target.is_file() or target.is_symlink():
            with contextlib.suppress(OSError):
                target.unlink()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


class _Run:
    """One run's checking, publishing and bookkeeping."""

    def __init__(
        self,
        checker: _LineChecker,
        rejects: _RejectsFile,
        summary: ProduceSummary,
        *,
        topic: str | None,
    ) -> None:
        self._checker = checker
        self._rejects = rejects
        self._summary = summary
        self._topic = topic
        self._started: float | None = None

    def reject(self, number: int, raw: bytes, stage: str, exc: Exception) -> None:
        error = type(exc).__name__
        if isinstance(exc, eventwire.EventValidationError):
            path: str | None = exc.path
            reason = exc.reason
            error = eventwire.EventValidationError.__name__
        else:
            path, reason = None, str(exc)
        self._rejects.write(
            _Reject(
                line=number, stage=stage, path=path, reason=reason, text=_text(raw), error=error
            )
        )

    def check(self, chunk: list[Line]) -> tuple[list[Any], list[Line]]:
        """The valid events of a chunk and their lines; the rest is rejected."""
        summary = self._summary
        summary.read += len(chunk)
        events: list[Any] = []
        lines: list[Line] = []
        for number, raw in chunk:
            try:
                event, unknown = self._checker.check(raw)
            except eventwire.EventValidationError as exc:
                summary.rejected += 1
                self.reject(number, raw, "validation", exc)
                if isinstance(exc, _UnknownFieldsError):
                    self._count_unknown(exc.fields)
                continue
            if unknown:
                self._count_unknown(unknown)
            events.append(event)
            lines.append((number, raw))
        return events, lines

    def _count_unknown(self, paths: list[str]) -> None:
        # Indexes differ from line to line: $.items[3].note counts as $.items[].note.
        fields = self._summary.unknown_fields
        for path in {_INDEX.sub("[]", p) for p in paths}:
            fields[path] = fields.get(path, 0) + 1

    def settle(self, lines: list[Line], outcomes: list[eventwire.PublishOutcome]) -> None:
        summary = self._summary
        for (number, raw), outcome in zip(lines, outcomes, strict=True):
            if isinstance(outcome, eventwire.DeliveryReceipt):
                summary.published += 1
                summary.topics[outcome.topic] = summary.topics.get(outcome.topic, 0) + 1
                if self._started is not None:
                    summary.steady += 1
            elif isinstance(outcome, eventwire.EventValidationError):
                # Checked above already; the publisher's own check of the object disagreed.
                summary.rejected += 1
                self.reject(number, raw, "validation", outcome)
            else:
                summary.failed += 1
                self.reject(number, raw, "delivery", outcome)

    async def publish(
        self,
        config: eventwire.PublisherConfig,
        source: FileInput | StreamInput,
        *,
        chunk_size: int,
        chunk_wait: float,
        progress: Any,
        task_id: Any,
    ) -> None:
        summary = self._summary
        async with eventwire.AsyncPublisher(config) as publisher:
            opened = time.perf_counter()
            in_flight: asyncio.Task[None] | None = None
            async for chunk in source.chunks(chunk_size, chunk_wait):
                # Checking this chunk overlaps with the delivery of the previous one.
                events, lines = self.check(chunk)
                # One chunk at a time is produced, in file order, so order per key is kept.
                if in_flight is not None:
                    await in_flight
                    in_flight = None
                if events and self._started is None:
                    # The first event goes alone: its acknowledgement ends the start-up
                    # (connecting, the producer id), which is not publishing throughput.
                    await self._publish_chunk(publisher, events[:1], lines[:1])
                    self._started = time.perf_counter()
                    summary.startup = self._started - opened
                    events, lines = events[1:], lines[1:]
                if events:
                    # Settled as soon as delivered: a stream may wait long for its next chunk.
                    in_flight = asyncio.create_task(self._publish_chunk(publisher, events, lines))
                    await asyncio.sleep(0)  # let it hand the chunk to librdkafka now
                if progress is not None:
                    progress.update(task_id, completed=source.position)
            if in_flight is not None:
                await in_flight
            if self._started is not None:
                summary.elapsed = time.perf_counter() - self._started

    async def _publish_chunk(
        self, publisher: eventwire.AsyncPublisher, events: list[Any], lines: list[Line]
    ) -> None:
        self.settle(lines, await publisher.publish_many(events, topic=self._topic))


def run_produce(
    *,
    event: str,
    file: str,
    topic: str | None,
    bootstrap_servers: str | None,
    rejects: str | None,
    encoding: str,
    preset: str,
    chunk_size: int,
    chunk_wait: float,
    forbid_unknown_fields: bool,
    delivery_timeout: float,
    connect_timeout: float,
    show_progress: bool,
    config_file: str | None = None,
) -> ProduceSummary:
    """Validate and publish every line of ``file``; returns what happened.

    The cluster is ``bootstrap_servers``, else ``$EVENTWIRE_BOOTSTRAP_SERVERS``, else the
    ``bootstrap.servers`` of ``config_file``; its security comes from ``config_file`` and the
    ``EVENTWIRE_*`` variables (``_cli.connection``).

    Raises:
        CliError: the event class, the input or the rejects file cannot be used (exit code 2
            when the rejects file is the input), the configuration is refused, or no broker
            answers.
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
    rejects_path = rejects or (
        "eventwire-rejects.jsonl" if file == "-" else f"{file}.rejects.jsonl"
    )
    refuse_overwriting("--rejects", rejects_path, [("the input (--file)", file), *source_of(cls)])
    connection = connection_kwargs(config_file, bootstrap_servers, os.environ)
    connection.setdefault("client_id", "eventwire-cli")
    for flag in ("preset", "encoding", "delivery_timeout"):  # the command's flags say these
        connection.pop(flag, None)
    try:
        config = eventwire.PublisherConfig(
            **connection,
            preset=preset,  # type: ignore[arg-type]  # argparse restricts the choices
            encoding=encoding,  # type: ignore[arg-type]
            source="/eventwire/cli",
            delivery_timeout=delivery_timeout,
        )
        if topic is not None:  # else every line would fail on it, one by one
            config._resolve_topic(topic)
    except eventwire.ConfigError as exc:
        raise CliError(f"invalid configuration: {exc}") from None
    summary = ProduceSummary()
    rejects_file = _RejectsFile(rejects_path)
    checker = _LineChecker(cls, forbid_unknown_fields=forbid_unknown_fields)
    with contextlib.ExitStack() as stack:
        source = open_input(file)
        stack.callback(source.close)
        rejects_file.check_writable()
        check_connection(config, timeout=connect_timeout)
        stack.callback(rejects_file.close)
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
            task = progress.add_task("publish", total=source.size, name=Path(file).name)
        # A shell starts background jobs with SIGINT ignored; Ctrl-C and `kill -INT` must
        # still stop the run (asyncio.run then cancels it and the publisher closes).
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
            stack.callback(signal.signal, signal.SIGINT, previous)
        run = _Run(checker, rejects_file, summary, topic=topic)
        try:
            asyncio.run(
                run.publish(
                    config,
                    source,
                    chunk_size=chunk_size,
                    chunk_wait=chunk_wait,
                    progress=progress,
                    task_id=task,
                )
            )
        except KeyboardInterrupt:
            raise CliError(
                f"interrupted after {summary.read:,} lines: {summary.published:,} published,"
                f" {summary.rejected:,} rejected, {summary.failed:,} failed (the chunk in flight"
                " was closed: its events may have been delivered too)",
                INTERRUPTED,
            ) from None
        finally:
            summary.rejects_file = rejects_path if rejects_file.written else None
    return summary


def print_summary(summary: ProduceSummary, *, as_json: bool) -> None:
    """The summary on stdout: a table, or one JSON object with ``as_json``."""
    if as_json:
        payload = {
            "read": summary.read,
            "published": summary.published,
            "rejected": summary.rejected,
            "failed": summary.failed,
            "startup_s": round(summary.startup, 3),
            "elapsed_s": round(summary.elapsed, 3),
            "throughput_per_s": round(summary.throughput, 1),
            "topics": summary.topics,
            "unknown_fields": summary.unknown_fields,
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
    if summary.unknown_fields:
        ranked = sorted(summary.unknown_fields.items(), key=lambda item: (-item[1], item[0]))
        shown = ", ".join(f"{path} ({count:,})" for path, count in ranked[:_SHOWN_FIELDS])
        more = len(ranked) - _SHOWN_FIELDS
        table.add_row(
            "unknown fields (lines)", shown + (f" and {more} more (--json)" if more > 0 else "")
        )
    table.add_row("start-up", f"{summary.startup:.2f} s (connecting, until the first receipt)")
    if summary.steady:
        table.add_row(
            "throughput",
            f"{summary.throughput:,.0f} events/s ({summary.steady:,} in {summary.elapsed:.3f} s"
            " after the start-up)",
        )
    for name, count in sorted(summary.topics.items()):
        table.add_row(f"topic {name}", f"{count:,}")
    if summary.rejects_file is not None:
        table.add_row("rejects file", summary.rejects_file)
    report_console().print(table)
