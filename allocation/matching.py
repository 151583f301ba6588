"""Allocator rule matching as pure functions over plain data, so the rules can be
tested (and explained) without a database."""

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoginFacts:
    """What is known about a login when allocators are matched."""

    groups: frozenset[str] = frozenset()
    site: str | None = None
    terminal_tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rule:
    """An allocator's conditions; an empty condition is not checked."""

    key: int
    priority: int
    is_default: bool = False
    groups: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    terminal_tags: frozenset[str] = frozenset()
    reasons: list[str] = field(default_factory=list, compare=False)


def rule_failures(rule: Rule, facts: LoginFacts) -> list[str]:
    """Why a rule does not match the login; an empty list means it matches."""
    if rule.is_default:
        return []
    failures = []
    if rule.groups and not (rule.groups & facts.groups):
        failures.append(f"user is in none of the groups {sorted(rule.groups)}")
    if rule.sites and facts.site not in rule.sites:
        failures.append(f"terminal site {facts.site!r} is not one of {sorted(rule.sites)}")
    if rule.terminal_tags and not rule.terminal_tags <= facts.terminal_tags:
        missing = sorted(rule.terminal_tags - facts.terminal_tags)
        failures.append(f"terminal lacks the tags {missing}")
    return failures


def first_match(rules: Iterable[Rule], facts: LoginFacts) -> Rule | None:
    """The rule that serves the login: the first matching one by priority, the
    default last."""
    ordered = sorted(rules, key=lambda r: (r.is_default, r.priority, r.key))
    for rule in ordered:
        if not rule_failures(rule, facts):
            return rule
    return None
