"""The boot-storm planner: every region's shifts with when their pre-warming must
start and whether it can work, a chart per region of the planned boot curve on one
weekday, the shift forms and the button that writes the plan into the pools'
calendars."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.roles import Role, has_role, role_required

from ..forms import ShiftForm
from ..models import Shift
from ..prewarm import DAY_NAMES, Plan, ShiftPlan
from ..prewarm_chart import chart, region_curve
from ..selectors import prewarm_plan
from ..services import prewarm_apply, shift_create, shift_delete, shift_update
from .common import who


def _day(request) -> int:
    """The weekday whose curves are drawn: `?day=1..7`, else today."""
    raw = request.GET.get("day", "")
    if raw in {"1", "2", "3", "4", "5", "6", "7"}:
        return int(raw)
    return timezone.localtime().isoweekday()


def _page_url(day: int) -> str:
    return f"{reverse('pools:prewarm')}?day={day}"


def _applied(planned: ShiftPlan, shift: Shift) -> str:
    """Whether the pool's calendar holds the window this plan would write."""
    window = shift.schedule
    if window is None:
        return "not applied"
    same = (
        window.starts == planned.prewarm_start
        and window.ends == shift.ends_at
        and window.target_ready == shift.seats
        and list(window.weekdays) == planned.window_weekdays
        and window.pool_id == shift.pool_id
    )
    return "applied" if same else "differs from the plan"


def _regions(plan: Plan, day: int) -> list[dict]:
    shifts = Shift.objects.select_related("pool", "schedule").in_bulk(
        [p.shift.key for p in plan.shifts]
    )
    regions = []
    for region in sorted(plan.regions.values(), key=lambda r: r.name):
        rows = [
            {"plan": planned, "shift": shifts[planned.shift.key]}
            for planned in plan.for_region(region.region_id)
            if planned.shift.key in shifts
        ]
        for row in rows:
            row["applied"] = _applied(row["plan"], row["shift"])
            row["days"] = ", ".join(DAY_NAMES[d - 1] for d in row["plan"].shift.weekdays)
        curve = region_curve(plan, region.region_id, day)
        regions.append(
            {
                "facts": region,
                "rows": rows,
                "chart": chart(curve) if curve else None,
                "host_cap": sum(h.boot_cap for h in region.hosts)
                if region.hosts is not None
                else None,
                "up_hosts": len(region.hosts) if region.hosts is not None else None,
            }
        )
    return regions


def _render(request, *, form, day: int, status: int = 200):
    plan = prewarm_plan()
    context = {
        "regions": _regions(plan, day),
        "form": form,
        "day": day,
        "day_name": DAY_NAMES[day - 1],
        "days": list(enumerate(DAY_NAMES, start=1)),
        "impossible": sum(1 for s in plan.shifts if not s.ok),
    }
    return render(request, "pools/prewarm.html", context, status=status)


@role_required(Role.VIEWER, Role.OPERATOR)
def prewarm(request):
    """Viewers read the plan; operators add a shift with the form at its foot."""
    day = _day(request)
    form = ShiftForm(request.POST or None) if has_role(request.user, Role.OPERATOR) else None
    if request.method == "POST":
        if form.is_valid():
            shift = shift_create(**form.cleaned_data, **who(request))
            messages.success(request, f"Added the shift {shift.label}; apply the plan to use it.")
            return redirect(_page_url(day))
        return _render(request, form=form, day=day, status=400)
    return _render(request, form=form, day=day)


@role_required(Role.OPERATOR)
def shift_edit(request, pk):
    shift = get_object_or_404(Shift.objects.select_related("pool"), pk=pk)
    # The form validates a copy, so refused values never show as facts.
    form = ShiftForm(request.POST or None, instance=Shift.objects.get(pk=shift.pk))
    if request.method == "POST":
        if form.is_valid():
            fields = {name: form.cleaned_data[name] for name in form.changed_data}
            shift_update(shift=shift, fields=fields, **who(request))
            messages.success(request, f"Saved the shift {shift.label}; apply the plan to use it.")
            return redirect("pools:prewarm")
        return render(request, "pools/shift_edit.html", {"shift": shift, "form": form}, status=400)
    return render(request, "pools/shift_edit.html", {"shift": shift, "form": form})


@role_required(Role.OPERATOR)
@require_POST
def shift_delete_view(request, pk):
    shift = get_object_or_404(Shift, pk=pk)
    label = shift.label
    shift_delete(shift=shift, **who(request))
    messages.success(request, f"Removed the shift {label} and its pre-warm window.")
    return redirect("pools:prewarm")


@role_required(Role.OPERATOR)
@require_POST
def prewarm_apply_view(request):
    result = prewarm_apply(**who(request))
    messages.success(request, f"Plan applied: {result}.")
    return redirect("pools:prewarm")
