"""Reads of the allocation app."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from .choices import BindingPolicy
from .matching import LoginFacts, Rule, first_match, ordered, rule_failures, shadows
from .models import Allocator, Binding, DirectoryProfile, Terminal


def login_facts(*, user: AbstractBaseUser, terminal: Terminal | None) -> LoginFacts:
    """What allocator rules are matched against: the user's groups and directory DN
    (as of their last directory login), the terminal's site and tags. During a
    directory login the DN the directory has just given is used as it is, rather
    than read back from the profile the login has just written, and so are the
    groups the login has just mirrored (`directory_groups`, see
    `allocation.directory`)."""
    ldap_user = getattr(user, "ldap_user", None)
    dn = ldap_user.dn if ldap_user is not None else None
    if dn is None:
        dn = DirectoryProfile.objects.filter(user=user).values_list("dn", flat=True).first()
    groups = getattr(user, "directory_groups", None)
    if groups is None:
        groups = frozenset(user.groups.values_list("name", flat=True))
    return LoginFacts(
        groups=groups,
        site=terminal.site.name if terminal and terminal.site_id else None,
        terminal_tags=frozenset(terminal.tags or []) if terminal else frozenset(),
        dn=dn or "",
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


@dataclass(frozen=True)
class RuleVerdict:
    allocator: Allocator
    matched: bool
    serves: bool
    reasons: list[str]


@dataclass(frozen=True)
class Explanation:
    """Why a user (at a terminal) is served by the allocator they are served by."""

    facts: LoginFacts
    verdicts: list[RuleVerdict]
    chosen: Allocator | None
    bindings: list[Binding]


def allocator_explain(*, user: AbstractBaseUser, terminal: Terminal | None = None) -> Explanation:
    """Every enabled allocator in the order they are tried, with whether it matches
    this user (and terminal) and why not; the first that matches serves."""
    rules = allocator_rules()
    facts = login_facts(user=user, terminal=terminal)
    verdicts, chosen = [], None
    for rule in ordered(rule for _, rule in rules.values()):
        failures = rule_failures(rule, facts)
        serves = not failures and chosen is None
        if serves:
            chosen = rules[rule.key][0]
        reasons = failures or (
            ["the default allocator catches every login"]
            if rule.is_default
            else ["all conditions hold"]
        )
        if not failures and not serves:
            reasons = ["matches, but a rule tried earlier serves the login"]
        verdicts.append(RuleVerdict(rules[rule.key][0], not failures, serves, reasons))
    bindings = list(
        Binding.objects.filter(user=user, released_at__isnull=True).select_related(
            "vm__pool", "allocator"
        )
    )
    return Explanation(facts=facts, verdicts=verdicts, chosen=chosen, bindings=bindings)


def allocator_shadowed_by(*, allocator: Allocator) -> list[Allocator]:
    """Enabled allocators tried before this one that match every login it matches:
    while any exists, this allocator serves nobody."""
    rules = allocator_rules()
    if allocator.pk not in rules:
        return []
    mine = rules[allocator.pk][1]
    earlier = ordered(rule for _, rule in rules.values())
    earlier = earlier[: earlier.index(mine)]
    return [rules[rule.key][0] for rule in earlier if shadows(rule, mine)]


@dataclass(frozen=True)
class SearchResults:
    users: list
    terminals: list[Terminal]
    vms: list


def helpdesk_search(*, query: str, limit: int = 25) -> SearchResults:
    """One box for the help desk: user names, seats, terminal serials and MACs, VM
    names and addresses."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    from pools.models import VM

    query = query.strip()
    if not query:
        return SearchResults([], [], [])
    users = (
        get_user_model()
        .objects.filter(
            Q(username__icontains=query)
            | Q(first_name__icontains=query)
            | Q(last_name__icontains=query)
            | Q(bindings__seat__iexact=query, bindings__released_at__isnull=True)
        )
        .distinct()[:limit]
    )
    terminals = Terminal.objects.filter(
        Q(serial__icontains=query) | Q(mac_address__icontains=query) | Q(seat__iexact=query)
    ).select_related("site")[:limit]
    vm_filter = Q(name__icontains=query)
    if _looks_like_address(query):
        vm_filter |= Q(ip_address=query)
    vms = VM.objects.filter(vm_filter).select_related("pool")[:limit]
    return SearchResults(list(users), list(terminals), list(vms))


def _looks_like_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class UserOverview:
    user: object
    bindings: list[Binding]
    sessions: list
    swaps: list
    events: list
    explanation: Explanation


def user_overview(*, user) -> UserOverview:
    """Everything the help desk looks at for one user: bindings with their VMs,
    recent sessions and swaps, recent audit events about their desktops, and which
    allocator serves them."""

    from portal.models import AuditEvent

    from .models import DesktopSession, VMSwap

    bindings = list(
        Binding.objects.filter(user=user, released_at__isnull=True).select_related(
            "vm__pool__region", "allocator", "terminal"
        )
    )
    sessions = list(DesktopSession.objects.filter(user=user).select_related("vm", "terminal")[:10])
    swaps = list(VMSwap.objects.filter(binding__user=user).select_related("old_vm", "new_vm")[:10])
    vm_ids = {str(b.vm_id) for b in bindings} | {str(s.vm_id) for s in sessions}
    events = list(AuditEvent.objects.filter(object_type="pools.vm", object_id__in=vm_ids)[:20])
    last_terminal = sessions[0].terminal if sessions else None
    return UserOverview(
        user=user,
        bindings=bindings,
        sessions=sessions,
        swaps=swaps,
        events=events,
        explanation=allocator_explain(user=user, terminal=last_terminal),
    )
