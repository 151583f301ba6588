"""Reads of the allocation app."""

from django.contrib.auth.models import AbstractBaseUser

from .choices import BindingPolicy
from .matching import LoginFacts, Rule, first_match
from .models import Allocator, Binding, DirectoryProfile, Terminal


def login_facts(*, user: AbstractBaseUser, terminal: Terminal | None) -> LoginFacts:
    """What allocator rules are matched against: the user's groups and directory DN
    (as of their last directory login), the terminal's site and tags."""
    profile = DirectoryProfile.objects.filter(user=user).first()
    return LoginFacts(
        groups=frozenset(user.groups.values_list("name", flat=True)),
        site=terminal.site.name if terminal and terminal.site_id else None,
        terminal_tags=frozenset(terminal.tags or []) if terminal else frozenset(),
        dn=profile.dn if profile else "",
    )


def allocator_rules() -> dict[int, tuple[Allocator, Rule]]:
    """Every enabled allocator with its conditions as a `Rule`, keyed by id."""
    allocators = Allocator.objects.filter(enabled=True).prefetch_related("groups", "sites")
    return {
        a.pk: (
            a,
            Rule(
                key=a.pk,
                priority=a.priority,
                is_default=a.is_default,
                groups=frozenset(g.name for g in a.groups.all()),
                sites=frozenset(s.name for s in a.sites.all()),
                terminal_tags=frozenset(a.terminal_tags or []),
                ou_subtrees=frozenset(a.ou_subtrees or []),
            ),
        )
        for a in allocators
    }


def allocator_for(*, user: AbstractBaseUser, terminal: Terminal) -> Allocator | None:
    """The allocator that serves this user at this terminal, or `None`."""
    rules = allocator_rules()
    match = first_match(
        (rule for _, rule in rules.values()), login_facts(user=user, terminal=terminal)
    )
    return rules[match.key][0] if match else None


def effective_policy(*, allocator: Allocator, terminal: Terminal) -> str:
    """The binding policy that applies at this terminal: a seat binding needs a
    seat, so at a terminal without one the desktop floats instead."""
    if allocator.binding_policy == BindingPolicy.SEAT and not terminal.seat:
        return BindingPolicy.FLOATING
    return allocator.binding_policy


def binding_active_for(
    *, allocator: Allocator, user: AbstractBaseUser, terminal: Terminal
) -> Binding | None:
    """The active binding that this login would reuse under the allocator's policy."""
    policy = effective_policy(allocator=allocator, terminal=terminal)
    bindings = Binding.objects.select_related("vm__pool__region").filter(
        allocator=allocator, released_at__isnull=True, kind=policy
    )
    if policy == BindingPolicy.SEAT:
        bindings = bindings.filter(seat=terminal.seat)
    elif policy == BindingPolicy.TERMINAL:
        bindings = bindings.filter(terminal=terminal)
    else:
        bindings = bindings.filter(user=user)
    return bindings.first()
