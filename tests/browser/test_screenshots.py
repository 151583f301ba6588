"""Full-page pictures of the main pages at a desktop viewport (1440x900), for the
README: docs/screenshots/<name>.png, rewritten at every run of the tier."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ROOT

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "docs" / "screenshots"


def _shoot(page, name: str) -> None:
    # Wait for web fonts and for scripts drawing after the load event.
    page.evaluate("document.fonts.ready")
    page.wait_for_timeout(500)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000, f"{path} looks empty"


def _open(page, url: str, heading: str, failures: list[str]) -> bool:
    response = page.goto(url)
    status = response.status if response else 0
    if not 200 <= status < 400:
        failures.append(f"{url}: HTTP {status}")
        return False
    expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    return True


def test_screenshots_of_the_main_pages(page, stack, login, history):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    connected = stack.connect("erin", "TC-SH-003")
    login(page, "admin")
    # A page that cannot be shown is reported at the end; the others are taken.
    failures: list[str] = []

    if _open(page, "/", "Dashboard", failures):
        expect(page.get_by_text(re.compile(r"^live\b"))).to_be_visible(timeout=30_000)
        _shoot(page, "dashboard")

    if _open(page, "/pools/", "Pools", failures):
        _shoot(page, "pools")
        page.get_by_role("link", name="Agents (east)", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Agents (east)")
        _shoot(page, "pool")

    if _open(page, "/hosts/", "Hosts", failures):
        _shoot(page, "hosts")

    if _open(page, "/vms/", "VMs", failures):
        _shoot(page, "vms")

    page.get_by_role("textbox", name="Find", exact=True).fill("erin")
    page.get_by_role("textbox", name="Find", exact=True).press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("erin")
    expect(page.get_by_role("link", name=connected["desktop"]["name"])).to_be_visible()
    _shoot(page, "helpdesk-user")

    if _open(page, "/alerts/", "Alerts", failures):
        _shoot(page, "alerts")

    if _open(page, "/audit/?per_page=25", "Audit trail", failures):
        _shoot(page, "audit")

    if _open(page, "/explain/?user=alice&terminal=TC-HF-001", "Explain", failures):
        expect(page.get_by_role("heading", name=re.compile(r"alice is served by"))).to_be_visible()
        _shoot(page, "explain")

    assert not failures, "pages not shot:\n" + "\n".join(failures)
