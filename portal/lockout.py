"""Counting failed logins in Django's cache, so repeated guessing is refused for a
while. Thin-client logins count per user name and terminal, staff logins per
user name and source address. The count lives in the local-memory cache on one
machine, in Redis (`CACHE_URL`) when several web processes must share it.

A window starts at the first failure and later failures do not extend it."""

import hashlib

from django.core.cache import cache


def _key(namespace: str, kind: str, name: str) -> str:
    # Hashed: names come from the client and may hold anything a cache key may not.
    return f"{namespace}:{kind}:{hashlib.sha256(name.encode()).hexdigest()}"


def failure_counts(namespace: str, limits: list[tuple[str, str, int]]) -> list[int]:
    """The failures counted against each (kind, name, limit), in order, read in one
    cache operation."""
    keys = [_key(namespace, kind, name) for kind, name, _ in limits]
    counts = cache.get_many(keys)
    return [counts.get(key, 0) for key in keys]


def failures_exceeded(namespace: str, limits: list[tuple[str, str, int]]) -> bool:
    """Whether any (kind, name) has reached its limit of failures."""
    counts = failure_counts(namespace, limits)
    return any(count >= limit for count, (_, _, limit) in zip(counts, limits, strict=True))


def failure_record(namespace: str, names: list[tuple[str, str]], *, window: int) -> None:
    """Count one failure against each (kind, name)."""
    for kind, name in names:
        key = _key(namespace, kind, name)
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)


def failures_clear(namespace: str, kind: str, name: str) -> None:
    cache.delete(_key(namespace, kind, name))
