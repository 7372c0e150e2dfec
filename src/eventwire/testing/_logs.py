"""Capturing eventwire's log events in tests, as dicts."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from eventwire._logs import LOGGER_NAME, RESERVED_ATTRIBUTES


class _Capture(logging.Handler):
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        super().__init__(logging.NOTSET)
        self._entries = entries

    def emit(self, record: logging.LogRecord) -> None:
        attributes = record.__dict__
        entry: dict[str, Any] = {
            "event": attributes.get("event", record.getMessage()),
            "log_level": record.levelname.lower(),
            "logger": record.name,
        }
        for key, value in attributes.items():
            if key not in RESERVED_ATTRIBUTES and key != "event":
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = record.exc_info[1]
        self._entries.append(entry)


@contextlib.contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Capture the log events eventwire emits while the block runs.

    Each entry is a dict like those of ``structlog.testing.capture_logs``: ``event`` (e.g.
    ``"eventwire.publish_failed"``), ``log_level`` (``"warning"``), ``logger`` (``"eventwire"``
    or ``"eventwire.librdkafka"``) and the event's fields (``topic``, ``code``...), plus
    ``exc_info`` (the exception) when one is attached. Events from every thread are captured,
    the publishers' poll threads included.

    Args:
        level: the lowest level captured. The ``eventwire`` logger is set to it for the
            block and restored afterwards; records still reach the application's handlers.

    Example::

        with capture_logs() as logs:
            publisher.publish(event)
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == []
    """
    entries: list[dict[str, Any]] = []
    handler = _Capture(entries)
    logger = logging.getLogger(LOGGER_NAME)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield entries
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
