"""The public surface: ``__all__`` is sorted, complete, and every name resolves."""

from __future__ import annotations

import types

import eventwire
import eventwire.inspect
import eventwire.testing
import eventwire.transactions


def _isort_style(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return (kind, name)


def test_all_is_sorted_and_resolves() -> None:
    for module in (eventwire, eventwire.testing):
        assert list(module.__all__) == sorted(module.__all__, key=_isort_style)
        for name in module.__all__:
            assert hasattr(module, name), name


def test_all_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(eventwire).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(eventwire.__all__)


def test_the_surface_is_about_thirty_names_and_five_public_submodules() -> None:
    # Plumbing (the codec, introspection, the transport seam), the security settings and the
    # transactions' scopes and errors live in public submodules; the other errors stay at the
    # top (one tree users catch from one place).
    assert len(eventwire.__all__) <= 36
    for module in (
        eventwire.codec,
        eventwire.inspect,
        eventwire.transport,
        eventwire.security,
        eventwire.transactions,
    ):
        assert list(module.__all__) == sorted(module.__all__, key=_isort_style)
        assert all(hasattr(module, name) for name in module.__all__)
    for moved in ("CLASSIFICATION", "EncodedEvent", "EventCodec", "EventSpec", "is_event"):
        assert not hasattr(eventwire, moved), moved


def test_typing_module_imports() -> None:
    from tests.typing import check_public_api

    assert eventwire.inspect.is_event(check_public_api.OrderPlaced)
