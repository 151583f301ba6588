"""Monitoring: host-failure recovery, VM health, alerts, the login probe and
reports. Every variable is in the README's configuration table."""

from .env import env

# A host whose compute service has been down this long is declared failed: it
# leaves placement and its users are moved (seconds).
HOST_FAILURE_THRESHOLD = env.int("HOST_FAILURE_THRESHOLD", default=60)
