"""Middleware of every request: an id (taken from `X-Request-ID` when a load
balancer set one, so audit records and log lines of one request can be found
together) and the source address for the audit trail (the client's, behind a
trusted proxy); and a 400 for query
strings no field can match."""

import re
import uuid

from django.http import HttpResponseBadRequest, JsonResponse

from .client_ip import client_ip
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
        bound_ip = source_ip_var.set(client_ip(request))
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(bound)
            source_ip_var.reset(bound_ip)
        response["X-Request-ID"] = request.id
        return response


class RejectNulMiddleware:
    """Answers 400 to a query string holding a NUL character. No field of DeskOps
    can hold one (PostgreSQL text refuses it), so such a request is malformed; left
    through, it would reach a query and fail there as a server error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        bad = [
            key
            for key, values in request.GET.lists()
            if "\x00" in key or any("\x00" in value for value in values)
        ]
        if bad:
            message = "A query parameter holds a NUL character."
            if request.path.startswith("/api/"):
                fields = {key: ["Null characters are not allowed."] for key in bad}
                body = {"error": "invalid_request", "detail": message, "fields": fields}
                return JsonResponse(body, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)
