"""The ops API for allocation: allocator rules with their validation, the terminal
registry with enrollment and CSV import, and "explain" (API and page)."""

import base64

import pytest
from rest_framework.test import APIClient

from allocation.choices import TerminalStatus
from allocation.models import Allocator, Terminal
from portal.models import AuditEvent
from tests.factories import (
    AllocatorFactory,
    Desk,
    SiteFactory,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():
    return UserFactory(username="operator", role="administrator")


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def pools():
    return VMPoolFactory(name="agents"), VMPoolFactory(name="vip")


def rule(**overrides):
    body = {"name": "VIP agents", "priority": 10, "groups": ["vip-agents"], "pools": ["vip"]}
    return {**body, **overrides}


def test_the_ops_api_is_for_staff_only(pools):
    anonymous = APIClient()
    response = anonymous.get("/api/v1/allocators/")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    agent = APIClient()
    agent.force_authenticate(UserFactory())
    assert agent.get("/api/v1/allocators/").status_code == 403
    assert agent.get("/api/v1/allocators/").json()["error"] == "permission_denied"


def test_create_an_allocator_and_read_it_back(api, pools):
    response = api.post("/api/v1/allocators/", rule(pools=["vip", "agents"]), format="json")
    assert response.status_code == 201, response.content
    body = api.get(f"/api/v1/allocators/{response.json()['id']}/").json()
    assert body["groups"] == ["vip-agents"]
    assert body["pools"] == ["vip", "agents"]  # order kept
    assert body["binding_policy"] == "user"
    assert body["shadowed_by"] == []
    event = AuditEvent.objects.get(action="allocator.create")
    assert event.actor == "operator" and event.after["pools"] == ["vip", "agents"]


def test_an_unknown_pool_is_refused(api, pools):
    response = api.post("/api/v1/allocators/", rule(pools=["nope"]), format="json")
    assert response.status_code == 400
    assert "pools" in response.json()["fields"]


def test_a_second_default_is_refused(api, pools):
    AllocatorFactory(name="Everyone", is_default=True, pools=[pools[0]])
    response = api.post("/api/v1/allocators/", rule(is_default=True), format="json")
    assert response.status_code == 400
    assert "already the default" in response.json()["fields"]["is_default"][0]


def test_a_rule_shadowed_by_an_earlier_one_is_flagged(api, pools):
    api.post("/api/v1/allocators/", rule(name="All agents", priority=5, groups=[]), format="json")
    response = api.post("/api/v1/allocators/", rule(), format="json")
    assert response.json()["shadowed_by"] == ["All agents"]


def test_editing_a_rule_is_audited_with_before_and_after(api, pools):
    created = api.post("/api/v1/allocators/", rule(), format="json").json()
    response = api.patch(
        f"/api/v1/allocators/{created['id']}/", {"priority": 20, "pools": ["agents"]}, format="json"
    )
    assert response.status_code == 200, response.content
    event = AuditEvent.objects.get(action="allocator.update")
    assert (event.before["priority"], event.after["priority"]) == (10, 20)
    assert (event.before["pools"], event.after["pools"]) == (["vip"], ["agents"])


def test_an_allocator_with_active_bindings_cannot_be_deleted(api):
    desk = Desk.build()
    APIClient().post("/api/thin-client/v1/connect", desk.connect_body(), format="json")
    response = api.delete(f"/api/v1/allocators/{desk.allocator.pk}/")
    assert response.status_code == 409
    assert Allocator.objects.filter(pk=desk.allocator.pk).exists()


def test_enroll_a_pending_terminal(api):
    SiteFactory(name="hefei")
    pending = TerminalFactory(status=TerminalStatus.PENDING, site=None, seat="")
    assert api.get("/api/v1/terminals/?status=pending").json()[0]["serial"] == pending.serial
    response = api.post(
        f"/api/v1/terminals/{pending.pk}/enroll/",
        {"site": "hefei", "seat": "HF-B07", "tags": ["floor-2"]},
        format="json",
    )
    assert response.status_code == 200
    pending.refresh_from_db()
    assert (pending.status, pending.site.name, pending.seat) == ("enrolled", "hefei", "HF-B07")
    assert AuditEvent.objects.filter(action="terminal.update", actor="operator").exists()


def test_csv_import_reports_every_row(api):
    SiteFactory(name="hefei")
    TerminalFactory(serial="TC-OLD-1", status=TerminalStatus.PENDING)
    csv = "\n".join(
        [
            "serial,mac_address,site,seat,tags,enabled",
            "TC-NEW-1,52:54:00:aa:bb:01,hefei,HF-A01,floor-1;quiet,true",
            "TC-OLD-1,,hefei,HF-A02,,",
            ",52:54:00:aa:bb:03,hefei,HF-A03,,",
            "TC-NEW-2,not-a-mac,hefei,HF-A04,,",
            "TC-NEW-3,,atlantis,HF-A05,,",
            "TC-NEW-1,,hefei,HF-A06,,",
            "TC NEW 4,,hefei,HF-A07,,",
            "TC-NEW-5,,hefei,HF-A08,,maybe",
        ]
    )
    response = api.post("/api/v1/terminals/import/", {"csv": csv}, format="json")

    body = response.json()
    assert (body["created"], body["updated"], body["refused"]) == (1, 1, 6)
    reasons = {row["line"]: row["reason"] for row in body["rows"] if row["outcome"] == "refused"}
    assert reasons[4] == "the serial is empty"
    assert "not a MAC address" in reasons[5]
    assert "no site 'atlantis'" in reasons[6]
    assert "twice" in reasons[7]
    assert "letters, digits" in reasons[8]
    assert "true or false" in reasons[9]
    new = Terminal.objects.get(serial="TC-NEW-1")
    assert (new.status, new.tags, new.mac_address) == (
        "enrolled",
        ["floor-1", "quiet"],
        "52:54:00:aa:bb:01",
    )
    assert Terminal.objects.get(serial="TC-OLD-1").status == "enrolled"


def test_csv_import_refuses_a_file_without_a_serial_column(api):
    response = api.post("/api/v1/terminals/import/", {"csv": "mac,site\n"}, format="json")
    assert response.json()["refused"] == 1
    assert not Terminal.objects.exists()


def test_explain_rule_by_rule(api, pools):
    hefei = SiteFactory(name="hefei")
    vip = AllocatorFactory(name="VIP", priority=10, pools=[pools[1]])
    vip.groups.create(name="vip-agents")
    site_rule = AllocatorFactory(name="Hefei seats", priority=20, pools=[pools[0]])
    site_rule.sites.add(hefei)
    AllocatorFactory(name="Everyone", is_default=True, pools=[pools[0]])
    user = UserFactory(username="bob", groups=["agents"])
    terminal = TerminalFactory(serial="TC-HF-1", site=hefei)

    body = api.get("/api/v1/explain/", {"user": "bob", "terminal": "TC-HF-1"}).json()

    assert body["served_by"] == "Hefei seats"
    assert [(r["allocator"], r["matched"], r["serves"]) for r in body["rules"]] == [
        ("VIP", False, False),
        ("Hefei seats", True, True),
        ("Everyone", True, False),
    ]
    assert "none of the groups" in body["rules"][0]["reasons"][0]
    assert body["groups"] == ["agents"] and body["site"] == "hefei"
    # Without the terminal, the site rule cannot match: the default serves.
    assert api.get("/api/v1/explain/", {"user": user.username}).json()["served_by"] == "Everyone"
    assert terminal.serial == body["terminal"]


def test_explain_of_an_unknown_user_is_a_400(api):
    response = api.get("/api/v1/explain/", {"user": "nobody"})
    assert response.status_code == 400
    assert "no user" in response.json()["fields"]["user"][0]


def test_the_explain_page(client, staff, pools):
    AllocatorFactory(name="Everyone", is_default=True, pools=[pools[0]])
    UserFactory(username="carol")
    client.force_login(staff)
    page = client.get("/explain/", {"user": "carol"}).content.decode()
    assert "carol is served by <strong>Everyone</strong>" in page
    assert "the default allocator catches every login" in page
    page = client.get("/explain/", {"user": "nobody"}).content.decode()
    assert "There is no user" in page


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_scripts_use_http_basic_auth(pools):
    UserFactory(username="script", password="s3cret-pass", role="administrator")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("script", "s3cret-pass"))
    assert client.get("/api/v1/allocators/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=basic("script", "wrong"))
    response = client.get("/api/v1/allocators/")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"
