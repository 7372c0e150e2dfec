"""``eventwire schema asyncapi MODULE...``: the AsyncAPI 3.0 document of what a service
publishes."""

from __future__ import annotations

import json
import sys
from typing import Any

from eventwire._asyncapi import asyncapi_document
from eventwire._cli.errors import CliError
from eventwire._cli.loading import load_events
from eventwire._cli.paths import Input, refuse_overwriting, source_of


def render_asyncapi(
    references: list[str],
    *,
    as_yaml: bool,
    title: str | None,
    version: str,
    encoding: str,
    servers: list[str],
    output: str | None = None,
) -> str:
    """The document for the event classes of ``references`` (``module`` or ``module:Class``),
    as JSON (or YAML) text with a final newline.

    ``output`` is where the caller will write it: refused if it is the source of a module
    named or of an event class found.

    Raises:
        CliError: a module cannot be imported or holds no event; YAML asked without PyYAML;
            ``output`` is a source file (exit code 2).
    """
    classes: dict[int, type[Any]] = {}
    for reference in references:
        for cls in load_events(reference):
            classes.setdefault(id(cls), cls)
    if output is not None:
        refuse_overwriting("--output", output, _sources(references, classes.values()))
    document = asyncapi_document(
        list(classes.values()),
        title=title or ", ".join(references),
        version=version,
        encoding=encoding,
        servers=servers,
        description=f"Events published with eventwire (from {', '.join(references)}).",
    )
    if not as_yaml:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        import yaml
    except ModuleNotFoundError:
        raise CliError("--yaml needs PyYAML: pip install 'eventwire[cli]'") from None
    text: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return text


def _sources(references: list[str], classes: Any) -> list[Input]:
    """The files the document is built from: each module named and each class's module."""
    found: list[Input] = []
    for reference in references:
        file = getattr(sys.modules.get(reference.partition(":")[0]), "__file__", None)
        if file:
            found.append((f"the source of {reference.partition(':')[0]}", file))
    for cls in classes:
        found.extend(source_of(cls))
    return found
