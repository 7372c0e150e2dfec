"""Finding an event class from a ``module:Class`` reference given on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import eventwire
import eventwire.inspect
from eventwire._cli.errors import CliError


def load_event_class(reference: str) -> type[Any]:
    """Import ``module:Class`` (``Class`` may be dotted) and check it is an eventwire event.

    The current directory is importable, as with ``python -m``.

    Raises:
        CliError: the reference is malformed, the import failed, or the object is not a class
            declared with ``@eventwire.event``.
    """
    module_name, sep, qualname = reference.partition(":")
    if not sep or not module_name or not qualname:
        raise CliError(
            f"event {reference!r} must be given as module:Class (e.g. shop.events:OrderPlaced)"
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise CliError(
                f"cannot import module {module_name!r}: no module named {exc.name!r}"
            ) from None
        raise CliError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error in user code becomes one clear line
        raise CliError(
            f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {qualname!r}") from None
    if not isinstance(target, type) or not eventwire.inspect.is_event(target):
        raise CliError(f"{reference} is not an event class: declare it with @eventwire.event(...)")
    return target
