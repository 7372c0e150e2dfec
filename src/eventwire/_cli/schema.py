"""``eventwire schema export``: the JSON Schema of an event class, with its eventwire binding."""

from __future__ import annotations

from eventwire._cli.loading import load_event_class
from eventwire._cli.paths import refuse_overwriting, source_of
from eventwire._schema_export import event_schema, schema_text


def export_schema(reference: str, indent: int, *, output: str | None = None) -> str:
    """The schema of the event ``module:Class`` as JSON text (with a final newline).

    Args:
        reference: ``module:Class``.
        indent: JSON indentation; 0 for one line.
        output: where the caller will write it: refused if it is the class's source file.

    Raises:
        CliError: the class cannot be loaded or is not an event, or ``output`` is its source
            (exit code 2).
    """
    cls = load_event_class(reference)
    if output is not None:
        refuse_overwriting("--output", output, source_of(cls))
    return schema_text(event_schema(cls), indent)
