"""How many examples the campaign runs: a small, reproducible number in CI (derandomized, no
example database), and ``EVENTWIRE_FUZZ_EXAMPLES`` of them, randomly, in ``make faults``."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: ``make faults`` sets it (e.g. 20000); unset in CI.
LARGE = int(os.environ.get("EVENTWIRE_FUZZ_EXAMPLES", "0"))
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def campaign(ci_examples: int, *, share: float = 1.0) -> settings:
    """Settings for one property: ``ci_examples`` in CI, ``share`` of the large count in a
    large run."""
    if LARGE:
        return settings(
            max_examples=max(ci_examples, int(LARGE * share)),
            deadline=None,
            suppress_health_check=_SUPPRESS,
            database=None,
        )
    return settings(
        max_examples=ci_examples,
        deadline=None,
        suppress_health_check=_SUPPRESS,
        derandomize=True,
        database=None,
    )
