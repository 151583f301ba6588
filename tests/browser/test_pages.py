"""Every page an administrator reaches from the navigation, and the detail page
of one object of each kind linked from those pages, loads without an HTTP error
and without a console error or an uncaught script error."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# List pages that the navigation may not link to yet.
KNOWN_PAGES = ["/vms/", "/bindings/", "/regions/", "/maintenance/runs/", "/audit/"]
# Searches that list users, terminals and VMs, to reach their pages too.
SEARCHES = ["/helpdesk/?q=a", "/helpdesk/?q=TC-SH", "/terminals/?q=TC"]
# Pages whose own links are not followed (their own menus: every model, every
# endpoint).
NOT_CRAWLED = ("/admin/", "/api/")
# Kinds of detail page the demo, after its history, must offer.
EXPECTED_KINDS = [
    "/pools/<id>/",
    "/vms/<id>/",
    "/hosts/<id>/",
    "/allocators/<id>/",
    "/helpdesk/users/<id>/",
    "/bindings/<id>/",
    "/terminals/<id>/",
    "/regions/<id>/",
    "/incidents/<id>/",
    "/alerts/<id>/",
    "/maintenance/tasks/<id>/",
    "/maintenance/runs/<id>/",
    "/audit/<id>/",
]


def _kind(path: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/<id>", path)


def test_every_page_loads_without_errors(page, login, history, console_errors):
    login(page, "admin")
    page.goto("/")
    nav = page.get_by_role("navigation").get_by_role("link", include_hidden=True)
    nav_pages = [href for href in (link.get_attribute("href") for link in nav.all()) if href]
    assert "/pools/" in nav_pages and "/helpdesk/" in nav_pages, nav_pages

    failures: list[str] = []

    def visit(url: str) -> bool:
        """Open a page; record what went wrong; False when it is not a page to read
        (an error, or a download such as a CSV export)."""
        answer = page.request.get(url)
        if not answer.ok:
            failures.append(f"{url}: HTTP {answer.status}")
            return False
        if not answer.headers.get("content-type", "").startswith("text/html"):
            return False
        errors_before = len(console_errors)
        response = page.goto(url)
        status = response.status if response else 0
        if not 200 <= status < 400:
            failures.append(f"{url}: HTTP {status} in the browser")
            return False
        expect(page.locator("body")).not_to_be_empty()
        # Scripts that run after the load event (charts, live updates) get a moment.
        page.wait_for_timeout(300)
        failures.extend(console_errors[errors_before:])
        return True

    start_pages = list(dict.fromkeys(nav_pages + KNOWN_PAGES + SEARCHES))
    kinds_seen = {_kind(urlsplit(url).path) for url in start_pages}
    found: dict[str, str] = {}
    for url in start_pages:
        if not visit(url) or url.startswith(NOT_CRAWLED):
            continue
        for link in page.get_by_role("main").get_by_role("link").all():
            href = link.get_attribute("href") or ""
            target = urlsplit(href)
            if target.scheme or target.netloc or not target.path.startswith("/"):
                continue
            kind = _kind(target.path)
            if kind in kinds_seen or target.path.startswith(NOT_CRAWLED):
                continue
            kinds_seen.add(kind)
            found[kind] = href
    for url in found.values():
        visit(url)

    print(f"{len(start_pages)} pages from the navigation, {len(found)} linked from them:")
    print("\n".join(sorted(found)))
    missing = [kind for kind in EXPECTED_KINDS if kind not in found]
    assert not failures, "pages with errors:\n" + "\n".join(failures)
    assert not missing, f"no link to these kinds of page: {missing}; found {sorted(found)}"
