"""Allocator pages: the rules in the order they are tried, and one rule's page with
its facts, pools, active bindings, the rules that shadow it and its history.
Only administrators see (and may send) the form."""

from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from allocation.api.ops.serializers import AllocatorSerializer
from allocation.choices import BindingPolicy
from allocation.forms import AllocatorForm
from allocation.matching import ordered, shadows
from allocation.models import ACTIVE_BINDING, Allocator, AllocatorPool, Binding
from allocation.selectors import allocator_rules, allocator_shadowed_by
from allocation.services.allocators import allocator_save
from pools.models import VMPool
from portal.listing import Column, Filter, Listing, listing_response, yes_no_filter
from portal.pages import who
from portal.roles import Role, has_role, role_required

from .common import detail_url, flatten_errors

# Active bindings shown on an allocator's page; the binding list has the rest.
BINDINGS_SHOWN = 10


def allocators_shadowed() -> dict[int, list[Allocator]]:
    """For every enabled allocator that serves nobody, the allocators tried before it
    that match every login it matches (one pass over all rules, a fixed number of
    queries)."""
    rules = allocator_rules()
    tried = ordered(rule for _, rule in rules.values())
    result = {}
    for index, rule in enumerate(tried):
        earlier = [rules[other.key][0] for other in tried[:index] if shadows(other, rule)]
        if earlier:
            result[rule.key] = earlier
    return result


def rule_summary(allocator: Allocator) -> str:
    """The allocator's conditions in one line. Reads the prefetched groups and
    sites, so a list of allocators costs no query per row."""
    if allocator.is_default:
        return "everyone no other rule serves (default)"
    parts = []
    groups = sorted(group.name for group in allocator.groups.all())
    if groups:
        parts.append("groups " + ", ".join(groups))
    sites = sorted(site.name for site in allocator.sites.all())
    if sites:
        parts.append("sites " + ", ".join(sites))
    if allocator.terminal_tags:
        parts.append("tags " + " + ".join(allocator.terminal_tags))
    if allocator.ou_subtrees:
        parts.append("under " + "; ".join(allocator.ou_subtrees))
    return " · ".join(parts) or "every login (no condition)"


def pool_chain(allocator: Allocator) -> str:
    return " → ".join(link.pool.name for link in allocator.pool_links.all())


