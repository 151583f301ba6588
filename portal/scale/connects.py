"""The thin-client connect at scale: distinct users at distinct terminals of a
seeded world log in through the real URL (Django's test client, in process), half
of them users whose bound desktop comes back, half new users who claim a ready VM.
Each connect is timed twice: in all, and without the password check (the
broker's own time, which the budget is about)."""

import json
import random
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, OuterRef
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from allocation.choices import TerminalStatus
from allocation.models import Binding, DesktopSession, Terminal

from .budgets import Budgets
from .timing import Measure, TimedPBKDF2PasswordHasher, elapsed_ms

PBKDF2 = "django.contrib.auth.hashers.PBKDF2PasswordHasher"
TIMED_PBKDF2 = "portal.scale.timing.TimedPBKDF2PasswordHasher"


def bound_pairs(prefix: str, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(user name, terminal serial) of users of the world whose active binding a
    connect at that terminal finds: the terminal of their binding's session."""
    rows = (
        DesktopSession.objects.filter(
            binding__released_at__isnull=True,
            user__username__startswith=f"{prefix}-user",
            terminal__status=TerminalStatus.ENROLLED,
            terminal__enabled=True,
        )
        .order_by("binding_id", "-started_at")
        .values_list("user__username", "terminal__serial")[: count * 20]
    )
    return _distinct_sample(rows, count, rng)


def new_pairs(
    prefix: str, count: int, rng: random.Random, taken: set[str]
) -> list[tuple[str, str]]:
    """Users of the world who never had a desktop, at terminals never used: each
    connect claims a ready VM."""
    users = (
        get_user_model()
        .objects.filter(username__startswith=f"{prefix}-user")
        .filter(
            ~Exists(DesktopSession.objects.filter(user=OuterRef("pk"))),
            ~Exists(Binding.objects.filter(user=OuterRef("pk"))),
        )
        .exclude(username__in=taken)
        .order_by("pk")
        .values_list("username", flat=True)[: count * 5]
    )
    terminals = (
        Terminal.objects.filter(
            serial__startswith=f"TC-{prefix}-", status=TerminalStatus.ENROLLED, enabled=True
        )
        .filter(
            ~Exists(DesktopSession.objects.filter(terminal=OuterRef("pk"))),
            ~Exists(Binding.objects.filter(terminal=OuterRef("pk"))),
        )
        .order_by("pk")
        .values_list("serial", flat=True)[: count * 5]
    )
    users, terminals = list(users), list(terminals)
    pairs = list(zip(rng.sample(users, min(count, len(users))), terminals, strict=False))
    return pairs[: min(count, len(terminals))]


def _distinct_sample(rows, count: int, rng: random.Random) -> list[tuple[str, str]]:
    users, terminals, pairs = set(), set(), []
    for user, terminal in rows:
        if user not in users and terminal not in terminals:
            users.add(user)
            terminals.add(terminal)
            pairs.append((user, terminal))
    return rng.sample(pairs, min(count, len(pairs)))


def _hashers_timed() -> tuple[list[str], bool]:
    """The configured hashers with Django's PBKDF2 one swapped for its timed twin
    (same algorithm and cost), and whether it was there to swap."""
    hashers = list(settings.PASSWORD_HASHERS)
    if PBKDF2 not in hashers:
        return hashers, False
    return [TIMED_PBKDF2 if h == PBKDF2 else h for h in hashers], True


def bench_connects(
    *, prefix: str, password: str, count: int, budgets: Budgets, seed: int = 1
) -> list[Measure]:
    """`count` connects (half bound users, half new ones) and their measures: in
    all, and without the password check, for each kind; plus the password check
    alone."""
    rng = random.Random(seed)
    # One more bound user than measured: the first connect warms the process up.
    bound = bound_pairs(prefix, count - count // 2 + 1, rng)
    new = new_pairs(prefix, count // 2, rng, taken={user for user, _ in bound})
    hashers, timed = _hashers_timed()
    url = reverse("thin-client-v1:connect")
    client = Client()
    measures = []
    with override_settings(PASSWORD_HASHERS=hashers):
        if bound:
            warm = Measure("connect", "warm-up")
            _connect(client, url, *bound.pop(0), password, warm, Measure("connect", "warm-up"))
        TimedPBKDF2PasswordHasher.checks_ms.clear()
        for label, pairs, expected in [
            ("bound user, desktop comes back", bound, "binding"),
            ("new user, claims a ready VM", new, "claimed"),
        ]:
            total = Measure("connect", f"connect: {label}", statistic="p99")
            broker = Measure(
                "connect",
                f"connect: {label}, without the password check",
                statistic="p99",
                budget_ms=budgets.connect_p99_ms,
            )
            for username, serial in pairs:
                _connect(client, url, username, serial, password, total, broker)
            if not pairs:
                total.errors.append("the world has no such user and terminal left")
                broker.errors.append("the world has no such user and terminal left")
            if not timed:
                broker.note = "password hasher not PBKDF2: its time is included"
            total.note = f"{len(pairs)} distinct users and terminals ({expected})"
            measures += [total, broker]
    checks = Measure("connect", "password check alone (PBKDF2)", statistic="median")
    for ms in TimedPBKDF2PasswordHasher.checks_ms:
        checks.add(ms=ms, queries=0, status=200)
    checks.skipped = not checks.times_ms
    if checks.skipped:
        checks.note = "another hasher"
    measures.append(checks)
    return measures


def _connect(client, url, username, serial, password, total: Measure, broker: Measure) -> None:
    body = json.dumps({"username": username, "password": password, "terminal": serial})
    checks = TimedPBKDF2PasswordHasher.checks_ms
    checked_before = sum(checks)
    started = time.perf_counter()
    try:
        with CaptureQueriesContext(connection) as queries:
            response = client.post(url, body, content_type="application/json")
    except Exception as exc:  # a crashing connect is a finding, not the end of the run
        total.errors.append(f"{type(exc).__name__}: {exc}"[:200])
        broker.errors.append(total.errors[-1])
        return
    ms = elapsed_ms(started)
    hashing = sum(checks) - checked_before
    status = response.status_code
    total.add(ms=ms, queries=len(queries), status=status)
    broker.add(ms=ms - hashing, queries=len(queries), status=status)
