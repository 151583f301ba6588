"""Small helpers shared by the allocation pages."""

from django.urls import reverse


def flatten_errors(errors) -> list[str]:
    """DRF's errors for one field as plain sentences (a list field nests them by
    item index)."""
    if isinstance(errors, dict):
        return [msg for nested in errors.values() for msg in flatten_errors(nested)]
    if isinstance(errors, list):
        return [msg for nested in errors for msg in flatten_errors(nested)]
    return [str(errors)]


def detail_url(name: str):
    """A column's link to an object's page, by the object's primary key."""
    return lambda obj: reverse(name, args=[obj.pk])
