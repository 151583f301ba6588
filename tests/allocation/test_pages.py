"""The allocation pages: allocators (list, create, edit with the API's validation),
terminals (pending list, enroll, CSV import)."""

import pytest

from allocation.models import Allocator, Terminal
from portal.models import AuditEvent
from tests.factories import (
    AllocatorFactory,
    SiteFactory,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="operator", role="administrator"))
    return client


def form(**overrides):
    data = {
        "name": "VIP agents",
        "priority": "10",
        "enabled": "on",
        "groups": "vip-agents, agents",
        "terminal_tags": "",
        "ou_subtrees": "ou=hefei,ou=sites,dc=example,dc=com",
        "binding_policy": "user",
        "pools": "vip, agents",
    }
    return {**data, **overrides}


def test_pages_need_staff(client):
    client.force_login(UserFactory())
    for url in ["/allocators/", "/allocators/new/", "/terminals/", "/terminals/import/"]:
        assert client.get(url).status_code == 403, url


def test_create_an_allocator_from_the_page(staff_client):
    VMPoolFactory(name="vip"), VMPoolFactory(name="agents")
    response = staff_client.post("/allocators/new/", form())
    assert response.status_code == 302
    allocator = Allocator.objects.get(name="VIP agents")
    assert [link.pool.name for link in allocator.pool_links.all()] == ["vip", "agents"]
    assert sorted(allocator.groups.values_list("name", flat=True)) == ["agents", "vip-agents"]
    assert allocator.ou_subtrees == ["ou=hefei,ou=sites,dc=example,dc=com"]
    assert AuditEvent.objects.filter(action="allocator.create", actor="operator").exists()
    page = staff_client.get("/allocators/").content.decode()
    assert "VIP agents" in page and "vip → agents" in page


def test_the_page_refuses_what_the_api_refuses(staff_client):
    pool = VMPoolFactory(name="agents")
    AllocatorFactory(name="Everyone", is_default=True, pools=[pool])
    response = staff_client.post("/allocators/new/", form(pools="nope"))
    assert response.status_code == 200
    assert "does not exist" in response.content.decode()
    response = staff_client.post("/allocators/new/", form(pools="agents", is_default="on"))
    assert "already the default allocator" in response.content.decode()
    assert not Allocator.objects.filter(name="VIP agents").exists()


def test_editing_warns_about_a_shadowed_rule(staff_client):
    pool = VMPoolFactory(name="agents")
    AllocatorFactory(name="All", priority=1, pools=[pool])
    rule = AllocatorFactory(name="Later", priority=50, pools=[pool])
    page = staff_client.get(f"/allocators/{rule.pk}/").content.decode()
    assert 'value="Later"' in page
    response = staff_client.post(
        f"/allocators/{rule.pk}/", form(name="Later", priority="60", pools="agents"), follow=True
    )
    assert "shadowed by All" in response.content.decode()
    assert Allocator.objects.get(pk=rule.pk).priority == 60


def test_enroll_a_pending_terminal_from_the_page(staff_client):
    SiteFactory(name="hefei")
    pending = TerminalFactory(status="pending", site=None, seat="")
    page = staff_client.get("/terminals/?status=pending").content.decode()
    assert pending.serial in page and "Enroll" in page
    staff_client.post(f"/terminals/{pending.pk}/enroll/", {"site": "hefei", "seat": "HF-9"})
    pending.refresh_from_db()
    assert (pending.status, pending.seat) == ("enrolled", "HF-9")


def test_import_terminals_from_an_uploaded_file(staff_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    SiteFactory(name="hefei")
    upload = SimpleUploadedFile(
        "terminals.csv", b"serial,site,seat\nTC-1,hefei,A1\nTC-2,mars,A2\n", "text/csv"
    )
    page = staff_client.post("/terminals/import/", {"csv_file": upload}).content.decode()
    assert "created" in page and "there is no site &#x27;mars&#x27;" in page
    assert list(Terminal.objects.values_list("serial", flat=True)) == ["TC-1"]
