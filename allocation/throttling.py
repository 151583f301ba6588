"""Limits on failed thin-client logins, per user name and per terminal, so a thin
client (or someone at it) cannot guess passwords at full speed."""

from django.conf import settings

from allocation.errors import TooManyAttempts
from portal.lockout import failure_counts, failure_record, failures_clear

_NAMESPACE = "login-failures"


def login_attempt_check(*, username: str, terminal_serial: str) -> bool:
    """Refuse the attempt (429) while the user or the terminal is over its limit of
    failed logins in the current window. Otherwise answer whether the user has
    failures counted, which a successful login then clears: most logins have none,
    and need not pay for a cache operation that deletes nothing."""
    limits = [
        ("user", username.casefold(), settings.LOGIN_FAILURES_PER_USER),
        ("terminal", terminal_serial, settings.LOGIN_FAILURES_PER_TERMINAL),
    ]
    counts = failure_counts(_NAMESPACE, limits)
    if any(count >= limit for count, (_, _, limit) in zip(counts, limits, strict=True)):
        raise TooManyAttempts(retry_after=settings.LOGIN_FAILURE_WINDOW)
    return counts[0] > 0


def login_failure_record(*, username: str, terminal_serial: str) -> None:
    """Count one failed login against the user and the terminal."""
    failure_record(
        _NAMESPACE,
        [("user", username.casefold()), ("terminal", terminal_serial)],
        window=settings.LOGIN_FAILURE_WINDOW,
    )


def login_success_record(*, username: str) -> None:
    """A successful login clears the user's count (not the terminal's)."""
    failures_clear(_NAMESPACE, "user", username.casefold())
