"""Binding pages: who holds which desktop, and one binding's story (its sessions,
swaps and audit events)."""

from dataclasses import dataclass

from django import forms
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from allocation.choices import BindingPolicy
from allocation.helpdesk_views import ACTIONS
from allocation.models import Allocator, Binding
from pools.models import VMPool
from portal.listing import Column, Filter, Listing, listing_response
from portal.roles import Role, role_required

from .common import detail_url

# Sessions and swaps shown on a binding's page, newest first.
HISTORY_SHOWN = 20


@dataclass(frozen=True)
class ActiveFilter(Filter):
    """Active yes / no / any. Without a value the list shows active bindings only:
    released ones pile up (a floating desktop leaves one per session), and the
    drop-down shows "yes" so the page says what it lists."""

    def form_field(self) -> forms.Field:
        return forms.ChoiceField(
            label=self.label,
            required=False,
            choices=[("yes", "yes"), ("no", "no"), ("any", "any")],
        )

    def filter(self, queryset, value: str):
        if value == "no":
            return queryset.filter(released_at__isnull=False)
        if value == "any":
            return queryset
        return queryset.filter(released_at__isnull=True)


def _pool_choices():
    return VMPool.objects.order_by("name").values_list("pk", "name")


def _allocator_choices():
    return Allocator.objects.order_by("is_default", "priority", "pk").values_list("pk", "name")


def _terminal_url(binding: Binding) -> str:
    if binding.terminal_id is None:
        return ""
    return reverse("allocation:terminal-detail", args=[binding.terminal_id])


def _subject(binding: Binding) -> str:
    if binding.kind == BindingPolicy.SEAT:
        return f"seat {binding.seat}"
    if binding.kind == BindingPolicy.TERMINAL:
        return f"terminal {binding.terminal}" if binding.terminal_id else "terminal"
    return binding.user.get_username() if binding.user_id else ""


class BindingListing(Listing):
    title = "Bindings"
    noun = "bindings"
    columns = [
        Column("pk", "Binding", url=detail_url("allocation:binding-detail")),
        Column("user.username", "User"),
        Column("kind", "Policy"),
        Column("seat", "Seat"),
        Column("terminal.serial", "Terminal", url=_terminal_url),
        Column("vm.name", "VM", url=lambda b: reverse("pools:vm-detail", args=[b.vm_id])),
        Column("vm.state", "VM state"),
        Column(
            "vm.pool.name", "Pool", url=lambda b: reverse("pools:pool-detail", args=[b.vm.pool_id])
        ),
        Column(
            "allocator.name",
            "Allocator",
            url=lambda b: reverse("allocation:allocator-edit", args=[b.allocator_id]),
        ),
        Column("created_at", "Created"),
        Column("released_at", "Released"),
    ]
    filters = [
        ActiveFilter("active", "Active", ()),
        Filter("kind", "Policy", BindingPolicy.choices),
        Filter("pool", "Pool", _pool_choices, lookup="vm__pool_id"),
        Filter("allocator", "Allocator", _allocator_choices, lookup="allocator_id"),
    ]
    search_fields = ["user__username", "seat", "terminal__serial", "vm__name"]
    search_placeholder = "User, seat, terminal serial or VM"
    default_sort = "-created_at"
    time_field = "created_at"
    csv_filename = "bindings"

    def get_queryset(self):
        bindings = Binding.objects.select_related("user", "terminal", "vm__pool", "allocator")
        if not self.values.get("active"):
            bindings = bindings.filter(released_at__isnull=True)
        return bindings


@role_required(Role.VIEWER)
@require_safe
def binding_list(request):
    return listing_response(request, BindingListing)


@role_required(Role.VIEWER)
@require_safe
def binding_detail(request, pk):
    binding = get_object_or_404(
        Binding.objects.select_related("user", "terminal__site", "vm__pool__region", "allocator"),
        pk=pk,
    )
    sessions = binding.sessions.select_related("user", "terminal", "vm")[:HISTORY_SHOWN]
    swaps = binding.swaps.select_related("old_vm", "new_vm", "pool", "incident")[:HISTORY_SHOWN]
    context = {
        "binding": binding,
        "subject": _subject(binding),
        "sessions": sessions,
        "swaps": swaps,
        "actions": ACTIONS if binding.released_at is None else {},
    }
    return render(request, "allocation/binding_detail.html", context)
