"""The placement comparison page: the latest replay's figures and chart, the
earlier runs, and for operators the form that starts a new replay."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe

from portal.pages import who
from portal.roles import Role, has_role, role_required

from .models import PlacementRun
from .replay import table_rows
from .replay_chart import placement_svg
from .replay_forms import ReplayForm
from .replay_selectors import placement_run_latest_done, placement_runs_recent
from .replay_services import placement_run_create, replay_config


def _shown_run(request) -> PlacementRun | None:
    """`?run=<id>` when given (a run that does not exist is a 404), else the
    latest finished run. A value that is not a plain decimal id is ignored."""
    raw = request.GET.get("run", "")
    # isdigit() alone accepts "²" and other Unicode digits that int() rejects.
    if raw.isascii() and raw.isdigit():
        return get_object_or_404(PlacementRun, pk=int(raw))
    return placement_run_latest_done()


def _render(request, *, form, status: int = 200):
    run = _shown_run(request)
    context = {"form": form, "run": run, "runs": placement_runs_recent()}
    if run is not None and run.results:
        report = run.results
        context.update(
            report=report,
            rows=table_rows(report),
            labels=[p["label"] for p in report["policies"]],
            # Built only from numbers and fixed labels, each escaped on the way in.
            chart=mark_safe(placement_svg(report)),  # noqa: S308
        )
    return render(request, "simulation/placement.html", context, status=status)


@role_required(Role.VIEWER, Role.OPERATOR)
def placement(request):
    """Viewers read the runs; operators start a new replay with the form."""
    operator = has_role(request.user, Role.OPERATOR)
    form = ReplayForm(request.POST or None) if operator else None
    if request.method == "POST":
        if not form.is_valid():
            return _render(request, form=form, status=400)
        run = placement_run_create(config=replay_config(**form.cleaned_data), **who(request))
        messages.success(
            request, f"Replay #{run.pk} queued: a worker runs it; reload to see its figures."
        )
        return redirect(f"{reverse('simulation:placement')}?run={run.pk}")
    return _render(request, form=form)
