"""What telemetry keeps on a record in flight, and how a span's context goes into its headers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

from opentelemetry.propagators.textmap import Setter

if TYPE_CHECKING:
    from eventwire._codec import EncodedEvent, Headers


class Traced(Protocol):
    """What telemetry keeps on an event in flight: its own span and its start time (a lone
    send), or the span of the batch call it belongs to."""

    encoded: EncodedEvent
    span: Any
    t0: float | None
    call_span: Any


class _HeaderSetter(Setter["Headers"]):
    """Writes propagation fields into a record's headers, replacing a same-named one."""

    def set(self, carrier: Headers, key: str, value: str) -> None:
        if isinstance(carrier, dict):
            carrier[key] = value.encode()
            return
        carrier[:] = [item for item in carrier if item[0] != key]
        carrier.append((key, value.encode()))


SETTER: Final = _HeaderSetter()


class TopicSpan:
    """The span of a batch call's sends to one topic; ``fields`` are the headers that carry
    its context (``traceparent``, ``tracestate``, ... as the propagator wrote them)."""

    __slots__ = ("count", "fields", "span")

    def __init__(self, span: Any, fields: dict[str, bytes]) -> None:
        self.span = span
        self.fields = fields
        self.count = 0


def text_key(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:  # no canonical text form: the conventions say leave it out
        return None
