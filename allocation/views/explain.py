"""The "explain" page: which allocator serves a user, rule by rule."""

from django.shortcuts import render

from allocation.api.ops.serializers import ExplainQuerySerializer
from allocation.api.ops.views import explanation_data
from allocation.selectors import allocator_explain
from portal.roles import Role, role_required


@role_required(Role.VIEWER)
def explain(request):
    """Which allocator serves a user (optionally at a terminal), rule by rule: the
    help desk's answer to "why did I get this desktop"."""
    context = {"query": request.GET, "result": None, "errors": None}
    if request.GET.get("user"):
        query = ExplainQuerySerializer(data=request.GET)
        if query.is_valid():
            user, terminal = query.validated_data["user"], query.validated_data.get("terminal")
            context["result"] = explanation_data(
                allocator_explain(user=user, terminal=terminal), user=user, terminal=terminal
            )
        else:
            context["errors"] = {field: " ".join(msgs) for field, msgs in query.errors.items()}
    return render(request, "allocation/explain.html", context)
