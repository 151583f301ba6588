"""One JSON error shape for every API answer: `{"error": code, "detail": text}`.

DRF's own errors, the services' `ServiceError`s and anything unexpected all leave
as JSON, so a thin client never has to parse an HTML error page."""

import logging

from django.db import DatabaseError, IntegrityError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from portal.errors import ServiceError

logger = logging.getLogger(__name__)

# DRF exception class -> stable error code. Input the server cannot read at all is
# "malformed_request"; input it read but refused is "invalid_request".
_DRF_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.UnsupportedMediaType: "malformed_request",
    exceptions.ValidationError: "invalid_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "invalid_credentials",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "throttled",
}


def error_response(
    code: str, detail: str, http_status: int, *, retry_after: int | None = None, **extra
) -> Response:
    body = {"error": code, "detail": detail, **extra}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return Response(body, status=http_status, headers=headers)


def json_exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return error_response(exc.code, exc.detail, exc.status_code, retry_after=exc.retry_after)

    if isinstance(exc, exceptions.APIException):
        response = exception_handler(exc, context)
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        http_status = response.status_code
        if isinstance(exc, exceptions.UnsupportedMediaType):
            http_status = status.HTTP_400_BAD_REQUEST
        extra = {}
        if isinstance(exc, exceptions.ValidationError):
            detail = "Some fields are missing or invalid."
            extra["fields"] = exc.detail
        else:
            detail = str(exc.detail)
        retry_after = getattr(exc, "wait", None)
        return error_response(
            code,
            detail,
            http_status,
            retry_after=int(retry_after) + 1 if retry_after else None,
            **extra,
        )

    if isinstance(exc, IntegrityError):
        # Two requests raced for the same row and the database refused the second:
        # the caller may simply try again.
        logger.warning("conflict while serving %s: %s", context.get("view"), exc)
        return error_response(
            "conflict",
            "Another request changed the same data at the same time; try again.",
            status.HTTP_409_CONFLICT,
            retry_after=1,
        )

    if isinstance(exc, DatabaseError):
        logger.exception("database error while serving %s", context.get("view"))
        return error_response(
            "service_unavailable",
            "The database is unavailable; try again shortly.",
            status.HTTP_503_SERVICE_UNAVAILABLE,
            retry_after=5,
        )

    # Django's Http404 and PermissionDenied go through DRF's mapping.
    response = exception_handler(exc, context)
    if response is not None:
        code = "not_found" if response.status_code == 404 else "permission_denied"
        return error_response(code, str(exc) or code, response.status_code)

    logger.exception("unexpected error while serving %s", context.get("view"))
    return error_response(
        "internal_error",
        "An unexpected error happened; it has been logged.",
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
