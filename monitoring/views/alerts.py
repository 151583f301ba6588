"""The Alerts pages: the list with its filters (by default the alerts not closed),
one alert with its history, and the operators' Acknowledge and Close buttons."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.errors import ServiceError
from portal.listing import Column, Filter, Header, Listing, listing_response, yes_no_filter
from portal.pages import next_url, who
from portal.roles import Role, role_required

from ..alert_selectors import UNCLOSED_STATUSES
from ..alerts import alert_acknowledge, alert_close
from ..choices import AlertKind, AlertSeverity, AlertStatus
from ..models import Alert

ANY_STATUS = "any"


class AlertStatusFilter(Filter):
    """The status filter, where no choice means "not closed" (what still needs
    someone) and "any" lets every alert through."""

    def form_field(self) -> forms.Field:
        return forms.ChoiceField(
            label=self.label,
            required=False,
            choices=[("", "not closed"), (ANY_STATUS, "any"), *AlertStatus.choices],
        )

    def filter(self, queryset, value: str):
        return queryset if value == ANY_STATUS else queryset.filter(status=value)


def _condition(alert: Alert) -> str:
    return "cleared" if alert.cleared_at else "firing"


def _notified(alert: Alert):
    if alert.notified_at:
        return alert.notified_at
    return f"failed: {alert.notify_error}" if alert.notify_error else "not yet"


def _handled_by(alert: Alert) -> str:
    if alert.status == AlertStatus.ACKNOWLEDGED:
        return alert.acknowledged_by
    if alert.status == AlertStatus.CLOSED:
        return alert.closed_by
    return ""


class AlertListing(Listing):
    title = "Alerts"
    noun = "alerts"
    columns = [
        Column("opened_at", "Opened"),
        Column("severity", "Severity"),
        Column("kind", "Kind"),
        Column("message", "Alert", url=lambda a: reverse("monitoring:alert-detail", args=[a.pk])),
        Column("condition", "Condition", sort="cleared_at", value=_condition),
        Column("last_seen_at", "Last seen"),
        Column("status", "Status"),
        Column("handled_by", "By", sort=None, value=_handled_by),
        Column("notified", "Notified", sort="notified_at", value=_notified),
        Column(
            "incident.title",
            "Incident",
            sort=None,
            url=lambda a: (
                reverse("monitoring:incident-detail", args=[a.incident_id]) if a.incident_id else ""
            ),
        ),
    ]
    filters = [
        AlertStatusFilter("status", "Status", ()),
        Filter("kind", "Kind", AlertKind.choices),
        Filter("severity", "Severity", AlertSeverity.choices),
        yes_no_filter("firing", "Firing", "cleared_at__isnull"),
    ]
    search_fields = ["message", "key"]
    search_placeholder = "Message or subject"
    default_sort = "-opened_at"
    time_field = "opened_at"
    row_template = "monitoring/alert_row.html"
    csv_filename = "alerts"

    def get_queryset(self):
        alerts = Alert.objects.select_related("incident")
        if not self.values.get("status"):
            alerts = alerts.filter(status__in=UNCLOSED_STATUSES)
        return alerts

    def headers(self) -> list[Header]:
        # The Acknowledge / Close buttons' column, on the page only (not in the CSV).
        return [*super().headers(), Header("")]


def _back(request) -> str:
    """Where the button was pressed (the list with its filters, or the alert's
    page), if that is a page of this site."""
    return next_url(request, reverse("monitoring:alert-list"))


@role_required(Role.VIEWER, Role.OPERATOR)
def alert_list_page(request):
    return listing_response(
        request,
        AlertListing,
        template="monitoring/alert_list.html",
        extra={"here": request.get_full_path()},
    )


@role_required(Role.VIEWER, Role.OPERATOR)
def alert_detail_page(request, pk):
    alert = get_object_or_404(Alert.objects.select_related("incident"), pk=pk)
    return render(
        request,
        "monitoring/alert_detail.html",
        {"alert": alert, "here": request.get_full_path()},
    )


def _act(request, pk, service, done: str):
    alert = get_object_or_404(Alert, pk=pk)
    try:
        service(alert=alert, **who(request))
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
