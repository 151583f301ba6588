"""Monitoring: the operators' dashboard (live over websockets) and health checks."""
