"""The operators' dashboard: the page (rendered with a first snapshot, so it shows
figures without the websocket) and the same snapshot as JSON, which the page polls
when its websocket cannot connect (a proxy that does not pass websockets)."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.roles import Role, has_role, role_required

from ..selectors import dashboard_snapshot


@require_GET
@role_required(Role.VIEWER)
def dashboard(request):
    return render(
        request,
        "monitoring/dashboard.html",
        {
            "snapshot": dashboard_snapshot(),
            "push_interval": settings.DASHBOARD_PUSH_INTERVAL,
        },
    )


@require_GET
@never_cache
def dashboard_data(request):
    """The dashboard's snapshot; staff only, and a 403 in JSON rather than a login
    redirect, since only scripts read it."""
    if not has_role(request.user, Role.VIEWER):
        return JsonResponse(
            {"error": "permission_denied", "detail": "Staff login required."}, status=403
        )
    return JsonResponse({"type": "snapshot", "reasons": [], "data": dashboard_snapshot()})
