"""Finding event classes from ``module:Class`` or ``module`` references on the command line."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

import eventwire
import eventwire.inspect
from eventwire._cli.errors import CliError
from eventwire._schema_export import events_in


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
    target: Any = import_module(module_name)
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {qualname!r}") from None
    if not isinstance(target, type) or not eventwire.inspect.is_event(target):
        raise CliError(f"{reference} is not an event class: declare it with @eventwire.event(...)")
    return target


def load_events(reference: str) -> list[type[Any]]:
    """The event classes of ``module`` (every class declared with ``@eventwire.event`` that it
    holds) or the one class of ``module:Class``.

    Raises:
        CliError: the import failed, or the module holds no event class.
    """
    if ":" in reference:
        return [load_event_class(reference)]
    classes = events_in(import_module(reference))
    if not classes:
        raise CliError(
            f"module {reference!r} holds no event class (declared with @eventwire.event)"
        )
    return classes


def import_module(module_name: str) -> ModuleType:
    """Import a module of the user's, the current directory importable as with ``python -m``.

    Raises:
        CliError: the import failed (one line naming the module and the error).
    """
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
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
