"""Staff pages of the monitoring app, and the load balancer's health checks."""

from django.contrib.admin.views.decorators import staff_member_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .selectors import dashboard_snapshot


@staff_member_required(login_url="login")
def dashboard(request):
    return render(request, "monitoring/dashboard.html", {"snapshot": dashboard_snapshot()})


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
