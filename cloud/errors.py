"""What a driver raises. Callers tell a passing fault (`CloudUnavailable`: retry
later) from a final answer (`NoValidHost`, `ServerNotFound`, other `CloudError`)."""


class CloudError(Exception):
    """The cloud refused or failed a call."""


class CloudUnavailable(CloudError):
    """The cloud could not be reached or answered with a server error; the same
    call may succeed later."""


class NoValidHost(CloudError):
    """No host has room for the server (Nova's scheduler says "No valid host")."""


class ServerNotFound(CloudError):
    """The cloud has no server with that id."""
