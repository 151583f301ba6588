"""Channels: the layer that carries live updates to websocket consumers.

The in-memory layer is the embedded default; it does not cross processes, so the
live pages read their figures from the database on a timer rather than waiting for
events from a worker. With `CHANNELS_REDIS_URL` set, the Redis layer carries
events between processes too."""

from .env import env

CHANNELS_REDIS_URL = env.str("CHANNELS_REDIS_URL", default="")
# Prefix of the layer's Redis keys: deployments (or test runs) that share one Redis
# server and database keep their events apart with different prefixes.
CHANNELS_REDIS_PREFIX = env.str("CHANNELS_REDIS_PREFIX", default="asgi")
if CHANNELS_REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [CHANNELS_REDIS_URL], "prefix": CHANNELS_REDIS_PREFIX},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Seconds between two pushes of the live dashboard.
DASHBOARD_PUSH_INTERVAL = env.float("DASHBOARD_PUSH_INTERVAL", default=2.0)
