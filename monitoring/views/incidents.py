"""Incidents (what broke and what DeskOps did about it), returning a failed host to
service, and the fault-injection page of the simulated cloud."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from cloud.choices import DriverKind, HostState
from cloud.models import Host, Region, SimHost
from cloud.services import sim_host_set_state, sim_server_drop_address
from portal.listing import Column, Filter, Listing, listing_response
from portal.pages import who
from portal.roles import Role, role_required
from portal.services import model_update

from ..choices import IncidentKind, IncidentStatus
from ..forms import SimulationForm
from ..models import Incident
from ..recovery import host_return_to_service, incident_close


def _region_choices():
    return Region.objects.order_by("name").values_list("pk", "name")


def _host_choices():
    """The hosts that have had an incident (not every host of the cloud)."""
    hosts = (
        Host.objects.filter(incidents__isnull=False)
        .order_by("region__name", "name")
        .values_list("pk", "region__name", "name")
        .distinct()
    )
    return [(pk, f"{region} / {name}") for pk, region, name in hosts]


def _recovered_in(incident: Incident):
    seconds = incident.recovery_seconds
    return None if seconds is None else round(seconds)


class IncidentListing(Listing):
    title = "Incidents"
    noun = "incidents"
    columns = [
        Column("opened_at", "Opened"),
        Column(
            "title", "Incident", url=lambda i: reverse("monitoring:incident-detail", args=[i.pk])
        ),
        Column("kind", "Kind"),
        Column("status", "Status"),
        Column("region.name", "Region"),
        Column(
            "host.name",
            "Host",
            url=lambda i: reverse("pools:host-edit", args=[i.host_id]) if i.host_id else "",
        ),
        Column("vms_affected", "VMs"),
        Column("users_affected", "Users"),
        Column("recovered_in", "Recovered in (s)", sort=None, value=_recovered_in),
        Column("closed_at", "Closed"),
        Column("closed_by", "Closed by"),
    ]
    filters = [
        Filter("status", "Status", IncidentStatus.choices),
        Filter("kind", "Kind", IncidentKind.choices),
        Filter("region", "Region", _region_choices, lookup="region_id"),
        Filter("host", "Host", _host_choices, lookup="host_id"),
    ]
    search_fields = ["title", "host__name", "closed_by"]
    search_placeholder = "Title, host or who closed it"
    default_sort = "-opened_at"
    time_field = "opened_at"
    row_template = "monitoring/incident_row.html"
    csv_filename = "incidents"

    def get_queryset(self):
        return Incident.objects.select_related("host", "region")


@role_required(Role.VIEWER, Role.OPERATOR)
def incident_list(request):
    return listing_response(request, IncidentListing, template="monitoring/incident_list.html")


@role_required(Role.VIEWER, Role.OPERATOR)
def incident_detail(request, pk):
    incident = get_object_or_404(Incident.objects.select_related("host", "region"), pk=pk)
    swaps = incident.swaps.select_related(
        "binding__user", "binding__terminal", "old_vm", "new_vm"
    ).order_by("requested_at")
    return render(
        request,
        "monitoring/incident_detail.html",
        {
            "incident": incident,
            "events": incident.events.all(),
            "swaps": swaps,
            "alerts": incident.alerts.order_by("-opened_at"),
        },
    )


@role_required(Role.OPERATOR)
@require_POST
def incident_close_view(request, pk):
    incident = get_object_or_404(Incident, pk=pk)
    note = request.POST.get("note", "").strip()[:400]
    if incident_close(incident=incident, note=note, **who(request)):
        messages.success(request, f"Closed “{incident.title}”.")
    else:
        messages.info(request, "That incident was closed already.")
    return redirect("monitoring:incident-detail", pk=incident.pk)


@role_required(Role.OPERATOR)
@require_POST
def host_return(request, pk):
    host = get_object_or_404(Host, pk=pk)
    if host.failed_at is None:
        messages.info(request, f"{host.name} is in service already.")
    else:
        host_return_to_service(host=host, **who(request))
        messages.success(request, f"{host.name} takes placements again once it is up.")
    return redirect(request.POST.get("next") or "pools:host-list")


@role_required(Role.OPERATOR)
def faults(request):
    """Fault injection on the simulated regions: fail a host, slow or break the API,
    fail a share of boots — to see DeskOps react, live."""
    regions = []
    for region in Region.objects.filter(driver=DriverKind.SIMULATED).select_related("simulation"):
        simulation = getattr(region, "simulation", None)
        if simulation is None:
            continue
        form = SimulationForm(
            request.POST if request.POST.get("region") == str(region.pk) else None,
            instance=simulation,
            prefix=f"r{region.pk}",
        )
        if form.is_bound:
            if form.is_valid():
                fields = {name: form.cleaned_data[name] for name in form.changed_data}
                if fields:
                    # The valid form has written the new values onto its instance:
                    # the audit compares with a fresh copy.
                    stored = type(simulation).objects.get(pk=simulation.pk)
                    model_update(obj=stored, fields=fields, **who(request))
                messages.success(request, f"Faults of {region} saved.")
                return redirect("monitoring:faults")
        hosts = SimHost.objects.filter(region=region).order_by("name")
        portal_hosts = {h.name: h for h in Host.objects.filter(region=region)}
        regions.append(
            {
                "region": region,
                "form": form,
                "hosts": [(sim, portal_hosts.get(sim.name)) for sim in hosts],
            }
        )
    return render(
        request,
        "monitoring/faults.html",
        {"regions": regions, "threshold": settings.HOST_FAILURE_THRESHOLD},
    )


@role_required(Role.OPERATOR)
@require_POST
def fault_host(request, pk):
    sim_host = get_object_or_404(SimHost, pk=pk)
    state = request.POST.get("state", "")
    if state not in (HostState.UP, HostState.DOWN):
        messages.error(request, "Choose up or down.")
        return redirect("monitoring:faults")
    sim_host_set_state(sim_host=sim_host, state=state, **who(request))
    if state == HostState.DOWN:
        messages.warning(
            request,
            f"{sim_host.name} is down. DeskOps declares it failed after "
            f"{settings.HOST_FAILURE_THRESHOLD} s and moves its users; watch the dashboard.",
        )
    else:
        messages.success(request, f"{sim_host.name} is up again.")
    return redirect("monitoring:faults")


@role_required(Role.OPERATOR)
@require_POST
def fault_drop_address(request, pk):
    region = get_object_or_404(Region, pk=pk, driver=DriverKind.SIMULATED)
    server = sim_server_drop_address(region=region, **who(request))
    if server is None:
        messages.error(request, f"No running server in {region} has an address to lose.")
    else:
        messages.warning(
            request,
            f"{server.name} lost its IP address; reconciliation notices it and an alert follows.",
        )
    return redirect("monitoring:faults")
