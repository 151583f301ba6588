"""Creating, changing and deleting allocator rules, each change audited."""

from django.contrib.auth.models import Group
from django.db import transaction

from allocation.models import Allocator, AllocatorPool, Site
from pools.models import VMPool
from portal.services import audit_record


def allocator_snapshot(allocator: Allocator) -> dict:
    """The rule as plain data, for the audit trail's before / after."""
    return {
        "name": allocator.name,
        "priority": allocator.priority,
        "enabled": allocator.enabled,
        "is_default": allocator.is_default,
        "groups": sorted(allocator.groups.values_list("name", flat=True)),
        "sites": sorted(allocator.sites.values_list("name", flat=True)),
        "terminal_tags": sorted(allocator.terminal_tags or []),
        "ou_subtrees": list(allocator.ou_subtrees or []),
        "binding_policy": allocator.binding_policy,
        "pools": [link.pool.name for link in allocator.pool_links.select_related("pool")],
    }


def allocator_default_conflict(
    *, is_default: bool, allocator: Allocator | None
) -> Allocator | None:
    """The other allocator that is already the default, if this one wants to be."""
    if not is_default:
        return None
    others = Allocator.objects.filter(is_default=True)
    if allocator is not None and allocator.pk:
        others = others.exclude(pk=allocator.pk)
    return others.first()


@transaction.atomic
def allocator_save(
    *,
    allocator: Allocator | None,
    fields: dict,
    groups: list[str] | None = None,
    sites: list[Site] | None = None,
    pools: list[VMPool] | None = None,
    actor: str,
    request_id: str = "",
) -> Allocator:
    """Create (`allocator=None`) or change a rule. `groups` are group names (a group
    not seen yet, e.g. a directory group nobody from has logged in, is created);
    `pools` are in the order they are drawn from. Lists left as `None` are kept."""
    before = allocator_snapshot(allocator) if allocator is not None else None
    allocator = allocator or Allocator()
    for name, value in fields.items():
        setattr(allocator, name, value)
    allocator.save()
    if groups is not None:
        allocator.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])
    if sites is not None:
        allocator.sites.set(sites)
    if pools is not None:
        allocator.pool_links.all().delete()
        AllocatorPool.objects.bulk_create(
            AllocatorPool(allocator=allocator, pool=pool, order=order)
            for order, pool in enumerate(pools)
        )
    audit_record(
        action="allocator.update" if before else "allocator.create",
        obj=allocator,
        actor=actor,
        before=before,
        after=allocator_snapshot(allocator),
        request_id=request_id,
    )
    return allocator


@transaction.atomic
def allocator_delete(*, allocator: Allocator, actor: str, request_id: str = "") -> None:
    """Delete a rule that no active binding depends on."""
    audit_record(
        action="allocator.delete",
        obj=allocator,
        actor=actor,
        before=allocator_snapshot(allocator),
        request_id=request_id,
    )
    allocator.delete()
