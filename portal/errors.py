"""Errors that services raise for a caller to see: each carries the HTTP status,
the stable machine-readable code and a sentence for people. The API layer turns
them into `{"error": code, "detail": text}` answers; services never import DRF."""


class ServiceError(Exception):
    status_code = 400
    code = "invalid_request"
    default_detail = "The request cannot be served."

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None):
        self.detail = detail or self.default_detail
        self.retry_after = retry_after
        super().__init__(self.detail)


class ServiceUnavailable(ServiceError):
    """A part the service depends on (cloud, directory, database) is down; the
    caller should try again later."""

    status_code = 503
    code = "service_unavailable"
    default_detail = "A service DeskOps depends on is unavailable; try again shortly."
