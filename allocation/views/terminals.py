"""Terminal pages: the registry (tens of thousands of thin clients, listed a page at
a time), one terminal's page, enrollment and CSV import."""

from django.contrib import messages
from django.db import transaction
from django.db.models import F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.forms import EnrollForm, TerminalImportForm
from allocation.models import Binding, DesktopSession, Site, Terminal
from allocation.services.terminals import terminal_enroll, terminals_import_csv
from portal.listing import Column, Filter, Listing, listing_response, yes_no_filter
from portal.pages import next_url, who
from portal.roles import Role, has_role, role_required

from .common import detail_url

# Bindings and sessions shown on a terminal's page, newest first.
HISTORY_SHOWN = 20


def _site_choices():
    return Site.objects.values_list("pk", "name")


class TerminalListing(Listing):
    title = "Terminals"
    noun = "terminals"
    columns = [
        Column("serial", "Serial", url=detail_url("allocation:terminal-detail")),
        Column("mac_address", "MAC"),
        Column("site.name", "Site"),
        Column("seat", "Seat"),
        Column("tags", "Tags", sort=None, value=lambda t: ", ".join(t.tags or [])),
        Column("status", "Status"),
        Column("enabled", "Enabled", value=lambda t: "yes" if t.enabled else "no"),
        Column("last_seen_at", "Last seen"),
        Column("last_ip", "Last IP"),
    ]
    filters = [
        Filter("status", "Status", TerminalStatus.choices),
        Filter("site", "Site", _site_choices, lookup="site_id"),
        yes_no_filter("enabled", "Enabled", "enabled"),
    ]
    search_fields = ["serial", "mac_address", "seat", "last_ip"]
    search_placeholder = "Serial, MAC, seat or IP"
    default_sort = "serial"
    row_template = "allocation/terminal_row.html"
    csv_filename = "terminals"

    def get_queryset(self):
        return Terminal.objects.select_related("site")


@role_required(Role.VIEWER, Role.OPERATOR)
@require_safe
def terminal_list(request):
    extra = {"pending": Terminal.objects.filter(status=TerminalStatus.PENDING).count()}
    if has_role(request.user, Role.OPERATOR):
        # Read once for every pending row's Enroll form.
        extra["sites"] = list(Site.objects.values_list("name", "label"))
    return listing_response(
        request, TerminalListing, template="allocation/terminal_list.html", extra=extra
    )


@role_required(Role.VIEWER, Role.OPERATOR)
@require_safe
def terminal_detail(request, pk):
    terminal = get_object_or_404(Terminal.objects.select_related("site"), pk=pk)
    # Bindings to the terminal itself, to its seat, and those used from it.
    here = Q(terminal=terminal) | Q(
        pk__in=DesktopSession.objects.filter(terminal=terminal).values("binding_id")
    )
    if terminal.seat:
        here |= Q(kind=BindingPolicy.SEAT, seat=terminal.seat)
    bindings = (
        Binding.objects.filter(here)
        .select_related("user", "vm__pool", "allocator")
        .order_by(F("released_at").desc(nulls_first=True), "-created_at")[:HISTORY_SHOWN]
    )
    sessions = terminal.sessions.select_related("user", "vm", "binding")[:HISTORY_SHOWN]
    context = {
        "terminal": terminal,
        "bindings": bindings,
        "sessions": sessions,
    }
    if terminal.status == TerminalStatus.PENDING and has_role(request.user, Role.OPERATOR):
        context["sites"] = list(Site.objects.values_list("name", "label"))
    return render(request, "allocation/terminal_detail.html", context)


@role_required(Role.OPERATOR)
@require_POST
def terminal_enroll_view(request, pk):
    terminal = get_object_or_404(Terminal, pk=pk)
    form = EnrollForm(request.POST)
    if form.is_valid():
        terminal_enroll(
            terminal=terminal,
            site=form.cleaned_data["site"],
            seat=form.cleaned_data["seat"],
            **who(request),
        )
        messages.success(request, f"Enrolled {terminal.serial}.")
    else:
        problems = " ".join(
            f"{name.replace('_', ' ')}: {' '.join(errors)}" for name, errors in form.errors.items()
        )
        messages.error(request, f"{terminal.serial} was not enrolled. {problems}")
    return redirect(next_url(request, reverse("allocation:terminal-list")))


@role_required(Role.OPERATOR)
def terminal_import(request):
    report = None
    form = TerminalImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            report = terminals_import_csv(text=form.cleaned_data["csv"], **who(request))
    return render(request, "allocation/terminal_import.html", {"form": form, "report": report})
