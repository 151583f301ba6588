"""Timing requests for the scale benchmark: one `Measure` per kind of request,
holding every duration and query count, judged against its budget by one
statistic (the median or the 99th percentile). And a password hasher that notes
how long each check took, so the broker's own time can be told apart from the
hasher's."""

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth.hashers import PBKDF2PasswordHasher

from portal.stats import percentile


@dataclass
class Measure:
    """One kind of request: what was asked, how it answered, and its figures.
    `statistic` is "median" or "p99"; with `budget_ms` None the line is only
    information."""

    group: str
    label: str
    statistic: str = "median"
    budget_ms: float | None = None
    times_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    expected_status: int = 200
    errors: list[str] = field(default_factory=list)
    note: str = ""
    # Not asked: the endpoint has no such view (a single page, no filter).
    skipped: bool = False

    def add(self, *, ms: float, queries: int | None, status: int | None) -> None:
        self.times_ms.append(ms)
        if queries is not None:
            self.queries.append(queries)
        self.statuses[status] += 1

    def pct(self, value: float) -> float | None:
        return percentile(self.times_ms, value)

    @property
    def value_ms(self) -> float | None:
        """The statistic the budget is judged by."""
        if not self.times_ms:
            return None
        if self.statistic == "p99":
            return self.pct(99)
        return statistics.median(self.times_ms)

    @property
    def query_count(self) -> int | None:
        """Queries per request (the median: a few requests may do more work)."""
        return round(statistics.median(self.queries)) if self.queries else None

    @property
    def failed(self) -> bool:
        if self.skipped:
            return False
        unexpected = sum(n for status, n in self.statuses.items() if status != self.expected_status)
        return bool(self.errors) or unexpected > 0 or not self.times_ms

    @property
    def over_budget(self) -> bool:
        value = self.value_ms
        return self.budget_ms is not None and value is not None and value > self.budget_ms

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "n/a"
        if self.failed:
            return "FAILED"
        if self.budget_ms is None:
            return ""
        return "OVER" if self.over_budget else "ok"

    def describe_failure(self) -> str:
        wrong = {s: n for s, n in self.statuses.items() if s != self.expected_status}
        parts = [f"{n} answered {s}" for s, n in wrong.items()] + self.errors[:3]
        return "; ".join(parts) or "nothing measured"


def elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class TimedPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's default hasher (same algorithm, same cost), noting the
    milliseconds of each check in `checks_ms`."""

    checks_ms: list[float] = []

    def verify(self, password, encoded):
        started = time.perf_counter()
        try:
            return super().verify(password, encoded)
        finally:
            TimedPBKDF2PasswordHasher.checks_ms.append(elapsed_ms(started))
