"""Small statistics shared by reports, the probe page and the benchmarks."""

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile of `values` (`pct` from 0 to 100): always a value
    that occurred. None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(pct / 100 * len(ordered)), 1)
    return ordered[rank - 1]
