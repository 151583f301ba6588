"""The CPU scheduling section of a host's page, served on its own URL so the host
page never waits for the simulation (htmx loads it after the page)."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from cloud.models import Host
from portal.roles import Role, role_required

from .credit_chart import comparison_chart
from .credit_hosts import host_scheduling


@role_required(Role.VIEWER)
@require_GET
def host_scheduler(request, pk):
    """Credit and BOOST simulated on the host's booted VMs: a chart and a table."""
    host = get_object_or_404(Host, pk=pk)
    mix, comparison = host_scheduling(host)
    context = {"host": host, "mix": mix, "comparison": comparison}
    if comparison is not None:
        context["chart"] = comparison_chart(comparison, f"Host {host.name}: Credit and BOOST")
        context["classes"] = comparison.classes()
    return render(request, "simulation/host_scheduler.html", context)
