"""Log lines for machines: with LOG_FORMAT=json every line is one JSON object
(time in ISO-8601 UTC, level, logger, message, the request id while a request is
being served, and the traceback as a string), ready for a log shipper.

The request id is the one `portal.middleware.RequestIdMiddleware` gives each
request; it travels in a context variable, so it reaches the log lines of
whatever code runs for the request without being passed around."""

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

# The id of the request being served in this context; empty outside a request.
request_id_var: ContextVar[str] = ContextVar("deskops_request_id", default="")
# The address the request came from, for the audit trail; None outside a request.
source_ip_var: ContextVar[str | None] = ContextVar("deskops_source_ip", default=None)


def current_request_id() -> str:
    return request_id_var.get()


def _request_id_of(record: logging.LogRecord) -> str:
    """The record's request id: set on it, bound by the middleware, or that of the
    request Django attaches to its own records (django.request logs a 4xx or 5xx
    answer after the middleware has returned)."""
    found = getattr(record, "request_id", "") or request_id_var.get()
    if not found:
        found = getattr(getattr(record, "request", None), "id", "")
    return found if isinstance(found, str) else ""


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` attribute (empty outside a request), so a
    text format may show `%(request_id)s` too."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id_of(record)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id_of(record)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # ASCII escapes keep the object on one line whatever the message holds
        # (json leaves U+2028 as is otherwise, and some readers split on it).
        return json.dumps(entry, default=str)
