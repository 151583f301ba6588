"""Allocator rule matching, checked against a plain reference implementation on
generated rules and logins (hypothesis), plus the cases people ask about."""

from hypothesis import given, settings
from hypothesis import strategies as st

from allocation.matching import (
    LoginFacts,
    Rule,
    dn_in_subtree,
    first_match,
    normalize_dn,
    rule_failures,
    shadows,
)

GROUPS = ["agents", "vip-agents", "supervisors", "it-staff"]
SITES = ["shanghai", "hefei", "nantong"]
TAGS = ["floor-1", "floor-2", "quiet", "training"]
OUS = [
    "ou=people,dc=example,dc=com",
    "ou=sites,ou=people,dc=example,dc=com",
    "ou=hefei,ou=sites,ou=people,dc=example,dc=com",
    "ou=sales,ou=hefei,ou=sites,ou=people,dc=example,dc=com",
    "ou=shanghai,ou=sites,ou=people,dc=example,dc=com",
]


def subset(values):
    return st.frozensets(st.sampled_from(values), max_size=len(values))


rules = st.builds(
    Rule,
    key=st.integers(0, 10_000),
    priority=st.integers(0, 50),
    is_default=st.booleans(),
    groups=subset(GROUPS),
    sites=subset(SITES),
    terminal_tags=subset(TAGS),
    ou_subtrees=subset(OUS),
)
facts = st.builds(
    LoginFacts,
    groups=subset(GROUPS),
    site=st.none() | st.sampled_from(SITES),
    terminal_tags=subset(TAGS),
    dn=st.just("") | st.sampled_from(OUS).map(lambda ou: f"uid=someone,{ou}"),
)


def reference_matches(rule: Rule, login: LoginFacts) -> bool:
    """The rule as a person would read it out loud."""
    if rule.is_default:
        return True
    if rule.groups and not any(g in login.groups for g in rule.groups):
        return False
    if rule.sites and login.site not in rule.sites:
        return False
    if any(tag not in login.terminal_tags for tag in rule.terminal_tags):
        return False
    if rule.ou_subtrees:
        dn = login.dn.lower()
        if not dn or not any(dn == ou or dn.endswith("," + ou) for ou in rule.ou_subtrees):
            return False
    return True


def reference_first(all_rules: list[Rule], login: LoginFacts) -> Rule | None:
    tried = [r for r in all_rules if not r.is_default] + [r for r in all_rules if r.is_default]
    tried.sort(key=lambda r: (r.is_default, r.priority, r.key))
    for rule in tried:
        if reference_matches(rule, login):
            return rule
    return None


@settings(max_examples=400)
@given(rules, facts)
def test_rule_failures_agree_with_the_reference(rule, login):
    assert (rule_failures(rule, login) == []) == reference_matches(rule, login)


@settings(max_examples=300)
@given(st.lists(rules, max_size=8, unique_by=lambda r: r.key), facts)
def test_first_match_agrees_with_the_reference(all_rules, login):
    assert first_match(all_rules, login) == reference_first(all_rules, login)


@settings(max_examples=400)
@given(rules, rules, facts)
def test_a_shadowing_rule_matches_whatever_the_shadowed_one_matches(higher, lower, login):
    if shadows(higher, lower) and reference_matches(lower, login):
        assert reference_matches(higher, login)


def test_nested_ous_match_by_subtree_in_any_spelling():
    dn = "uid=li.wei,OU=Sales, ou=Hefei,ou=sites,ou=people,dc=example,dc=com"
    assert dn_in_subtree(dn, "ou=hefei,ou=sites,ou=people,dc=example,dc=com")
    assert dn_in_subtree(dn, "OU=People,DC=example,DC=com")
    assert not dn_in_subtree(dn, "ou=shanghai,ou=sites,ou=people,dc=example,dc=com")
    # A suffix of the text that is not a whole RDN is not a subtree.
    assert not dn_in_subtree("uid=x,ou=xhefei,dc=example,dc=com", "ou=hefei,dc=example,dc=com")
    assert normalize_dn(" OU=A , dc=B ") == "ou=a,dc=b"


def test_the_reasons_say_what_failed():
    rule = Rule(key=1, priority=1, groups=frozenset({"vip-agents"}), sites=frozenset({"hefei"}))
    reasons = rule_failures(rule, LoginFacts(groups=frozenset({"agents"}), site="shanghai"))
    assert reasons == [
        "user is in none of the groups ['vip-agents']",
        "terminal site 'shanghai' is not one of ['hefei']",
    ]
