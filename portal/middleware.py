"""Gives every request an id, taken from `X-Request-ID` when a load balancer set
one, so audit records and log lines of one request can be found together, and
binds the request's source address for the audit trail."""

import re
import uuid

from .logging import request_id_var, source_ip_var

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        # Log lines written while the request is served carry its id.
        bound = request_id_var.set(request.id)
        # Audit records written while the request is served say where it came from.
        bound_ip = source_ip_var.set(request.META.get("REMOTE_ADDR") or None)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(bound)
            source_ip_var.reset(bound_ip)
        response["X-Request-ID"] = request.id
        return response
