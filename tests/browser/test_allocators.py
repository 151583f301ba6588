"""An administrator adds an allocator for the Shanghai agents and checks with
Explain that it is the rule that now serves them there, and only there."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

NAME = "Shanghai agents"


def _verdict(page, allocator: str):
    rules = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Verdict"))
    return rules.get_by_role("row").filter(has=page.get_by_role("cell", name=allocator, exact=True))


def test_new_allocator_serves_the_logins_it_matches(page, login):
    login(page, "administrator")
    page.goto("/allocators/")
    page.get_by_role("link", name="New allocator").click()
    expect(page.get_by_role("heading", name="New allocator")).to_be_visible()

    page.get_by_label("Name").fill(NAME)
    page.get_by_label("Priority").fill("25")
    page.get_by_label("Groups").fill("agents")
    page.get_by_label("Sites").select_option("shanghai")
    page.get_by_label("Binding policy").select_option("seat")
    page.get_by_label("Pools").fill("agents-west")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text(f"Saved {NAME}.")).to_be_visible()
    expect(page.get_by_text("shadowed by"), "the new rule must serve someone").to_have_count(0)
    page.goto("/allocators/")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=NAME, exact=True))
    expect(row).to_contain_text("agents-west")
    expect(row).to_contain_text("shanghai")

    nav = page.get_by_role("navigation")
    nav.get_by_text("Desktops").hover()
    nav.get_by_role("link", name="Explain", exact=True).click()
    page.get_by_label("User").fill("alice")
    page.get_by_label("Terminal").fill("TC-SH-002")
    page.get_by_role("button", name="Explain").click()
    expect(page.get_by_role("heading", name=re.compile(r"alice is served by"))).to_contain_text(
        NAME
    )
    expect(page.get_by_text("pools: agents-west")).to_be_visible()
    expect(_verdict(page, NAME)).to_contain_text("serves")

    # At a Hefei seat the site condition does not hold: the Hefei rule serves.
    page.get_by_label("Terminal").fill("TC-HF-002")
    page.get_by_role("button", name="Explain").click()
    expect(page.get_by_role("heading", name=re.compile(r"alice is served by"))).to_contain_text(
        "Hefei seats"
    )
    expect(_verdict(page, NAME)).to_contain_text("no match")
    expect(_verdict(page, NAME)).to_contain_text("hefei")
