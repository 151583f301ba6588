"""Reads of the allocation app."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from .choices import BindingPolicy
from .matching import LoginFacts, Rule, first_match, ordered, rule_failures, shadows
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
