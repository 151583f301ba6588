"""What every staff page's view needs from its request: who is acting (for the
audit trail) and where to go back to after a button."""

from django.utils.http import url_has_allowed_host_and_scheme


def who(request) -> dict:
    """The actor and request id a service records in the audit trail."""
    return {"actor": request.user.get_username(), "request_id": getattr(request, "id", "")}


def next_url(request, default: str) -> str:
    """The `next` address the form or link came with, when it stays on this site;
    otherwise `default` (a URL)."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return default
