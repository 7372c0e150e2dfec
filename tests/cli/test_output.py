"""Reports printed to a file or a CI log are not wrapped at rich's 80 columns."""

from __future__ import annotations

import pytest

from eventwire._cli.output import LOG_WIDTH, report_console


def test_a_piped_report_is_log_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert report_console().width == LOG_WIDTH == 120


def test_columns_still_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert report_console().width == 100
