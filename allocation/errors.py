"""Errors the allocation services raise; each becomes a JSON error answer."""

from portal.errors import ServiceError, ServiceUnavailable


class InvalidCredentials(ServiceError):
    status_code = 401
    code = "invalid_credentials"
    default_detail = "The username or password is wrong."


class TerminalNotEnrolled(ServiceError):
    status_code = 403
    code = "terminal_not_enrolled"
    default_detail = "This terminal is not enrolled; ask IT to enroll it."


class NoAllocator(ServiceError):
    status_code = 403
    code = "no_allocator"
    default_detail = "No desktop is configured for this user at this terminal."


class CloudUnreachable(ServiceUnavailable):
    code = "cloud_unavailable"
    default_detail = "The desktop cloud is not answering; try again shortly."


class SessionNotFound(ServiceError):
    status_code = 404
    code = "session_not_found"
    default_detail = "There is no such desktop session for this terminal."


class TooManyAttempts(ServiceError):
    status_code = 429
    code = "too_many_attempts"
    default_detail = "Too many failed logins; wait before trying again."
