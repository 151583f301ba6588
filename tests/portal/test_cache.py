"""The Redis cache backend: Django's, but one client object per server for good."""

import socket
import uuid

import pytest

from portal.cache import RedisCache

REDIS_URL = "redis://127.0.0.1:6379/12"


@pytest.fixture
def redis_cache():
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        pytest.skip("Redis at 127.0.0.1:6379 (Debian's redis-server) is needed for this test")
    cache = RedisCache(REDIS_URL, {"KEY_PREFIX": f"deskops-test-{uuid.uuid4().hex[:8]}"})
    yield cache
    cache.delete_many(["count", "plain"])


@pytest.mark.redis
def test_every_operation_uses_the_same_client(redis_cache):
    first = redis_cache._cache.get_client(write=True)

    redis_cache.set("plain", "value", timeout=30)
    redis_cache.add("count", 0, timeout=30)
    redis_cache.incr("count")

    assert redis_cache._cache.get_client() is first
    assert redis_cache._cache.get_client(write=True) is first


@pytest.mark.redis
def test_it_behaves_as_djangos_redis_cache(redis_cache):
    assert redis_cache.add("count", 0, timeout=30) is True
    assert redis_cache.add("count", 5, timeout=30) is False
    assert redis_cache.incr("count") == 1
    redis_cache.set("plain", {"a": 1}, timeout=30)

    assert redis_cache.get_many(["count", "plain", "missing"]) == {"count": 1, "plain": {"a": 1}}
    redis_cache.delete("plain")
    assert redis_cache.get("plain") is None
