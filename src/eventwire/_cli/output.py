"""Where the commands' reports are printed."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

#: Columns of a report that goes to a file or a CI log: rich's default of 80 wrapped the demo's
#: metric names and validation errors mid-word.
LOG_WIDTH = 120


def report_console() -> Console:
    """A rich console on stdout: a terminal's own width, else ``LOG_WIDTH`` (``$COLUMNS``
    still decides when set)."""
    from rich.console import Console

    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(width=LOG_WIDTH if piped else None)
