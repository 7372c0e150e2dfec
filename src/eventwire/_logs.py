"""eventwire's log lines: standard ``logging`` records under the ``eventwire`` logger.

A library leaves logging to the application. Until the application configures it, Python's
own default applies: records of WARNING and above go to stderr, bare (``logging.lastResort``),
and the rest nowhere; nothing ever goes to stdout. eventwire adds no handler and never calls
``basicConfig``.

Each line is one event with a stable, namespaced name and fields (``log.warning(
"eventwire.publish_failed", topic=..., code=...)``), and reaches both kinds of set-up:

* plain ``logging``: the message is the event and its fields,
  ``eventwire.publish_failed topic=orders event_id=... code=_MSG_TIMED_OUT``;
* structured (structlog's ``ProcessorFormatter`` with ``ExtraAdder``, or a JSON formatter
  reading extras): the record carries ``event`` and every field as attributes, which become
  the structured event ``{"event": "eventwire.publish_failed", "topic": "orders", ...}``.

librdkafka's own lines go to the child logger ``eventwire.librdkafka``, so an application can
set its level apart. Modules take their logger with ``from eventwire._logs import log``.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Final, TypeAlias

#: The logger every eventwire record goes to (or a child of it).
LOGGER_NAME: Final = "eventwire"

#: ``LogRecord`` attributes a field may not overwrite (``logging`` raises ``KeyError``): a field
#: of such a name (or named ``event``) is stored as ``eventwire_<name>``.
RESERVED_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}

_TAKEN: Final = RESERVED_ATTRIBUTES | {"event"}
ExcInfo: TypeAlias = bool | BaseException
_PLAIN: Final = re.compile(r"[^\s\"'=]+")


class EventLogger:
    """Emits named events with fields as ``logging`` records; see the module docstring.

    Nothing is built when the logger's level leaves the event out (one ``isEnabledFor``
    check, which ``logging`` caches).
    """

    __slots__ = ("_logger",)

    def __init__(self, name: str = LOGGER_NAME) -> None:
        self._logger = logging.getLogger(name)

    @property
    def name(self) -> str:
        """The ``logging`` logger's name."""
        return self._logger.name

    def debug(self, event: str, /, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, /, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, /, *, exc_info: ExcInfo = False, **fields: Any) -> None:
        """An ERROR; ``exc_info`` attaches an exception (``True``: the one being handled)."""
        self._emit(logging.ERROR, event, fields, exc_info)

    def exception(self, event: str, /, **fields: Any) -> None:
        """An ERROR with the exception being handled."""
        self._emit(logging.ERROR, event, fields, True)

    def log(self, level: int, event: str, /, **fields: Any) -> None:
        self._emit(level, event, fields)

    def _emit(
        self, level: int, event: str, fields: dict[str, Any], exc_info: ExcInfo = False
    ) -> None:
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        extra = {"event": event}
        for key, value in fields.items():
            extra[f"eventwire_{key}" if key in _TAKEN else key] = value
        # stacklevel 3: the record names the eventwire function that logged, not this one.
        logger.log(level, render(event, fields), exc_info=exc_info, extra=extra, stacklevel=3)


def render(event: str, fields: dict[str, Any]) -> str:
    """``event key=value ...``: a string value is quoted (JSON) when it holds spaces or
    quotes, anything else is its ``repr``."""
    parts = [event]
    for key, value in fields.items():
        if isinstance(value, str):
            shown = value if _PLAIN.fullmatch(value) else json.dumps(value, ensure_ascii=False)
        else:
            shown = repr(value)
        parts.append(f"{key}={shown}")
    return " ".join(parts)


#: The logger of eventwire's own events.
log: Final = EventLogger()
#: librdkafka's log lines (``eventwire.librdkafka`` events), under their own logger.
librdkafka_log: Final = EventLogger(f"{LOGGER_NAME}.librdkafka")
