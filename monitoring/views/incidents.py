"""Incidents (what broke and what DeskOps did about it), returning a failed host to
service, and the fault-injection page of the simulated cloud."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from cloud.choices import DriverKind, HostState
from cloud.models import Host, Region, SimHost
from cloud.services import sim_host_set_state, sim_server_drop_address
from portal.roles import Role, role_required
from portal.services import model_update

from ..choices import IncidentStatus
from ..forms import SimulationForm
from ..models import Incident
from ..recovery import host_return_to_service, incident_close


def _who(request) -> dict:
    return {"actor": request.user.get_username(), "request_id": getattr(request, "id", "")}


@role_required(Role.VIEWER, Role.OPERATOR)
def incident_list(request):
    status = request.GET.get("status", "")
    incidents = Incident.objects.select_related("host", "region")
    if status in IncidentStatus.values:
        incidents = incidents.filter(status=status)
    page = Paginator(incidents, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "monitoring/incident_list.html",
        {"page": page, "status": status, "statuses": IncidentStatus.choices},
    )


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
            "alerts": incident.alerts.all(),
        },
    )


@role_required(Role.OPERATOR)
@require_POST
def incident_close_view(request, pk):
    incident = get_object_or_404(Incident, pk=pk)
    note = request.POST.get("note", "").strip()[:400]
    if incident_close(incident=incident, note=note, **_who(request)):
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
        host_return_to_service(host=host, **_who(request))
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
                    model_update(obj=stored, fields=fields, **_who(request))
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
    sim_host_set_state(sim_host=sim_host, state=state, **_who(request))
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
    server = sim_server_drop_address(region=region, **_who(request))
    if server is None:
        messages.error(request, f"No running server in {region} has an address to lose.")
    else:
        messages.warning(
            request,
            f"{server.name} lost its IP address; reconciliation notices it and an alert follows.",
        )
    return redirect("monitoring:faults")
