"""An operator raises a pool's target on the pool page and watches the live
dashboard, open in another tab, fill the pool without being reloaded."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

POOL_LABEL = "VIP agents (east)"


def _column(table, header: str) -> int:
    headers = [text.strip() for text in table.get_by_role("columnheader").all_inner_texts()]
    assert header in headers, f"no column {header!r} in {headers}"
    return headers.index(header)


def test_raised_target_fills_on_the_live_dashboard(context, page, login, console_errors):
    login(page, "operator")
    sockets = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto("/")
    expect(page.get_by_role("heading", name=re.compile(r"^Dashboard"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^live\b")), "the dashboard's websocket").to_be_visible(
        timeout=30_000
    )
    assert any(url.endswith("/ws/dashboard/") for url in sockets), sockets
    # Set by this test on the loaded page: still there later proves no reload.
    page.evaluate("window.deskopsTestMarker = 'not reloaded'")

    pools = page.get_by_role("table").filter(
        has=page.get_by_role("columnheader", name="Ready / target")
    )
    ready_column = _column(pools, "Ready / target")
    row = pools.get_by_role("row").filter(has=page.get_by_role("cell", name=POOL_LABEL, exact=True))
    ready_cell = row.get_by_role("cell").nth(ready_column)
    expect(ready_cell).to_have_text(re.compile(r"^\d+ / \d+$"))

    pool_page = context.new_page()
    pool_page.goto("/pools/")
    pool_page.get_by_role("link", name=POOL_LABEL, exact=True).click()
    expect(pool_page.get_by_role("heading", name=f"Pool {POOL_LABEL}")).to_be_visible()
    settings = pool_page.locator("section").filter(
        has=pool_page.get_by_role("heading", name="Settings")
    )
    target_field = settings.get_by_label("Target ready")
    old_target = int(target_field.input_value())
    new_target = old_target + 2
    target_field.fill(str(new_target))
    settings.get_by_role("button", name="Save").click()
    expect(pool_page.get_by_text(re.compile(rf"of a target of {new_target}\b"))).to_be_visible()
    pool_page.close()

    expect(ready_cell, f"{POOL_LABEL} filling to {new_target} on the dashboard").to_have_text(
        f"{new_target} / {new_target}", timeout=120_000
    )
    assert page.evaluate("window.deskopsTestMarker") == "not reloaded"
    expect(page.get_by_text(re.compile(r"^live\b"))).to_be_visible()
    assert console_errors == []
