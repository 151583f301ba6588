"""Limits on failed logins, per user name and per terminal, so a thin client (or
someone at it) cannot guess passwords at full speed. Counts live in Django's cache:
the local-memory cache on one machine, Redis (`CACHE_URL`) when several web
processes must share them."""

import hashlib

from django.conf import settings
from django.core.cache import cache

from allocation.errors import TooManyAttempts


def _key(kind: str, name: str) -> str:
    # Hashed: names come from the client and may hold anything a cache key may not.
    return f"login-failures:{kind}:{hashlib.sha256(name.encode()).hexdigest()}"


def _keys(username: str, terminal_serial: str) -> list[tuple[str, int]]:
    return [
        (_key("user", username.casefold()), settings.LOGIN_FAILURES_PER_USER),
        (_key("terminal", terminal_serial), settings.LOGIN_FAILURES_PER_TERMINAL),
    ]


def login_attempt_check(*, username: str, terminal_serial: str) -> None:
    """Refuse the attempt (429) while the user or the terminal is over its limit of
    failed logins in the current window."""
    counts = cache.get_many([key for key, _ in _keys(username, terminal_serial)])
    for key, limit in _keys(username, terminal_serial):
        if counts.get(key, 0) >= limit:
            raise TooManyAttempts(retry_after=settings.LOGIN_FAILURE_WINDOW)


def login_failure_record(*, username: str, terminal_serial: str) -> None:
    """Count one failed login against the user and the terminal. The window starts
    at the first failure and is not extended by later ones."""
    for key, _ in _keys(username, terminal_serial):
        cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW)


def login_success_record(*, username: str) -> None:
    """A successful login clears the user's count (not the terminal's)."""
    cache.delete(_key("user", username.casefold()))
