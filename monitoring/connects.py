"""Writing one record per thin-client connect, for the dashboard's allocation
figures and the reports."""

import logging

from django.db import DatabaseError

from .models import ConnectRecord

logger = logging.getLogger(__name__)


def _printable(value: str, length: int) -> str:
    """What a client sent, safe to store: no lone surrogates, no control characters
    (PostgreSQL refuses NUL), cut to the column's length."""
    text = value.encode("utf-8", "replace").decode("utf-8")
    return "".join(ch for ch in text if ch.isprintable())[:length]


def connect_record(
    *,
    outcome: str,
    latency_ms: float,
    username: str = "",
    terminal_serial: str = "",
    claimed: bool | None = None,
    pool_id: int | None = None,
    site_id: int | None = None,
) -> ConnectRecord | None:
    """Record a connect as answered. `claimed` is True for a VM taken from the ready
    ones, False for the user's existing binding, None when no VM was handed out.
    A record that cannot be written is logged, never turned into a failed connect."""
    if claimed is None:
        source = ConnectRecord.Source.NONE
    else:
        source = ConnectRecord.Source.CLAIMED if claimed else ConnectRecord.Source.BINDING
    try:
        return ConnectRecord.objects.create(
            outcome=_printable(outcome, 64),
            source=source,
            latency_ms=round(latency_ms, 3),
            username=_printable(username, 150),
            terminal_serial=_printable(terminal_serial, 64),
            pool_id=pool_id,
            site_id=site_id,
        )
    except DatabaseError as exc:
        logger.warning("connect record not written: %s", exc)
        return None
