"""The operator's side of a host failure: fail a host from the fault-injection
page, see the incident and its timeline, return the host to service."""

import pytest

from cloud.choices import HostState
from cloud.models import Host, SimHost, SimServer
from cloud.services import regions_sync_hosts
from monitoring.models import Incident
from monitoring.recovery import hosts_recover_failed
from pools.models import VM
from portal.models import AuditEvent
from tests.factories import RegionFactory, UserFactory, VMPoolFactory, fill_pool

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(username="olga", role="operator"))
    return client


@pytest.fixture
def region():
    region = RegionFactory(hosts=2)
    regions_sync_hosts()
    fill_pool(VMPoolFactory(region=region), 4)
    return region


def test_failing_a_host_from_the_fault_page_opens_an_incident(operator, region, settings):
    settings.HOST_FAILURE_THRESHOLD = 0
    sim = SimHost.objects.filter(region=region).first()
    page = operator.get("/faults/").content.decode()
    assert f'id="fail-{sim.name}"' in page

    answer = operator.post(f"/faults/hosts/{sim.pk}/", {"state": "down"}, follow=True)
    assert "is down" in answer.content.decode()
    host = Host.objects.get(region=region, name=sim.name)
    assert host.state == HostState.DOWN and host.down_since is not None  # synced at once
    assert AuditEvent.objects.filter(action="fault.host_state", actor="olga").exists()

    hosts_recover_failed()
    incident = Incident.objects.get()
    listing = operator.get("/incidents/").content.decode()
    assert f"Host {sim.name} failed" in listing
    detail = operator.get(f"/incidents/{incident.pk}/").content.decode()
    assert "declared failed and taken out of placement" in detail
    assert f"Return {sim.name} to service" in detail
    hosts_page = operator.get("/hosts/").content.decode()
    assert "out of placement" in hosts_page and "Return to service" in hosts_page

    operator.post(f"/faults/hosts/{sim.pk}/", {"state": "up"})
    operator.post(f"/hosts/{host.pk}/return/", {"next": f"/incidents/{incident.pk}/"})
    host.refresh_from_db()
    incident.refresh_from_db()
    assert host.state == HostState.UP and host.failed_at is None
    assert incident.status == "closed" and incident.closed_by == "olga"


def test_fault_settings_are_validated_and_audited(operator, region):
    prefix = f"r{region.pk}"
    fields = {
        "region": region.pk,
        f"{prefix}-boot_seconds_min": 5,
        f"{prefix}-boot_seconds_max": 1,
        f"{prefix}-boot_failure_rate": 1.5,
        f"{prefix}-api_latency_ms": 0,
        f"{prefix}-api_failure_rate": 0,
    }
    answer = operator.post("/faults/", fields)
    page = answer.content.decode()
    assert answer.status_code == 200
    assert "A share between 0 and 1" in page
    assert "cannot be shorter than the shortest" in page

    fields.update({f"{prefix}-boot_seconds_max": 9, f"{prefix}-boot_failure_rate": 0.25})
    assert operator.post("/faults/", fields).status_code == 302
    region.simulation.refresh_from_db()
    assert region.simulation.boot_failure_rate == 0.25
    assert AuditEvent.objects.filter(actor="olga", after__boot_failure_rate=0.25).exists()


def test_bad_requests_get_clear_answers(operator, region):
    sim = SimHost.objects.filter(region=region).first()
    answer = operator.post(f"/faults/hosts/{sim.pk}/", {"state": "exploded"}, follow=True)
    assert "Choose up or down" in answer.content.decode()
    assert operator.post("/faults/hosts/999999/", {"state": "down"}).status_code == 404
    assert operator.get(f"/faults/hosts/{sim.pk}/").status_code == 405
    assert operator.get("/incidents/999999/").status_code == 404
    assert operator.get("/incidents/?status=nonsense&page=abc").status_code == 200
    host = Host.objects.filter(region=region).first()
    answer = operator.post(f"/hosts/{host.pk}/return/", follow=True)
    assert "in service already" in answer.content.decode()


def test_incident_close_is_recorded_once(operator, region, settings):
    settings.HOST_FAILURE_THRESHOLD = 0
    sim = SimHost.objects.filter(region=region).first()
    SimHost.objects.filter(pk=sim.pk).update(state=HostState.DOWN)
    regions_sync_hosts()
    hosts_recover_failed()
    incident = Incident.objects.get()
    operator.post(f"/incidents/{incident.pk}/close/", {"note": "PSU replaced"})
    answer = operator.post(f"/incidents/{incident.pk}/close/", {"note": "again"}, follow=True)
    assert "closed already" in answer.content.decode()
    assert list(incident.events.values_list("message", flat=True))[-1] == "PSU replaced"


@pytest.mark.parametrize("path", ["/faults/", "/incidents/"])
def test_pages_need_staff(client, path):
    assert client.get(path).status_code == 302
    client.force_login(UserFactory())
    assert client.get(path).status_code == 403


def test_a_vm_that_loses_its_address_is_noticed_by_reconciliation(operator, region):
    from pools.services import regions_reconcile

    answer = operator.post(f"/faults/regions/{region.pk}/drop-address/", follow=True)
    assert "lost its IP address" in answer.content.decode()
    regions_reconcile()
    missing = VM.objects.filter(ip_missing_since__isnull=False)
    assert missing.count() == 1
    vm = missing.get()
    assert vm.state == "ready" and vm.cloud_status == "ACTIVE"

    SimServer.objects.filter(pk=vm.server_id).update(ip_address="10.9.9.9")
    regions_reconcile()
    vm.refresh_from_db()
    assert vm.ip_missing_since is None and vm.ip_address == "10.9.9.9"


def test_the_ops_api_lists_shows_and_closes_incidents(region, settings):
    from rest_framework.test import APIClient

    settings.HOST_FAILURE_THRESHOLD = 0
    sim = SimHost.objects.filter(region=region).first()
    on_host = VM.objects.filter(host_name=sim.name, state="ready").count()
    SimHost.objects.filter(pk=sim.pk).update(state=HostState.DOWN)
    regions_sync_hosts()
    hosts_recover_failed()
    api = APIClient()
    assert api.get("/api/v1/incidents/").status_code in (401, 403)
    api.force_authenticate(UserFactory(username="olga", role="operator"))

    # Nobody was connected: the incident is recovered at once.
    assert api.get("/api/v1/incidents/", {"status": "open"}).json()["count"] == 0
    recovered = api.get("/api/v1/incidents/", {"status": "recovered"}).json()["results"]
    assert len(recovered) == 1
    detail = api.get(f"/api/v1/incidents/{recovered[0]['id']}/").json()
    assert "declared failed" in detail["events"][0]["message"]
    assert detail["vms_affected"] == on_host > 0

    assert api.get("/api/v1/incidents/", {"status": "bogus"}).status_code == 400
    assert api.get("/api/v1/incidents/999999/").status_code == 404
    too_long = api.post(f"/api/v1/incidents/{detail['id']}/close/", {"note": "x" * 500})
    assert too_long.status_code == 400
    closed = api.post(f"/api/v1/incidents/{detail['id']}/close/", {"note": "fenced"}, format="json")
    assert closed.status_code == 200 and closed.json()["events"][-1]["message"] == "fenced"
    again = api.post(f"/api/v1/incidents/{detail['id']}/close/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "incident_closed"