def active_bindings_count():
    """The allocator's active bindings, as a subquery: it stays right whatever
    other relation a search or filter joins."""
    counts = (
        Binding.objects.filter(ACTIVE_BINDING, allocator=OuterRef("pk"))
        .order_by()
        .values("allocator")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def bindings_of(allocator_pk: int) -> str:
    return reverse("allocation:binding-list") + "?" + urlencode({"allocator": allocator_pk})


def _pool_choices():
    return VMPool.objects.order_by("name").values_list("pk", "name")


def _with_pool(queryset, value):
    return queryset.filter(
        pk__in=AllocatorPool.objects.filter(pool_id=value).values("allocator_id")
    )


class AllocatorListing(Listing):
    title = "Allocators"
    noun = "allocators"
    filters = [
        yes_no_filter("enabled", "Enabled", "enabled"),
        Filter("binding_policy", "Binding", BindingPolicy.choices),
        Filter("pool", "Pool", _pool_choices, apply=_with_pool),
    ]
    search_fields = ["name", "groups__name", "sites__name", "terminal_tags", "ou_subtrees"]
    search_placeholder = "Name, group, site, tag or OU"
    default_sort = "priority"
    row_template = "allocation/allocator_row.html"
    csv_filename = "allocators"

    def __init__(self, request):
        super().__init__(request)
        self.shadowed = allocators_shadowed()
        self.columns = [
            Column(
                "priority",
                "Priority",
                value=lambda a: "default" if a.is_default else a.priority,
            ),
            Column("name", "Name", url=detail_url("allocation:allocator-edit")),
            Column("conditions", "Conditions", sort=None, value=rule_summary),
            Column("binding_policy", "Binding"),
            Column("pools", "Pools, in order", sort=None, value=pool_chain),
            Column("active_bindings", "Active bindings", url=lambda a: bindings_of(a.pk)),
            Column("state", "State", sort="enabled", value=self.state),
        ]

    def state(self, allocator: Allocator) -> str:
        if not allocator.enabled:
            return "disabled"
        shadowed_by = self.shadowed.get(allocator.pk)
        if shadowed_by:
            return "shadowed by " + ", ".join(other.name for other in shadowed_by)
        return "active"

    def row(self, obj):
        # The row template links each allocator that shadows this one.
        obj.shadowed_by = self.shadowed.get(obj.pk, []) if obj.enabled else []
        return super().row(obj)

    def get_queryset(self):
        return Allocator.objects.prefetch_related(
            "groups",
            "sites",
            Prefetch("pool_links", queryset=AllocatorPool.objects.select_related("pool")),
        ).annotate(active_bindings=active_bindings_count())

    def rows(self):
        rows = super().rows()
        if self.sort.lstrip("-") == "priority":
            # In the order the rules are tried: by priority, the default last, then
            # by id (as matching breaks ties).
            fields = ["is_default", "priority", "pk"]
            rows = rows.order_by(*(f"-{f}" if self.sort.startswith("-") else f for f in fields))
        if (self.values.get("q") or "").strip():
            # A search through groups or sites joins them: one row per allocator.
            rows = rows.distinct()
        return rows


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
@require_safe
def allocator_list(request):
    return listing_response(request, AllocatorListing, template="allocation/allocator_list.html")


def _save(request, form: AllocatorForm, allocator: Allocator | None) -> Allocator | None:
    """Validate the form with the ops API's serializer and save; None (with the
    errors on the form) when it is refused."""
    if not form.is_valid():
        return None
    serializer = AllocatorSerializer(instance=allocator, data=form.api_data())
    if not serializer.is_valid():
        for field, errors in serializer.errors.items():
            target = field if field in form.fields else None
            for error in flatten_errors(errors):
                form.add_error(target, error)
        return None
    data = dict(serializer.validated_data)
    related = {key: data.pop(key) for key in ("groups", "sites", "pools") if key in data}
    saved = allocator_save(allocator=allocator, fields=data, **related, **who(request))
    for other in allocator_shadowed_by(allocator=saved):
        messages.warning(request, f"{saved.name} is shadowed by {other.name}: it serves nobody.")
    messages.success(request, f"Saved {saved.name}.")
    return saved


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def allocator_create(request):
    """The form for a new allocator; other roles are told who may create one."""
    form = None
    if request.method == "POST":
        form = AllocatorForm(request.POST)
        saved = _save(request, form, None)
        if saved is not None:
            return redirect("allocation:allocator-edit", pk=saved.pk)
    elif has_role(request.user, Role.ADMINISTRATOR):
        form = AllocatorForm()
    return render(request, "allocation/allocator_form.html", {"form": form})


@role_required(Role.VIEWER, Role.ADMINISTRATOR)
def allocator_edit(request, pk):
    """The allocator's page: everyone reads its facts; administrators also get the
    form (a POST from anyone else is refused before it gets here)."""
    allocator = get_object_or_404(
        Allocator.objects.prefetch_related(
            "groups",
            "sites",
            Prefetch("pool_links", queryset=AllocatorPool.objects.select_related("pool__region")),
        ),
        pk=pk,
    )
    form = None
    if request.method == "POST":
        form = AllocatorForm(request.POST)
        if _save(request, form, allocator) is not None:
            return redirect("allocation:allocator-edit", pk=allocator.pk)
    elif has_role(request.user, Role.ADMINISTRATOR):
        form = AllocatorForm(
            initial=AllocatorForm.initial_from(AllocatorSerializer(allocator).data)
        )
    active = Binding.objects.filter(ACTIVE_BINDING, allocator=allocator)
    context = {
        "allocator": allocator,
        "form": form,
        "conditions": rule_summary(allocator),
        "shadowed_by": allocator_shadowed_by(allocator=allocator),
        "bindings": active.select_related("user", "terminal", "vm__pool")[:BINDINGS_SHOWN],
        "binding_count": active.count(),
        "bindings_url": bindings_of(allocator.pk),
    }
    return render(request, "allocation/allocator_detail.html", context)
