"""The contract suite: every check, against the fakes and the real publishers on a broker."""

from __future__ import annotations

import pytest

from tests.contract.checks import CHECKS, Check
from tests.contract.harness import Target


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
async def test_contract(check: Check, target: Target) -> None:
    await check(target)
