"""The logger every eventwire module writes to."""

from __future__ import annotations

from typing import Any

import structlog


def logger() -> Any:
    """The ``eventwire`` logger."""
    return structlog.get_logger("eventwire")
