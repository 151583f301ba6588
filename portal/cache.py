"""Django's Redis cache, with one Redis client object per server kept for reuse.

Django's `RedisCache` builds a new `redis.Redis` object for every cache operation.
The connections themselves come from a pool either way, but building the object
fills its table of some 250 response callbacks each time, which costs about as
much CPU as the operation's round trip. A thin-client connect makes two or three
cache operations (the failed-login limit, the refill debounce), so at a shift
start that is a measurable share of the web servers' CPU. A `redis.Redis` object
is safe to share between threads, and Django keeps one cache object per thread
anyway, so keeping the client changes nothing else."""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._client(connection_pool=self._pool_at(index))
            self._clients[index] = client
        return client

    def _pool_at(self, index: int):
        # The parent's `_get_connection_pool` picks a replica at random itself; here
        # the index is already chosen, so the pool of that index is made directly.
        if index not in self._pools:
            self._pools[index] = self._pool_class.from_url(
                self._servers[index], **self._pool_options
            )
        return self._pools[index]


class RedisCache(DjangoRedisCache):
    """`django.core.cache.backends.redis.RedisCache` that reuses its clients."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
