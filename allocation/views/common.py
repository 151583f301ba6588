"""Small helpers shared by the allocation pages."""

from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def flatten_errors(errors) -> list[str]:
    """DRF's errors for one field as plain sentences (a list field nests them by
    item index)."""
    if isinstance(errors, dict):
        return [msg for nested in errors.values() for msg in flatten_errors(nested)]
    if isinstance(errors, list):
        return [msg for nested in errors for msg in flatten_errors(nested)]
    return [str(errors)]


def audit_context(request) -> dict:
    """Who acts and in which request, for the services' audit records."""
    return {"actor": request.user.get_username(), "request_id": getattr(request, "id", "")}


def safe_next(request, default: str) -> str:
    """The `next` address a form came back with, when it stays on this site;
    otherwise `default` (a URL name)."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse(default)


def detail_url(name: str):
    """A column's link to an object's page, by the object's primary key."""
    return lambda obj: reverse(name, args=[obj.pk])
