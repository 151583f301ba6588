"""The Alerts pages: the list with its filters (by default the alerts not closed),
one alert with its history, and the operators' Acknowledge and Close buttons."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portal.errors import ServiceError
from portal.models import AuditEvent
from portal.roles import Role, role_required

from ..alert_selectors import UNCLOSED_STATUSES, alert_list
from ..alerts import alert_acknowledge, alert_close
from ..choices import AlertKind, AlertSeverity, AlertStatus
from ..models import Alert

PER_PAGE = 50
ANY_STATUS = "any"


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "Not closed"), (ANY_STATUS, "Any"), *AlertStatus.choices], required=False
    )
    kind = forms.ChoiceField(choices=[("", "Any"), *AlertKind.choices], required=False)
    severity = forms.ChoiceField(choices=[("", "Any"), *AlertSeverity.choices], required=False)

    def selection(self) -> dict:
        """The selector's arguments; a value the form refused filters nothing (the
        form shows why)."""
        data = self.cleaned_data if self.is_valid() else {}
        status = data.get("status", "")
        if status == ANY_STATUS:
            statuses = []
        elif status:
            statuses = [status]
        else:
            statuses = list(UNCLOSED_STATUSES)
        return {
            "statuses": statuses,
            "kinds": [data["kind"]] if data.get("kind") else [],
            "severities": [data["severity"]] if data.get("severity") else [],
        }


def _who(request) -> dict:
    return {"actor": request.user.get_username(), "request_id": getattr(request, "id", "")}


def _back(request) -> str:
    """Where the button was pressed (the list with its filters, or the alert's
    page), if that is a page of this site."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("monitoring:alert-list")


@role_required(Role.VIEWER, Role.OPERATOR)
def alert_list_page(request):
    form = AlertFilterForm(request.GET)
    page = Paginator(alert_list(**form.selection()), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "monitoring/alert_list.html",
        {"form": form, "page": page, "alerts": page.object_list, "here": request.get_full_path()},
    )


@role_required(Role.VIEWER, Role.OPERATOR)
def alert_detail_page(request, pk):
    alert = get_object_or_404(Alert.objects.select_related("incident"), pk=pk)
    events = AuditEvent.objects.filter(object_type="monitoring.alert", object_id=str(alert.pk))
    return render(
        request,
        "monitoring/alert_detail.html",
        {"alert": alert, "events": events[:20], "here": request.get_full_path()},
    )


def _act(request, pk, service, done: str):
    alert = get_object_or_404(Alert, pk=pk)
    try:
        service(alert=alert, **_who(request))
    except ServiceError as exc:
        messages.error(request, f"{exc.detail} ({alert.message})")
    else:
        messages.success(request, f"{done}: {alert.message}")
    return redirect(_back(request))


@role_required(Role.OPERATOR)
@require_POST
def alert_acknowledge_view(request, pk):
    return _act(request, pk, alert_acknowledge, "Acknowledged")


@role_required(Role.OPERATOR)
@require_POST
def alert_close_view(request, pk):
    return _act(request, pk, alert_close, "Closed")
