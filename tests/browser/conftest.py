"""The browser tier: the portal driven like a user would, in Debian's chromium
through Playwright, against the real stack (`scripts/demo.sh`: daphne, a Celery
worker and Celery beat) started once for the whole tier in a throwaway
`DESKOPS_VAR_DIR`, with boots of 1-2 s so pools fill while a test watches.

The demo seeds thin-client users, terminals, pools, staff for the roles below
administrator and the `admin` superuser; the fixture adds an administrator who is
not a superuser. When a test fails, its report carries the tail of the stack's
log and what the browser's console said."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1440, "height": 900}
# Playwright's waits, in milliseconds: generous, the machine may be busy.
ACTION_TIMEOUT_MS = 20_000
NAVIGATION_TIMEOUT_MS = 60_000

ADMIN = ("admin", "deskops-admin")
DEMO_PASSWORD = "deskops-demo"
# Staff accounts by role, each in the group that grants it (the defaults of
# PORTAL_*_GROUPS), with the demo's password. The demo seeds the first two; an
# administrator who is not a superuser is added here.
STAFF = {
    "helpdesk": ("hugo", "deskops-helpdesk"),
    "operator": ("olga", "deskops-operators"),
    "administrator": ("ada", "deskops-administrators"),
}

# Variables of the developer's shell that would point the stack elsewhere.
_FOREIGN_PREFIXES = (
    "DJANGO_",
    "DESKOPS_",
    "DATABASE_",
    "CELERY_",
    "CHANNELS_",
    "AUTH_LDAP_",
    "PORTAL_",
    "PROBE_",
    "ALERT_",
)
# Celery's lines for every periodic job (each second here) that bury the rest.
_ROUTINE = re.compile(
    r"Sending due task|\] received$|Discarding revoked task|succeeded in [\d.]+s|\"GET /static/"
)
_CONSOLE_KEY = pytest.StashKey[list]()
_STACK_KEY = pytest.StashKey["Stack"]()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    """The running demo: its address, its state folder and its log."""

    url: str
    var_dir: Path
    log_path: Path
    process: subprocess.Popen
    env: dict

    def log_tail(self, lines: int = 150) -> str:
        """The end of the log of web, worker and beat, without routine lines."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        kept = [line for line in text.splitlines() if not _ROUTINE.search(line)]
        return "\n".join(kept[-lines:])

    def manage(self, *args: str) -> str:
        """Run a management command against the stack's database."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def connect(self, username: str, terminal: str) -> dict:
        """A thin client's login over HTTP; the answer must hand out a desktop."""
        body = {"username": username, "password": DEMO_PASSWORD, "terminal": terminal}
        deadline = time.monotonic() + 60
        while True:
            response = httpx.post(f"{self.url}/api/thin-client/v1/connect", json=body, timeout=30)
            if response.status_code != 202 or time.monotonic() > deadline:
                break
            # "preparing": no VM was ready; the refill boots one in a second or two.
            time.sleep(1)
        assert response.status_code == 200, f"connect {username} at {terminal}: {response.text}"
        return response.json()

    def heartbeat(self, terminal: str, session: str) -> dict:
        response = httpx.post(
            f"{self.url}/api/thin-client/v1/heartbeat",
            json={"terminal": terminal, "session": session},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()


_CREATE_STAFF = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
for username, group in {accounts!r}:
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_password({password!r})
        user.save()
    user.groups.add(Group.objects.get_or_create(name=group)[0])
print("staff ready")
"""


@pytest.fixture(scope="package")
def chromium() -> str:
    path = shutil.which("chromium")
    require(path is not None, "needs Debian's chromium (apt-get install chromium)")
    return path


@pytest.fixture(scope="package")
def stack(chromium, tmp_path_factory, pytestconfig):
    """`scripts/demo.sh` on a free port, with short boots and fast periodic jobs.
    After the tier's last test: Ctrl-C, and every process it started killed, so
    the rest of the suite does not share the machine with it."""
    var_dir = tmp_path_factory.mktemp("deskops-browser")
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(_FOREIGN_PREFIXES)}
    env.update(
        DESKOPS_VAR_DIR=str(var_dir),
        DESKOPS_BIND="127.0.0.1",
        DESKOPS_PORT=str(port),
        SIM_BOOT_SECONDS_MIN="1",
        SIM_BOOT_SECONDS_MAX="2",
        POOL_REFILL_INTERVAL="1",
        DASHBOARD_PUSH_INTERVAL="1",
        HOST_SYNC_INTERVAL="1",
        HOST_FAILURE_THRESHOLD="3",
        RECONCILE_INTERVAL="2",
        ALERT_EVALUATE_INTERVAL="2",
        ALERT_VM_NO_IP_SECONDS="2",
        MAINTENANCE_ADVANCE_INTERVAL="1",
        MAINTENANCE_SIM_SECONDS="1",
    )
    log_path = var_dir / "demo.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        ["scripts/demo.sh"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    running = Stack(
        url=f"http://127.0.0.1:{port}", var_dir=var_dir, log_path=log_path, process=process, env=env
    )
    pytestconfig.stash[_STACK_KEY] = running
    try:
        _wait_until_serving(running)
        accounts = list(STAFF.values())
        running.manage(
            "shell", "-c", _CREATE_STAFF.format(accounts=accounts, password=DEMO_PASSWORD)
        )
        yield running
    finally:
        _stop(process)
        log.close()


def _wait_until_serving(stack: Stack, timeout: float = 300) -> None:
    # The first start may install packages (scripts/bootstrap.sh); later ones
    # take some 20 s to migrate, seed and pre-warm the pools.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            pytest.fail(f"scripts/demo.sh exited early:\n{stack.log_tail()}", pytrace=False)
        try:
            if httpx.get(f"{stack.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the portal did not answer /healthz in {timeout:.0f} s:\n{stack.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    # Whatever honcho left behind (it runs in a session of its own).
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture(scope="package")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def console_errors(request) -> list[str]:
    """Every console error and uncaught page error of the test's browser context."""
    found: list[str] = []
    request.node.stash[_CONSOLE_KEY] = found
    return found


@pytest.fixture
def context(browser, stack, console_errors):
    """A fresh browser profile (no cookies) at the desktop viewport."""
    ctx = browser.new_context(base_url=stack.url, viewport=VIEWPORT)
    ctx.set_default_timeout(ACTION_TIMEOUT_MS)
    ctx.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)

    def on_console(message):
        if message.type == "error":
            where = message.page.url if message.page else "?"
            source = message.location.get("url") or "?"
            console_errors.append(f"console error on {where}: {message.text} [{source}]")

    def on_page_error(error):
        where = error.page.url if error.page else "?"
        console_errors.append(f"page error on {where}: {error.error}")

    ctx.on("console", on_console)
    ctx.on("weberror", on_page_error)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    return context.new_page()


