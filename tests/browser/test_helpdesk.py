"""A help-desk agent finds a user who is on a desktop, swaps the desktop for a
fresh VM (giving a reason and confirming), and sees the new VM on the user's
page; the user's thin client is told to reconnect."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import reload_until

pytestmark = pytest.mark.browser


def test_helpdesk_swaps_a_users_desktop(page, stack, login):
    # grace is a supervisor: her allocator binds the desktop to her, by user.
    terminal = "TC-SH-004"
    connected = stack.connect("grace", terminal)
    old_vm = connected["desktop"]["name"]

    login(page, "helpdesk")
    page.get_by_role("textbox", name="Find", exact=True).fill("grace")
    page.get_by_role("textbox", name="Find", exact=True).press("Enter")
    if not re.search(r"/helpdesk/users/\d+/", page.url):
        page.get_by_role("link", name="grace", exact=True).first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^grace\b"))).to_be_visible()
    desktops = page.locator("section").filter(has=page.get_by_role("heading", name="Desktops"))
    expect(desktops.get_by_role("link", name=old_vm, exact=True)).to_be_visible()

    desktops.get_by_role("link", name="Swap", exact=True).click()
    expect(page.get_by_text(old_vm).first).to_be_visible()
    reason = "Ticket HD-4711: desktop frozen"
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Confirm").click()

    expect(page, "the swap returns to the user's page").to_have_url(
        re.compile(r"/helpdesk/users/\d+/$")
    )
    # Done at once when the pool has a ready VM, else as soon as one has booted.
    expect(
        page.get_by_text(re.compile(rf"Swapped {re.escape(old_vm)} for |completes as soon as"))
    ).to_be_visible()
    vm_link = desktops.get_by_role("link", name=re.compile(r"-[0-9a-f]{8}$"))
    reload_until(
        page,
        lambda: vm_link.count() == 1 and vm_link.inner_text().strip() != old_vm,
        timeout=60,
        what="the new VM on grace's page",
    )
    new_vm = vm_link.inner_text().strip()
    assert new_vm.startswith("supervisors-west-"), f"{new_vm} is not from grace's pool"
    swaps = page.locator("section").filter(has=page.get_by_role("heading", name="Swaps"))
    swap_row = swaps.get_by_role("row").filter(has_text=reason)
    expect(swap_row).to_contain_text(old_vm)
    expect(swap_row).to_contain_text(new_vm)
    expect(swap_row).to_contain_text("hugo")

    assert stack.heartbeat(terminal, connected["session"])["action"] == "reconnect"
    again = stack.connect("grace", terminal)
    assert again["desktop"]["name"] == new_vm
