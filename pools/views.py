"""Staff pages of the pools app: pools (with their calendar and pause state), VMs
(with why their host was chosen), hosts, and the scheduling policy. Every change
goes through an audited service."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from cloud.models import Host, Region
from portal.models import AuditEvent
from portal.roles import Role, role_required
from portal.services import audit_record, model_update

from .forms import HostForm, PoolForm, PoolScheduleForm, RegionForm, SchedulingPolicyForm
from .models import VM, PoolSchedule, SchedulingPolicy, VMPool
from .selectors import pool_summaries, pool_target
from .services import host_clear_failures, pool_resume


def _who(request) -> dict:
    return {"actor": request.user.get_username(), "request_id": getattr(request, "id", "")}


def _save_form(request, form, what: str) -> bool:
    """Save a bound ModelForm's changed fields through the audited update. The
    form has already written the new values onto its instance, so the update works
    on a fresh copy from the database to see what they were before."""
    if not form.is_valid():
        return False
    fields = {name: form.cleaned_data[name] for name in form.changed_data}
    if fields:
        stored = type(form.instance).objects.get(pk=form.instance.pk)
        model_update(obj=stored, fields=fields, **_who(request))
    messages.success(request, f"Saved {what}.")
    return True


@role_required(Role.VIEWER, Role.OPERATOR)
def pool_list(request):
    pools = list(pool_summaries().prefetch_related("schedules"))
    for pool in pools:
        pool.current_target = pool_target(pool)
    return render(request, "pools/pool_list.html", {"pools": pools})


@role_required(Role.VIEWER, Role.OPERATOR)
def pool_detail(request, pk):
    pool = get_object_or_404(pool_summaries().prefetch_related("schedules"), pk=pk)
    form = PoolForm(request.POST or None, instance=pool)
    if request.method == "POST" and _save_form(request, form, pool.name):
        return redirect("pools:pool-detail", pk=pool.pk)
    context = {
        "pool": pool,
        "form": form,
        "current_target": pool_target(pool),
        "schedule_form": PoolScheduleForm(),
        "vms": pool.vms.order_by("-requested_at")[:100],
        "events": AuditEvent.objects.filter(object_type="pools.vmpool", object_id=str(pool.pk))[
            :20
        ],
    }
    return render(request, "pools/pool_detail.html", context)


@role_required(Role.OPERATOR)
@require_POST
def pool_resume_view(request, pk):
    pool = get_object_or_404(VMPool, pk=pk)
    pool_resume(pool=pool, **_who(request))
    messages.success(request, f"{pool.name} refills again.")
    return redirect("pools:pool-detail", pk=pk)


@role_required(Role.OPERATOR)
@require_POST
def schedule_add(request, pk):
    pool = get_object_or_404(VMPool, pk=pk)
    form = PoolScheduleForm(request.POST, instance=PoolSchedule(pool=pool))
    if form.is_valid():
        schedule = form.save()
        audit_record(
            action="poolschedule.create",
            obj=schedule,
            after={"pool": pool.name, "window": str(schedule)},
            **_who(request),
        )
        messages.success(request, f"Added {schedule}.")
    else:
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"The window was not added: {errors}")
    return redirect("pools:pool-detail", pk=pk)


@role_required(Role.OPERATOR)
@require_POST
def schedule_delete(request, pk, schedule_pk):
    schedule = get_object_or_404(PoolSchedule, pk=schedule_pk, pool_id=pk)
    audit_record(action="poolschedule.delete", obj=schedule, before={"window": str(schedule)},
                 **_who(request))  # fmt: skip
    schedule.delete()
    messages.success(request, "Removed the window.")
    return redirect("pools:pool-detail", pk=pk)


@role_required(Role.VIEWER, Role.OPERATOR)
def vm_detail(request, pk):
    vm = get_object_or_404(VM.objects.select_related("pool__region"), pk=pk)
    context = {
        "vm": vm,
        "candidates": (vm.placement or {}).get("candidates", []),
        "events": AuditEvent.objects.filter(object_type="pools.vm", object_id=str(vm.pk))[:20],
    }
    return render(request, "pools/vm_detail.html", context)


@role_required(Role.VIEWER, Role.OPERATOR)
def host_list(request):
    hosts = Host.objects.select_related("region").order_by("region__name", "name")
    return render(
        request,
        "pools/host_list.html",
        {"hosts": hosts, "policy": SchedulingPolicy.current()},
    )


@role_required(Role.VIEWER, Role.OPERATOR)
def host_edit(request, pk):
    host = get_object_or_404(Host, pk=pk)
    form = HostForm(request.POST or None, instance=host)
    if request.method == "POST" and _save_form(request, form, host.name):
        return redirect("pools:host-list")
    return render(request, "pools/simple_form.html", {"form": form, "title": f"Host {host.name}"})


@role_required(Role.OPERATOR)
@require_POST
def host_clear(request, pk):
    host = get_object_or_404(Host, pk=pk)
    host_clear_failures(host=host, **_who(request))
    messages.success(request, f"{host.name} takes placements again.")
    return redirect("pools:host-list")


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def scheduling(request):
    """The scheduling policy and each region's boot cap and placement mode."""
    policy = SchedulingPolicy.current()
    form = SchedulingPolicyForm(request.POST or None, instance=policy, prefix="policy")
    if request.method == "POST" and _save_form(request, form, "the scheduling policy"):
        return redirect("pools:scheduling")
    regions = Region.objects.order_by("name")
    return render(request, "pools/scheduling.html", {"form": form, "regions": regions})


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def region_edit(request, pk):
    region = get_object_or_404(Region, pk=pk)
    form = RegionForm(request.POST or None, instance=region)
    if request.method == "POST" and _save_form(request, form, str(region)):
        return redirect("pools:scheduling")
    return render(request, "pools/simple_form.html", {"form": form, "title": f"Region {region}"})
