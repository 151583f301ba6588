"""Pools: the list with each pool's ready level against its target, a pool's page
(settings, calendar, latest VMs, the allocators that draw from it), resuming a
paused pool, and the calendar windows."""

from django.contrib import messages
from django.db.models import Count, F, Q, QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from cloud.models import Region
from portal.listing import Column, Filter, Listing, listing_response, yes_no_filter
from portal.roles import Role, has_role, role_required
from portal.services import audit_record

from ..choices import ALIVE_STATES, VMState
from ..flavors import class_extra_specs
from ..forms import PoolForm, PoolScheduleForm
from ..models import FeatureClass, PoolSchedule, VMPool
from ..selectors import pool_summaries, pool_target
from ..services import pool_resume
from .common import detail_url, save_form, who

# A pool page lists its latest VMs; the VM list filtered on the pool has them all.
POOL_VMS_SHOWN = 20


def _regions():
    return Region.objects.order_by("name").values_list("pk", "name")


def _feature_classes():
    return FeatureClass.objects.order_by("-urgency", "name").values_list("pk", "label")


def _short(queryset: QuerySet, value: str) -> QuerySet:
    condition = Q(ready_count__lt=F("min_ready"))
    return queryset.filter(condition) if value == "yes" else queryset.exclude(condition)


def pool_state(pool: VMPool) -> str:
    if pool.paused_at:
        return "paused"
    return "refilling" if pool.enabled else "disabled"


class PoolListing(Listing):
    title = "Pools"
    noun = "pools"
    columns = [
        Column(
            "name",
            "Pool",
            value=str,
            url=lambda p: detail_url("pools:pool-detail", p.pk),
        ),
        Column(
            "region.name",
            "Region",
            url=lambda p: detail_url("pools:region-edit", p.region_id),
        ),
        Column("feature_class", "Class", sort="feature_class__label"),
        Column(
            "ready_count",
            "Ready / target now",
            value=lambda p: f"{p.ready_count} / {pool_target(p)}",
        ),
        Column("min_ready", "Short below"),
        Column(
            "booting_count",
            "Booting / cap",
            value=lambda p: f"{p.booting_count} / {p.max_concurrent_boots}",
        ),
        Column("in_use_count", "In use"),
        Column("error_count", "Errors"),
        Column(
            "alive_count",
            "VMs / max",
            value=lambda p: f"{p.alive_count} / {p.max_size}",
            url=lambda p: f"{reverse('pools:vm-list')}?pool={p.pk}&alive=yes",
        ),
        Column("state", "State", sort="paused_at", value=pool_state),
        Column("last_error", "Last error"),
    ]
    filters = [
        Filter("region", "Region", _regions, lookup="region_id"),
        Filter("feature_class", "Class", _feature_classes, lookup="feature_class_id"),
        yes_no_filter("paused", "Paused", "paused_at__isnull", negate=True),
        yes_no_filter("enabled", "Enabled", "enabled"),
        Filter("short", "Short", [("yes", "yes"), ("no", "no")], apply=_short),
    ]
    search_fields = ["name", "label", "image", "flavor"]
    search_placeholder = "Pool, image, flavor…"
    default_sort = "name"
    row_template = "pools/pool_row.html"
    csv_filename = "pools"

    def get_queryset(self):
        return (
            pool_summaries()
            .annotate(alive_count=Count("vms", filter=Q(vms__state__in=ALIVE_STATES)))
            .prefetch_related("schedules")
        )

    def row(self, obj):
        obj.current_target = pool_target(obj)
        return super().row(obj)


@role_required(Role.VIEWER, Role.OPERATOR)
def pool_list(request):
    return listing_response(request, PoolListing, template="pools/pool_list.html")


@role_required(Role.VIEWER, Role.OPERATOR)
def pool_detail(request, pk):
    pool = get_object_or_404(pool_summaries().prefetch_related("schedules"), pk=pk)
    form = None
    if has_role(request.user, Role.OPERATOR):
        # The form validates a copy, so refused values never show as facts.
        form = PoolForm(request.POST or None, instance=VMPool.objects.get(pk=pool.pk))
        if request.method == "POST" and save_form(request, form, pool.name):
            return redirect("pools:pool-detail", pk=pool.pk)
    vms = pool.vms.exclude(state=VMState.DELETED).order_by("-requested_at", "-pk")
    context = {
        "pool": pool,
        "form": form,
        "current_target": pool_target(pool),
        "class_specs": class_extra_specs(pool.feature_class),
        "schedule_form": PoolScheduleForm(),
        "vms": vms[:POOL_VMS_SHOWN],
        "vm_count": vms.count(),
        "vm_list_url": f"{reverse('pools:vm-list')}?pool={pool.pk}",
        "allocator_links": pool.allocator_links.select_related("allocator").order_by(
            "allocator__priority", "allocator__name"
        ),
    }
    return render(request, "pools/pool_detail.html", context)


@role_required(Role.OPERATOR)
@require_POST
def pool_resume_view(request, pk):
    pool = get_object_or_404(VMPool, pk=pk)
    pool_resume(pool=pool, **who(request))
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
            **who(request),
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
    audit_record(
        action="poolschedule.delete", obj=schedule, before={"window": str(schedule)}, **who(request)
    )
    schedule.delete()
    messages.success(request, "Removed the window.")
    return redirect("pools:pool-detail", pk=pk)
