"""Limits on failed thin-client logins, per user name and per terminal, so a thin
client (or someone at it) cannot guess passwords at full speed."""

from django.conf import settings

from allocation.errors import TooManyAttempts
from portal.lockout import failure_record, failures_clear, failures_exceeded

_NAMESPACE = "login-failures"


def login_attempt_check(*, username: str, terminal_serial: str) -> None:
    """Refuse the attempt (429) while the user or the terminal is over its limit of
    failed logins in the current window."""
    limits = [
        ("user", username.casefold(), settings.LOGIN_FAILURES_PER_USER),
        ("terminal", terminal_serial, settings.LOGIN_FAILURES_PER_TERMINAL),
    ]
    if failures_exceeded(_NAMESPACE, limits):
        raise TooManyAttempts(retry_after=settings.LOGIN_FAILURE_WINDOW)


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
