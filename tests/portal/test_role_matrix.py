"""The role matrix: for every staff page and every ops API endpoint, the role
needed to read it and the role needed to change something through it, checked
with real requests for a user of each role (and one with no role at all).

The table below is the specification. `test_every_route_is_in_the_matrix` fails
when a route is added without a line here, or when a view's own declaration
disagrees with its line."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from portal.roles import Role
from tests.factories import UserFactory

V, H, OP, A = Role.VIEWER, Role.HELPDESK, Role.OPERATOR, Role.ADMINISTRATOR

# route name: (role to read, role to change)
PAGES = {
    "monitoring:dashboard": (V, V),
    "monitoring:dashboard-data": (V, V),
    "monitoring:probe": (V, OP),
    "monitoring:probe-run": (OP, OP),
    "monitoring:reports": (V, V),
    "monitoring:report-csv": (V, V),
    "monitoring:incident-list": (V, OP),
    "monitoring:incident-detail": (V, OP),
    "monitoring:incident-close": (OP, OP),
    "monitoring:host-return": (OP, OP),
    "monitoring:faults": (OP, OP),
    "monitoring:fault-host": (OP, OP),
    "monitoring:fault-drop-address": (OP, OP),
    "monitoring:alert-list": (V, OP),
    "monitoring:alert-detail": (V, OP),
    "monitoring:alert-acknowledge": (OP, OP),
    "monitoring:alert-close": (OP, OP),
    "allocation:explain": (V, V),
    "allocation:helpdesk": (H, H),
    "allocation:helpdesk-user": (H, H),
    "allocation:helpdesk-action": (H, H),
    "allocation:helpdesk-console": (H, H),
    "allocation:allocator-list": (V, A),
    "allocation:allocator-create": (V, A),
    "allocation:allocator-edit": (V, A),
    "allocation:terminal-list": (V, OP),
    "allocation:terminal-import": (OP, OP),
    "allocation:terminal-enroll": (OP, OP),
    "allocation:terminal-detail": (V, OP),
    "allocation:binding-list": (V, V),
    "allocation:binding-detail": (V, V),
    "pools:pool-list": (V, OP),
    "pools:pool-detail": (V, OP),
    "pools:pool-resume": (OP, OP),
    "pools:schedule-add": (OP, OP),
    "pools:schedule-delete": (OP, OP),
    "pools:prewarm": (V, OP),
    "pools:prewarm-apply": (OP, OP),
    "pools:shift-edit": (OP, OP),
    "pools:shift-delete": (OP, OP),
    "pools:vm-list": (V, V),
    "pools:vm-detail": (V, OP),
    "pools:region-list": (V, V),
    "pools:host-list": (V, OP),
    "pools:host-edit": (V, OP),
    "pools:host-clear": (OP, OP),
    "simulation:host-scheduler": (V, V),
    "pools:scheduling": (V, A),
    "pools:region-edit": (V, A),
    "pools:featureclass-list": (V, A),
    "pools:featureclass-edit": (V, A),
    "pools:featureclass-apply": (A, A),
    "maintenance:task-list": (V, OP),
    "maintenance:task-create": (OP, OP),
    "maintenance:task-detail": (V, OP),
    "maintenance:task-edit": (OP, OP),
    "maintenance:task-start": (OP, OP),
    "maintenance:run-list": (V, OP),
    "maintenance:run-detail": (V, OP),
    "maintenance:run-progress": (V, V),
    "maintenance:run-cancel": (OP, OP),
    "maintenance:run-retry": (OP, OP),
    "maintenance:run-rollback": (OP, OP),
    "maintenance:credential-list": (A, A),
    "maintenance:credential-create": (A, A),
    "maintenance:credential-edit": (A, A),
    "simulation:placement": (V, OP),
    "portal:audit-list": (OP, OP),
    "portal:audit-detail": (OP, OP),
}

API = {
    "api-root": (V, A),
    "schema": (V, A),
    "api-docs": (V, A),
    "explain": (V, A),
    "allocator-list": (V, A),
    "allocator-detail": (V, A),
    "terminal-list": (V, OP),
    "terminal-detail": (V, OP),
    "terminal-import-csv": (V, OP),
    "terminal-enroll": (V, OP),
    "maintenance-task-list": (V, OP),
    "maintenance-task-detail": (V, OP),
    "maintenance-task-start": (V, OP),
    "maintenance-run-list": (V, OP),
    "maintenance-run-detail": (V, OP),
    "maintenance-run-cancel": (V, OP),
    "maintenance-run-items": (V, OP),
    "maintenance-run-logs": (V, OP),
    "maintenance-run-retry": (V, OP),
    "maintenance-run-rollback": (V, OP),
    "guest-credential-list": (A, A),
    "guest-credential-detail": (A, A),
    "alert-list": (V, OP),
    "alert-detail": (V, OP),
    "alert-acknowledge": (V, OP),
    "alert-close": (V, OP),
    "incident-list": (V, OP),
    "incident-detail": (V, OP),
    "incident-close": (V, OP),
    "region-list": (V, A),
    "region-detail": (V, A),
    "host-list": (V, A),
    "host-detail": (V, A),
    "pool-list": (V, A),
    "pool-detail": (V, A),
    "vm-list": (V, A),
    "vm-detail": (V, A),
    "feature-class-list": (V, A),
    "feature-class-detail": (V, A),
    "binding-list": (V, A),
    "binding-detail": (V, A),
    "audit-event-list": (OP, A),
    "audit-event-detail": (OP, A),
}

# Routes open to everyone or guarded by something other than a role: the login
# itself, the probes a load balancer calls, the thin clients' API (their own
# credentials on every call) and the Django admin (administrators; tested below).
PUBLIC = {"login", "logout", "monitoring:liveness", "monitoring:readiness", "monitoring:metrics"}
PUBLIC_PREFIXES = ("admin:", "thin-client-v1:")

ROLES = [None, V, H, OP, A]


def _routes(patterns=None, namespace=""):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _routes(entry.url_patterns, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            name = f"{namespace}:{entry.name}" if namespace else entry.name
            yield name, entry


def _kwargs(pattern: URLPattern) -> dict:
    """Arguments that fill the route: numbers for ids, a word for names."""
    regex = pattern.pattern.regex
    values = {}
    for key in regex.groupindex:
        if key == "format":
            continue
        values[key] = "x" if key in ("name", "session_id") else 1
    return values


def _url(name: str) -> str:
    routes = dict(_routes())
    pattern = routes[name]
    kwargs = {k: v for k, v in _kwargs(pattern).items()}
    return reverse(name, kwargs=kwargs)


def test_every_route_is_in_the_matrix():
    unlisted, mismatched = [], []
    for name, pattern in _routes():
        if name in PUBLIC or name.startswith(PUBLIC_PREFIXES):
            continue
        if "format" in pattern.pattern.regex.groupindex:
            continue  # the same view, with a format suffix
        if name not in PAGES and name not in API:
            unlisted.append(name)
            continue
        declared = getattr(pattern.callback, "read_role", None)
        if declared is not None and name in PAGES:
            if (declared, pattern.callback.write_role) != PAGES[name]:
                mismatched.append(name)
        view_class = getattr(pattern.callback, "cls", None)
        if view_class is not None and name in API and hasattr(view_class, "read_role"):
            write = getattr(view_class, "write_role", A)
            if (view_class.read_role, write) != API[name]:
                mismatched.append(name)
    assert not unlisted, f"routes with no line in the role matrix: {unlisted}"
    assert not mismatched, f"views whose declared roles differ from the matrix: {mismatched}"
    known = {name for name, _ in _routes()}
    assert not (set(PAGES) | set(API)) - known, "matrix lines for routes that do not exist"


@pytest.fixture
def users(db):
    made = {None: UserFactory(username="no-role")}
    for role in (V, H, OP, A):
        made[role] = UserFactory(username=f"as-{role.name.lower()}", role=role.name.lower())
    return made


def _check(send, users, needed, what):
    """Send the request as each role. A role below `needed` must get 403; the
    others must not. A route that does not take the method at all answers 405 to
    everyone, administrators included, and that is a refusal too."""
    unsupported = None
    for role in reversed(ROLES):  # the administrator first
        status = send(users[role])
        if role == A and status == 405:
            unsupported = 405
        if unsupported:
            assert status in (403, 405), f"{what}: {role} got {status}"
        elif role is not None and role >= needed:
            assert status != 403, f"{what}: {role} should be allowed, got 403"
        else:
            assert status == 403, f"{what}: {role} should get 403, got {status}"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_enforce_roles(name, users, client):
    read, write = PAGES[name]
    url = _url(name)
    anonymous = client.get(url)
    assert anonymous.status_code in (302, 403), f"{url}: anonymous got {anonymous.status_code}"

    def as_user(method):
        def send(user):
            client.force_login(user)
            return getattr(client, method)(url).status_code

        return send

    _check(as_user("get"), users, read, f"GET {url}")
    _check(as_user("post"), users, write, f"POST {url}")


@pytest.mark.parametrize("name", sorted(API))
def test_api_endpoints_enforce_roles(name, users):
    read, write = API[name]
    url = _url(name)
    api = APIClient()
    assert api.get(url).status_code in (401, 403), f"{url}: anonymous was let in"

    def as_user(method):
        def send(user):
            api.force_authenticate(user)
            if method == "get":
                return api.get(url).status_code
            return api.post(url, {}, format="json").status_code

        return send

    _check(as_user("get"), users, read, f"GET {url}")
    _check(as_user("post"), users, write, f"POST {url}")


def test_the_django_admin_is_for_administrators_only(users, client):
    for role, user in users.items():
        client.force_login(user)
        response = client.get("/admin/")
        if role == A:
            assert response.status_code == 200
        else:
            # Everyone else is sent to log in as someone who may, and stays there.
            assert response.status_code == 302 and re.search(r"/login/", response["Location"])
            landed = client.get("/admin/", follow=True)
            assert landed.status_code == 200 and landed.request["PATH_INFO"] == "/login/"
