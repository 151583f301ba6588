"""Feature classes: the list (with a form to add one), a class's page (its
priority, the extra specs it implies, its pools and what the last apply to
flavors did to each) and the apply button. Everyone reads; administrators
change classes and apply them, as they do the scheduling policy."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from portal.roles import Role, has_role, role_required

from ..flavors import CPU_SHARES_MAX, SHARES_PER_WEIGHT, class_extra_specs
from ..forms import FeatureClassCreateForm, FeatureClassForm
from ..models import FeatureClass
from ..selectors import feature_class_pool_rows, feature_class_summaries
from ..services import feature_class_apply, feature_class_create
from ..services.feature_classes import CHANGED, FAILED, REFUSED, UNCHANGED
from .common import save_form, who


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def featureclass_list(request):
    form = None
    status = 200
    if has_role(request.user, Role.ADMINISTRATOR):
        form = FeatureClassCreateForm(request.POST or None, prefix="new")
        if request.method == "POST":
            if form.is_valid():
                created = feature_class_create(**form.cleaned_data, **who(request))
                messages.success(request, f"Added the class {created}.")
                return redirect("pools:featureclass-edit", pk=created.pk)
            status = 400
    classes = list(feature_class_summaries())
    for feature_class in classes:
        feature_class.extra_specs = class_extra_specs(feature_class)
    return render(
        request,
        "pools/featureclass_list.html",
        {"classes": classes, "form": form},
        status=status,
    )


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def featureclass_edit(request, pk):
    feature_class = get_object_or_404(FeatureClass, pk=pk)
    form = None
    status = 200
    if has_role(request.user, Role.ADMINISTRATOR):
        # The form validates a copy, so refused values never show as facts.
        form = FeatureClassForm(request.POST or None, instance=FeatureClass.objects.get(pk=pk))
        if request.method == "POST":
            if save_form(request, form, str(feature_class)):
                return redirect("pools:featureclass-edit", pk=pk)
            status = 400
    rows = feature_class_pool_rows(feature_class)
    context = {
        "feature_class": feature_class,
        "form": form,
        "extra_specs": class_extra_specs(feature_class),
        "shares_clamped": feature_class.weight * SHARES_PER_WEIGHT > CPU_SHARES_MAX,
        "rows": rows,
        "stale": any(not row["in_effect"] for row in rows),
    }
    return render(request, "pools/featureclass_detail.html", context, status=status)


@role_required(Role.ADMINISTRATOR)
@require_POST
def featureclass_apply(request, pk):
    feature_class = get_object_or_404(FeatureClass, pk=pk)
    outcomes = feature_class_apply(feature_class=feature_class, **who(request))
    if not outcomes:
        messages.info(request, f"{feature_class} has no pools: no flavor to set.")
        return redirect("pools:featureclass-edit", pk=pk)
    counts = {
        status: sum(1 for outcome in outcomes if outcome.status == status)
        for status in (CHANGED, UNCHANGED, REFUSED, FAILED)
    }
    summary = (
        f"{counts[CHANGED]} pool(s) changed, {counts[UNCHANGED]} already right, "
        f"{counts[REFUSED]} refused, {counts[FAILED]} failed."
    )
    if counts[REFUSED] or counts[FAILED]:
        messages.error(request, f"Applied {feature_class} with problems: {summary}")
    else:
        messages.success(request, f"Applied {feature_class} to its flavors: {summary}")
    return redirect("pools:featureclass-edit", pk=pk)
