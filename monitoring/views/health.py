"""The load balancer's health checks and the Prometheus scrape."""

import os

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def liveness(request):
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


@require_GET
def readiness(request):
    """The process can do useful work: its database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return JsonResponse({"status": "unavailable", "detail": str(exc)[:200]}, status=503)
    return JsonResponse({"status": "ok"})


def _metrics_allowed(request) -> bool:
    """Scrapes come from the monitoring network, not from anywhere."""
    import ipaddress

    from django.conf import settings

    from portal.client_ip import client_ip

    try:
        client = ipaddress.ip_address(client_ip(request) or "")
    except ValueError:
        return False
    return any(client in ipaddress.ip_network(net) for net in settings.METRICS_ALLOWED_NETWORKS)


@require_GET
def metrics(request):
    """Prometheus exposition of the connect counters and the database figures."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    from ..metrics import DatabaseCollector

    if not _metrics_allowed(request):
        return JsonResponse({"error": "permission_denied", "detail": "Not from here."}, status=403)
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    counted = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several gunicorn workers: each keeps its counts in that folder, and the
        # answer sums them over every worker, not just the one that was asked.
        from prometheus_client import multiprocess

        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    body = generate_latest(counted) + generate_latest(registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
