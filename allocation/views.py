"""Staff pages of the allocation app: allocator rules, the terminal registry, and
"explain". Writes go through the same services, and validation through the same
serializers, as the ops API."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from allocation.api.ops.serializers import AllocatorSerializer, ExplainQuerySerializer
from allocation.api.ops.views import explanation_data
from allocation.choices import TerminalStatus
from allocation.forms import AllocatorForm, EnrollForm, TerminalImportForm
from allocation.models import Allocator, Terminal
from allocation.selectors import allocator_explain, allocator_shadowed_by
from allocation.services.allocators import allocator_save
from allocation.services.terminals import terminal_enroll, terminals_import_csv
from portal.roles import Role, role_required


def flatten_errors(errors) -> list[str]:
    """DRF's errors for one field as plain sentences (a list field nests them by
    item index)."""
    if isinstance(errors, dict):
        return [msg for nested in errors.values() for msg in flatten_errors(nested)]
    if isinstance(errors, list):
        return [msg for nested in errors for msg in flatten_errors(nested)]
    return [str(errors)]


def _audit_context(request) -> dict:
    return {"actor": request.user.get_username(), "request_id": getattr(request, "id", "")}


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def allocator_list(request):
    allocators = Allocator.objects.prefetch_related("groups", "sites", "pool_links__pool")
    rows = [(a, allocator_shadowed_by(allocator=a)) for a in allocators]
    return render(request, "allocation/allocator_list.html", {"rows": rows})


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def allocator_edit(request, pk=None):
    allocator = get_object_or_404(Allocator, pk=pk) if pk else None
    if request.method == "POST":
        form = AllocatorForm(request.POST)
        if form.is_valid():
            serializer = AllocatorSerializer(instance=allocator, data=form.api_data())
            if serializer.is_valid():
                data = dict(serializer.validated_data)
                related = {k: data.pop(k) for k in ("groups", "sites", "pools") if k in data}
                saved = allocator_save(
                    allocator=allocator, fields=data, **related, **_audit_context(request)
                )
                for other in allocator_shadowed_by(allocator=saved):
                    messages.warning(
                        request, f"{saved.name} is shadowed by {other.name}: it serves nobody."
                    )
                messages.success(request, f"Saved {saved.name}.")
                return redirect("allocation:allocator-list")
            for field, errors in serializer.errors.items():
                target = field if field in form.fields else None
                for error in flatten_errors(errors):
                    form.add_error(target, error)
    elif allocator is not None:
        form = AllocatorForm(
            initial=AllocatorForm.initial_from(AllocatorSerializer(allocator).data)
        )
    else:
        form = AllocatorForm()
    return render(request, "allocation/allocator_form.html", {"form": form, "allocator": allocator})


@role_required(Role.VIEWER, Role.OPERATOR)
def terminal_list(request):
    status = request.GET.get("status", "")
    query = request.GET.get("q", "").strip()
    terminals = Terminal.objects.select_related("site").order_by("status", "serial")
    if status in TerminalStatus.values:
        terminals = terminals.filter(status=status)
    if query:
        terminals = (
            terminals.filter(serial__icontains=query)
            | terminals.filter(mac_address__icontains=query)
            | terminals.filter(seat__icontains=query)
        )
    context = {
        "terminals": terminals[:500],
        "status": status,
        "q": query,
        "enroll_form": EnrollForm(),
        "import_form": TerminalImportForm(),
    }
    return render(request, "allocation/terminal_list.html", context)


@role_required(Role.OPERATOR)
@require_POST
def terminal_enroll_view(request, pk):
    terminal = get_object_or_404(Terminal, pk=pk)
    form = EnrollForm(request.POST)
    if form.is_valid():
        terminal_enroll(
            terminal=terminal,
            site=form.cleaned_data["site"],
            seat=form.cleaned_data["seat"],
            **_audit_context(request),
        )
        messages.success(request, f"Enrolled {terminal.serial}.")
    else:
        messages.error(request, f"{terminal.serial} was not enrolled: choose a site.")
    return redirect("allocation:terminal-list")


@role_required(Role.OPERATOR)
def terminal_import(request):
    report = None
    form = TerminalImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            report = terminals_import_csv(text=form.cleaned_data["csv"], **_audit_context(request))
    return render(request, "allocation/terminal_import.html", {"form": form, "report": report})


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
