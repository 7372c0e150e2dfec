"""``eventwire schema asyncapi MODULE...``: the AsyncAPI 3.0 document of what a service
publishes."""

from __future__ import annotations

import json
from typing import Any

from eventwire._asyncapi import asyncapi_document
from eventwire._cli.errors import CliError
from eventwire._cli.loading import load_events


def render_asyncapi(
    references: list[str],
    *,
    as_yaml: bool,
    title: str | None,
    version: str,
    encoding: str,
    servers: list[str],
) -> str:
    """The document for the event classes of ``references`` (``module`` or ``module:Class``),
    as JSON (or YAML) text with a final newline.

    Raises:
        CliError: a module cannot be imported or holds no event; YAML asked without PyYAML.
    """
    classes: dict[int, type[Any]] = {}
    for reference in references:
        for cls in load_events(reference):
            classes.setdefault(id(cls), cls)
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