def log_in(page, username: str, password: str) -> None:
    """Sign in through the staff login form and land on a portal page."""
    from playwright.sync_api import expect

    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page, f"{username} could not log in").not_to_have_url(re.compile(r"/login/"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


@pytest.fixture
def login():
    """log in as a role ("helpdesk", …) or as the demo's superuser ("admin")."""

    def sign_in(page, who: str) -> str:
        if who == "admin":
            username, password = ADMIN
        else:
            username, password = STAFF[who][0], DEMO_PASSWORD
        log_in(page, username, password)
        return username

    return sign_in


def reload_until(page, check, *, timeout: float, what: str) -> None:
    """Reload the page until `check()` holds: for state that a page shows as of
    its last load (lists, detail pages), not live ones."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(1)
        page.reload()


@pytest.fixture(scope="package")
def history(browser, stack):
    """A portal with a past, so every kind of page has something to show: a VIP
    agent logged in (a desktop bound to him), an operator failed a host of `east`
    (an incident, recovered, the host back in service), made a VM lose its address
    (an open alert) and started the demo's maintenance task (a run)."""
    from playwright.sync_api import expect

    ctx = browser.new_context(base_url=stack.url, viewport=VIEWPORT)
    ctx.set_default_timeout(ACTION_TIMEOUT_MS)
    ctx.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    page = ctx.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    stack.connect("frank", "TC-SH-005")
    try:
        log_in(page, STAFF["operator"][0], DEMO_PASSWORD)
        host = "east-cmp-01"

        page.goto("/faults/")
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=host, exact=True))
        row.get_by_role("button", name="Fail host").click()
        expect(page.get_by_text(f"{host} is down")).to_be_visible()
        page.get_by_role("button", name="Lose the IP address of one running VM").first.click()
        expect(page.get_by_text("lost its IP address")).to_be_visible()

        page.goto("/incidents/")
        incident = page.get_by_role("row").filter(has_text=f"{host} failed")
        reload_until(
            page,
            lambda: incident.count() == 1 and "Recovered" in incident.inner_text(),
            timeout=120,
            what=f"the incident of {host} to be recovered",
        )

        page.goto("/faults/")
        row.get_by_role("button", name="Bring up").click()
        row.get_by_role("button", name="Return to service").click()
        expect(row.get_by_role("button", name="Fail host")).to_be_visible()

        page.goto("/maintenance/")
        page.get_by_role("link", name="Nightly agent patch").first.click()
        page.get_by_role("button", name="Start now").click()
        started = page.get_by_text(re.compile(r"Started run #\d+ of Nightly agent patch"))
        expect(started).to_be_visible()

        page.goto("/alerts/")
        lost_address = page.get_by_role("row").filter(has_text="has had no IP address")
        reload_until(
            page,
            lambda: lost_address.count() > 0,
            timeout=120,
            what="the alert about a VM without an IP address",
        )
    finally:
        ctx.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and item.get_closest_marker("browser"):
        errors = item.stash.get(_CONSOLE_KEY, [])
        if errors:
            report.sections.append(("browser console", "\n".join(errors)))
        stack = item.config.stash.get(_STACK_KEY, None)
        if stack is not None:
            report.sections.append(
                ("DeskOps log (last 150 lines but routine Celery ones)", stack.log_tail())
            )
    return report
