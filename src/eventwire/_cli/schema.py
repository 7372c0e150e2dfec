"""``eventwire schema export``: the JSON Schema of an event class, with its eventwire binding."""

from __future__ import annotations

from eventwire._cli.loading import load_event_class
from eventwire._schema_export import event_schema, schema_text


def export_schema(reference: str, indent: int) -> str:
    """The schema of the event ``module:Class`` as JSON text (with a final newline).

    Raises:
        CliError: the class cannot be loaded or is not an event.
    """
    return schema_text(event_schema(load_event_class(reference)), indent)
