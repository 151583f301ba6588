"""Allocator rule matching as pure functions over plain data, so the rules can be
tested (and explained) without a database."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LoginFacts:
    """What is known about a login when allocators are matched."""

    groups: frozenset[str] = frozenset()
    site: str | None = None
    terminal_tags: frozenset[str] = frozenset()
    dn: str = ""


@dataclass(frozen=True)
class Rule:
    """An allocator's conditions; an empty condition is not checked."""

    key: int
    priority: int
    is_default: bool = False
    groups: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    terminal_tags: frozenset[str] = frozenset()
    ou_subtrees: frozenset[str] = frozenset()


def normalize_dn(dn: str) -> str:
    """A DN in one spelling: lower case, no spaces around separators (LDAP compares
    attribute names and, for the usual attributes, values without case)."""
    parts = []
    for rdn in dn.split(","):
        attribute, _, value = rdn.partition("=")
        parts.append(f"{attribute.strip().lower()}={value.strip().lower()}")
    return ",".join(parts) if dn.strip() else ""


def dn_in_subtree(dn: str, base: str) -> bool:
    """Whether `dn` is `base` or lies anywhere below it."""
    dn, base = normalize_dn(dn), normalize_dn(base)
    return bool(dn and base) and (dn == base or dn.endswith("," + base))


def rule_failures(rule: Rule, facts: LoginFacts) -> list[str]:
    """Why a rule does not match the login; an empty list means it matches."""
    if rule.is_default:
        return []
    failures = []
    if rule.groups and not (rule.groups & facts.groups):
        failures.append(f"user is in none of the groups {sorted(rule.groups)}")
    if rule.ou_subtrees and not any(dn_in_subtree(facts.dn, b) for b in rule.ou_subtrees):
        where = facts.dn or "no directory entry"
        failures.append(f"user ({where}) is under none of the OUs {sorted(rule.ou_subtrees)}")
    if rule.sites and facts.site not in rule.sites:
        failures.append(f"terminal site {facts.site!r} is not one of {sorted(rule.sites)}")
    if rule.terminal_tags and not rule.terminal_tags <= facts.terminal_tags:
        missing = sorted(rule.terminal_tags - facts.terminal_tags)
        failures.append(f"terminal lacks the tags {missing}")
    return failures


def first_match(rules: Iterable[Rule], facts: LoginFacts) -> Rule | None:
    """The rule that serves the login: the first matching one by priority, the
    default last."""
    return next((rule for rule in ordered(rules) if not rule_failures(rule, facts)), None)


def _covers(outer: frozenset[str], inner: frozenset[str]) -> bool:
    """An "any of" condition `outer` holds whenever `inner` does: it is unset, or
    `inner` is set and every value it allows, `outer` allows too."""
    return not outer or (bool(inner) and inner <= outer)


def shadows(higher: Rule, lower: Rule) -> bool:
    """Whether `higher`, tried first, matches every login that `lower` matches, so
    `lower` can never serve anyone."""
    if lower.is_default:
        return False
    if higher.is_default:
        return True
    ou_covered = not higher.ou_subtrees or (
        bool(lower.ou_subtrees)
        and all(any(dn_in_subtree(o, h) for h in higher.ou_subtrees) for o in lower.ou_subtrees)
    )
    return (
        _covers(higher.groups, lower.groups)
        and _covers(higher.sites, lower.sites)
        and higher.terminal_tags <= lower.terminal_tags
        and ou_covered
    )


def ordered(rules: Iterable[Rule]) -> list[Rule]:
    """Rules in the order they are tried: by priority, the default last."""
    return sorted(rules, key=lambda r: (r.is_default, r.priority, r.key))
