"""``eventwire.testing.assert_schema_snapshots``: a service's event schemas against the
snapshots committed in its repository, and new versions against the versions before them."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any

import msgspec
import pytest

import eventwire
from eventwire.testing import assert_schema_snapshots


def module_of(*classes: type[Any], name: str = "shop.events") -> types.ModuleType:
    module = types.ModuleType(name)
    for cls in classes:
        setattr(module, cls.__name__, cls)
    return module


def order_placed(*fields: tuple[str, Any] | tuple[str, Any, Any], version: int = 1) -> type[Any]:
    cls = msgspec.defstruct("OrderPlaced", [("order_id", str), *fields], frozen=True, kw_only=True)
    return eventwire.event(topic="orders", key="order_id", type="order.placed", version=version)(
        cls
    )


def snapshot(folder: Path, version: int = 1) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / f"order.placed.v{version}.schema.json").read_text())
    return data


def test_missing_snapshots_fail_until_written(tmp_path: Path) -> None:
    module = module_of(order_placed(("total", int)))
    with pytest.raises(AssertionError) as failure:
        assert_schema_snapshots(module, directory=tmp_path, update=False)
    assert str(failure.value) == (
        f"event schemas do not match the snapshots in {tmp_path}:\n"
        f"  - order.placed version 1: no snapshot in {tmp_path}/order.placed.v1.schema.json;"
        " run the tests with EVENTWIRE_UPDATE_SCHEMAS=1 to write it, then commit it"
    )
    assert list(tmp_path.iterdir()) == []
    assert_schema_snapshots(module, directory=tmp_path, update=True)
    written = (tmp_path / "order.placed.v1.schema.json").read_text()
    assert json.loads(written)["x-eventwire"]["type"] == "order.placed"
    assert written.startswith('{\n  "$schema"')  # as export writes it
    assert written.endswith("}\n")
    assert_schema_snapshots(module, directory=tmp_path, update=False)  # now it matches


def test_update_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = module_of(order_placed(("total", int)))
    monkeypatch.setenv("EVENTWIRE_UPDATE_SCHEMAS", "1")
    assert_schema_snapshots(module, directory=tmp_path / "schemas")
    assert (tmp_path / "schemas" / "order.placed.v1.schema.json").exists()
    monkeypatch.setenv("EVENTWIRE_UPDATE_SCHEMAS", "0")
    changed = module_of(order_placed(("total", int), ("note", str, "")))
    with pytest.raises(AssertionError, match="a compatible change not recorded"):
        assert_schema_snapshots(changed, directory=tmp_path / "schemas", mode="forward")


def test_a_compatible_change_in_a_version_is_recorded_when_updating(tmp_path: Path) -> None:
    assert_schema_snapshots(
        module_of(order_placed(("total", int))), directory=tmp_path, update=True
    )
    widened = module_of(order_placed(("total", float)))  # integer -> number: backward-compatible
    with pytest.raises(AssertionError, match="a compatible change not recorded"):
        assert_schema_snapshots(widened, directory=tmp_path, update=False)
    assert_schema_snapshots(widened, directory=tmp_path, update=True)
    assert snapshot(tmp_path)["$defs"]["OrderPlaced"]["properties"]["total"] == {"type": "number"}


def test_an_incompatible_change_in_a_version_is_never_written(tmp_path: Path) -> None:
    assert_schema_snapshots(
        module_of(order_placed(("total", int))), directory=tmp_path, update=True
    )
    before = snapshot(tmp_path)
    broken = module_of(order_placed(("total", str)))
    with pytest.raises(AssertionError) as failure:
        assert_schema_snapshots(broken, directory=tmp_path, update=True)
    assert str(failure.value).splitlines()[1:] == [
        f"  - order.placed version 1 changed incompatibly with"
        f" {tmp_path}/order.placed.v1.schema.json (backward):",
        "    backward: #/properties/total: TYPE_CHANGED: the type differs between OLD and NEW",
        "    declare the change as version=2, or undo it",
    ]
    assert snapshot(tmp_path) == before


def test_a_new_version_that_breaks_the_previous_one_is_flagged(tmp_path: Path) -> None:
    assert_schema_snapshots(
        module_of(order_placed(("total", int))), directory=tmp_path, update=True
    )
    v2 = module_of(order_placed(("total", str), version=2))
    with pytest.raises(AssertionError) as failure:
        assert_schema_snapshots(v2, directory=tmp_path, update=True)
    assert str(failure.value).splitlines()[1:] == [
        "  - version 2 of 'order.placed' breaks version 1 (backward): its consumers must tell the"
        " versions apart (the ce_eventversion header) or read another topic",
        "    backward: #/properties/total: TYPE_CHANGED: the type differs between OLD and NEW",
        "    if intended, pass accept_breaking=[('order.placed', 2)]",
    ]
    # the new version's own snapshot was written; the break stays flagged until accepted
    assert snapshot(tmp_path, 2)["x-eventwire"]["version"] == 2
    with pytest.raises(AssertionError, match=re.escape("breaks version 1")):
        assert_schema_snapshots(v2, directory=tmp_path, update=False)
    assert_schema_snapshots(v2, directory=tmp_path, accept_breaking=[("order.placed", 2)])


def test_a_compatible_new_version_passes(tmp_path: Path) -> None:
    assert_schema_snapshots(
        module_of(order_placed(("total", int))), directory=tmp_path, update=True
    )
    v2 = module_of(order_placed(("total", int), ("note", str, ""), version=2))
    # adding a field to an open model breaks backward (old data may hold any 'note') ...
    with pytest.raises(AssertionError, match="breaks version 1"):
        assert_schema_snapshots(v2, directory=tmp_path, update=True)
    # ... and is forward-compatible: consumers still on version 1 ignore the field
    assert_schema_snapshots(v2, directory=tmp_path, mode="forward")


def test_versions_side_by_side_in_one_module_are_checked(tmp_path: Path) -> None:
    v1 = order_placed(("total", int))
    v2 = order_placed(("total", str), version=2)
    module = module_of(v1, msgspec.defstruct("Unrelated", [("x", int)]), name="shop.both")
    module.OrderPlacedV2 = v2  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match=re.escape("version 2 of 'order.placed' breaks")):
        assert_schema_snapshots(module, directory=tmp_path, update=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "order.placed.v1.schema.json",
        "order.placed.v2.schema.json",
    ]


def test_modules_by_name_and_conflicting_declarations(tmp_path: Path) -> None:
    assert_schema_snapshots(
        "examples.multi_topic_publisher", directory=tmp_path, update=True, mode="full"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "shop.order.placed.v1.schema.json",
        "shop.order.shipped.v2.schema.json",
        "shop.payment.captured.v1.schema.json",
    ]
    with pytest.raises(AssertionError) as failure:
        assert_schema_snapshots(
            "examples.multi_topic_publisher",
            "examples.basic_order_publisher",
            directory=tmp_path,
            update=True,
        )
    assert (
        "examples.basic_order_publisher.OrderPlaced and examples.multi_topic_publisher.OrderPlaced"
        " both declare shop.order.placed version 1 with different schemas"
    ) in str(failure.value)
    with pytest.raises(AssertionError, match=re.escape("module tests.unit holds no event class")):
        assert_schema_snapshots("tests.unit", directory=tmp_path)


def test_a_foreign_file_in_the_directory_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.schema.json").write_text("{}")
    with pytest.raises(
        AssertionError, match=re.escape("notes.schema.json is not a schema written by")
    ):
        assert_schema_snapshots(module_of(order_placed()), directory=tmp_path, update=True)
