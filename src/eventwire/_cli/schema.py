"""``eventwire schema export``: the JSON Schema of an event class, with its eventwire binding."""

from __future__ import annotations

import json
from typing import Any

import msgspec

import eventwire
from eventwire._cli.loading import load_event_class

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_schema(cls: type[Any]) -> dict[str, Any]:
    """msgspec's JSON Schema of ``cls`` plus an ``x-eventwire`` object: the CloudEvents type,
    schema version, declared topic and key field."""
    spec = eventwire.spec_of(cls)
    generated = msgspec.json.schema(cls)
    return {
        "$schema": DIALECT,
        "title": cls.__name__,
        "x-eventwire": {
            "type": spec.type,
            "version": spec.version,
            "topic": spec.topic,
            "key": spec.key,
        },
        **generated,
    }


def export_schema(reference: str, indent: int) -> str:
    """The schema of the event ``module:Class`` as JSON text (with a final newline).

    Raises:
        CliError: the class cannot be loaded or is not an event.
    """
    schema = event_schema(load_event_class(reference))
    return json.dumps(schema, indent=indent or None, ensure_ascii=False) + "\n"
