"""eventwire's log records: standard ``logging`` under the ``eventwire`` logger, readable as
text and as structured events; the test kit's ``capture_logs``; no module logs otherwise."""

from __future__ import annotations

import ast
import logging
import threading
from pathlib import Path

import pytest

from eventwire._logs import EventLogger
from eventwire.testing import capture_logs

SRC = Path(__file__).parents[2] / "src" / "eventwire"


def _emit_here(log: EventLogger) -> None:
    log.warning("eventwire.test_event", topic="orders", reason="a b", message="m", attempts=2)


def test_a_record_reads_as_text_and_carries_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="eventwire"):
        _emit_here(EventLogger())
    [record] = caplog.records
    assert record.name == "eventwire"
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        'eventwire.test_event topic=orders reason="a b" message=m attempts=2'
    )
    fields = record.__dict__
    assert (fields["event"], fields["topic"], fields["reason"], fields["attempts"]) == (
        "eventwire.test_event",
        "orders",
        "a b",
        2,
    )
    # A field named like a LogRecord attribute cannot overwrite it.
    assert fields["eventwire_message"] == "m"
    # The record points at the code that logged, not at the logger.
    assert record.funcName == "_emit_here"


def test_nothing_is_built_below_the_loggers_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="eventwire"):
        EventLogger().info("eventwire.quiet", value=object())
    assert caplog.records == []


def test_capture_logs_gives_structlog_shaped_entries_from_every_thread() -> None:
    logger = logging.getLogger("eventwire")
    logger.setLevel(logging.ERROR)  # an application's choice; capture_logs sees below it
    try:
        with capture_logs() as logs:
            EventLogger().info("eventwire.main_thread", n=1)
            worker = threading.Thread(
                target=EventLogger("eventwire.librdkafka").log,
                args=(logging.DEBUG, "eventwire.librdkafka"),
                kwargs={"facility": "FAIL", "text": "down"},
            )
            worker.start()
            worker.join()
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                EventLogger().exception("eventwire.failed")
        assert logs[:2] == [
            {"event": "eventwire.main_thread", "log_level": "info", "logger": "eventwire", "n": 1},
            {
                "event": "eventwire.librdkafka",
                "log_level": "debug",
                "logger": "eventwire.librdkafka",
                "facility": "FAIL",
                "text": "down",
            },
        ]
        assert logs[2]["log_level"] == "error"
        assert isinstance(logs[2]["exc_info"], RuntimeError)
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(logging.NOTSET)


def _imports_and_calls(path: Path) -> tuple[set[str], set[str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: set[str] = set()
    called: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            called.add(node.func.attr)
    return imported, called


def test_the_library_logs_only_through_its_logger() -> None:
    # New modules take `from eventwire._logs import log`; structlog's default logger prints
    # to stdout, and configuring logging is the application's business. The command line
    # is an application (it sets a handler for its own run), and capture_logs handles the
    # records of its block.
    for path in sorted(SRC.rglob("*.py")):
        imported, called = _imports_and_calls(path)
        where = path.relative_to(SRC)
        assert "structlog" not in imported, f"{where} imports structlog"
        if where.parts[0] != "_cli" and where != Path("testing/_logs.py"):
            assert not called & {"basicConfig", "addHandler", "dictConfig"}, where
