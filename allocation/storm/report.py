"""What a login storm measured: throughput, latency percentiles, the count of each
answer, and the two checks that no VM was handed out twice, one from the answers
the clients got and one from the database."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from portal.stats import percentile

from .client import Answer

# The backlog's goal on a 2-core machine.
TARGET_CONNECTS_PER_SECOND = 300
TARGET_P99_MS = 150


@dataclass(frozen=True)
class StormStats:
    clients: int
    wall_seconds: float
    connects_per_second: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    # "<HTTP status> <status or error field>" -> how many answers said so.
    answers: Counter = field(default_factory=Counter)

    @property
    def target_met(self) -> bool:
        return (
            self.connects_per_second >= TARGET_CONNECTS_PER_SECOND
            and self.p99_ms is not None
            and self.p99_ms < TARGET_P99_MS
        )


def answer_label(answer: Answer) -> str:
    """How an answer is counted: its HTTP status and what the body said (`ready`,
    `preparing` or the error code); `0 <exception>` when no answer came."""
    return f"{answer.status} {answer.outcome or '-'}"


def storm_stats(answers: list[Answer], wall_seconds: float) -> StormStats:
    """Throughput over the wall time, nearest-rank latency percentiles of every
    answer (errors included: a fast refusal is still an answer the client waited
    for), and the answers counted by label."""
    latencies = [a.latency_ms for a in answers]
    return StormStats(
        clients=len(answers),
        wall_seconds=wall_seconds,
        connects_per_second=len(answers) / wall_seconds if wall_seconds > 0 else 0.0,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies, default=None),
        answers=Counter(answer_label(a) for a in answers),
    )


def desktops_given_twice(answers: Iterable[Answer]) -> dict[int, list[str]]:
    """Desktop ids that the answers gave to more than one user, with the users."""
    users_of: dict[int, set[str]] = {}
    for answer in answers:
        if answer.desktop is not None:
            users_of.setdefault(answer.desktop, set()).add(answer.username)
    return {vm: sorted(users) for vm, users in users_of.items() if len(users) > 1}


def vms_shared_in_database() -> list[str]:
    """VMs that the database shows handed out twice: two active bindings, or open
    sessions of two different users. Each as a line saying which and how."""
    from django.db.models import Count

    from allocation.models import Binding, DesktopSession

    problems = []
    for row in (
        Binding.objects.filter(released_at__isnull=True)
        .values("vm_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    ):
        problems.append(f"VM {row['vm_id']} has {row['n']} active bindings")
    for row in (
        DesktopSession.objects.filter(ended_at__isnull=True)
        .values("vm_id")
        .annotate(users=Count("user_id", distinct=True))
        .filter(users__gt=1)
    ):
        problems.append(f"VM {row['vm_id']} has open sessions of {row['users']} users")
    return problems


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def storm_report(
    stats: StormStats,
    *,
    concurrency: int,
    workers: int,
    given_twice: dict[int, list[str]],
    shared_in_database: list[str],
) -> str:
    """The printed report."""
    lines = [
        f"clients:                 {stats.clients}",
        f"concurrency:             {concurrency}",
        f"server workers:          {workers}",
        f"wall time:               {stats.wall_seconds:.2f} s",
        f"connects/s:              {stats.connects_per_second:.1f}",
        f"latency p50 / p95 / p99: {_ms(stats.p50_ms)} / {_ms(stats.p95_ms)} / {_ms(stats.p99_ms)}",
        f"latency max:             {_ms(stats.max_ms)}",
        "answers:",
        *(f"  {label:<28} {count}" for label, count in sorted(stats.answers.items())),
    ]
    if given_twice:
        shown = ", ".join(f"{vm}: {users}" for vm, users in list(given_twice.items())[:5])
        lines.append(f"no VM handed out twice (answers):  FAILED, {len(given_twice)}: {shown}")
    else:
        lines.append("no VM handed out twice (answers):  ok")
    if shared_in_database:
        lines.append(
            f"no VM handed out twice (database): FAILED, {len(shared_in_database)}: "
            + "; ".join(shared_in_database[:5])
        )
    else:
        lines.append("no VM handed out twice (database): ok")
    lines.append(
        f"target: {TARGET_CONNECTS_PER_SECOND} connects/s with p99 under {TARGET_P99_MS} ms -> "
        + ("met" if stats.target_met else "missed")
    )
    return "\n".join(lines)
