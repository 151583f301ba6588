"""The help desk's pages: one search box, a user's desktops at a glance, and the
actions on them, each confirmed with a reason before it runs."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from allocation.api.ops.views import explanation_data
from allocation.api.thin_client.views import virt_viewer_file
from allocation.errors import CloudUnreachable
from allocation.models import Binding, VMSwap
from allocation.selectors import helpdesk_search, user_overview
from allocation.services import desktop_console
from allocation.services.helpdesk import (
    POWER_ACTIONS,
    binding_unbind,
    vm_power_action,
    vm_swap,
)
from cloud.drivers import driver_for
from pools.models import VMPool
from portal.errors import ServiceError
from portal.pages import who
from portal.roles import Role, role_required

ACTIONS = {
    "swap": "Swap for a fresh VM from the same pool (the old one is quarantined)",
    "move": "Move the user to another pool (a fresh VM there; the old one is quarantined)",
    "unbind": "Unbind (the VM is rebuilt before anyone else gets it)",
    **POWER_ACTIONS,
}


class ActionForm(forms.Form):
    reason = forms.CharField(
        max_length=255, help_text="Recorded in the audit trail, e.g. the ticket number."
    )
    pool = forms.ModelChoiceField(queryset=VMPool.objects.filter(enabled=True), required=False)


@role_required(Role.HELPDESK)
def search(request):
    query = request.GET.get("q", "").strip()
    results = helpdesk_search(query=query) if query else None
    users = results.users if results else []
    if results and len(users) == 1 and not results.terminals and not results.vms:
        return redirect("allocation:helpdesk-user", pk=users[0].pk)
    return render(request, "allocation/helpdesk_search.html", {"q": query, "results": results})


@role_required(Role.HELPDESK)
def user_page(request, pk):
    user = get_object_or_404(get_user_model(), pk=pk)
    overview = user_overview(user=user)
    last_terminal = overview.sessions[0].terminal if overview.sessions else None
    context = {
        "overview": overview,
        "explain": explanation_data(overview.explanation, user=user, terminal=last_terminal),
        "actions": ACTIONS,
    }
    return render(request, "allocation/helpdesk_user.html", context)


@role_required(Role.HELPDESK)
def action(request, binding_pk, name):
    """GET: the confirmation, with the reason to give. POST: do it."""
    if name not in ACTIONS:
        raise Http404("No such action.")
    binding = get_object_or_404(
        Binding.objects.select_related("vm__pool", "user"), pk=binding_pk, released_at__isnull=True
    )
    form = ActionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reason = form.cleaned_data["reason"]
        try:
            message = _run(name, binding, reason, form.cleaned_data.get("pool"), who(request))
        except ServiceError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, message)
        return redirect(_back(binding))
    context = {"binding": binding, "name": name, "label": ACTIONS[name], "form": form}
    return render(request, "allocation/helpdesk_confirm.html", context)


def _back(binding: Binding) -> str:
    from django.urls import reverse

    if binding.user_id:
        return reverse("allocation:helpdesk-user", args=[binding.user_id])
    return reverse("allocation:helpdesk") + f"?q={binding.seat or binding.vm.name}"


def _run(name: str, binding: Binding, reason: str, pool, who: dict) -> str:
    if name in ("swap", "move"):
        if name == "move" and pool is None:
            raise ServiceError("Choose the pool to move the user to.")
        swap = vm_swap(binding=binding, reason=reason, pool=pool if name == "move" else None, **who)
        if swap.status == VMSwap.Status.DONE:
            return f"Swapped {swap.old_vm} for {swap.new_vm} in {swap.seconds:.1f} s."
        return f"No VM was ready in {swap.pool}: the swap completes as soon as one has booted."
    if name == "unbind":
        binding_unbind(binding=binding, reason=reason, **who)
        return f"Unbound {binding.vm}; it is being rebuilt."
    vm_power_action(vm=binding.vm, action=name, reason=reason, **who)
    return f"{ACTIONS[name].split(' (')[0]}: sent to {binding.vm}."


@role_required(Role.HELPDESK)
def console(request, binding_pk):
    """The desktop's console for the agent: a remote-viewer file, or the cloud's
    browser console where it has one."""
    binding = get_object_or_404(Binding.objects.select_related("vm__pool__region"), pk=binding_pk)
    vm = binding.vm
    browser_url = driver_for(vm.pool.region).browser_console_url(vm.server_id)
    if browser_url and request.GET.get("as") != "vv":
        return redirect(browser_url)
    try:
        spice = desktop_console(vm=vm)
    except CloudUnreachable:
        messages.error(request, "The cloud is not answering; try again shortly.")
        return redirect(_back(binding))
    if spice is None:
        messages.error(request, f"{vm} is starting or being rebuilt; try again in a moment.")
        return redirect(_back(binding))
    response = HttpResponse(
        virt_viewer_file(title=f"DeskOps (help desk): {vm.name}", console=spice),
        content_type="application/x-virt-viewer",
    )
    response["Content-Disposition"] = f'attachment; filename="{vm.name}.vv"'
    response["Cache-Control"] = "no-store"
    return response
