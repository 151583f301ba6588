"""Writes of the allocation app, one module per capability."""

from .connect import ConnectResult, desktop_connect, terminal_check_in
from .sessions import (
    binding_release,
    desktop_console,
    session_active,
    session_disconnect,
    session_heartbeat,
    sessions_expire_idle,
)

__all__ = [
    "ConnectResult",
    "binding_release",
    "desktop_connect",
    "desktop_console",
    "session_active",
    "session_disconnect",
    "session_heartbeat",
    "sessions_expire_idle",
    "terminal_check_in",
]
