"""The operator's side of a host failure: fail a host from the fault-injection
page, see the incident and its timeline, return the host to service."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from allocation.models import Binding, VMSwap
from cloud.choices import HostState
from cloud.models import Host, SimHost, SimServer
from cloud.services import regions_sync_hosts
from monitoring.models import Alert, Incident, IncidentEvent
from monitoring.recovery import hosts_recover_failed, incident_close
from pools.models import VM
from portal.models import AuditEvent
from tests.factories import (
    AllocatorFactory,
    RegionFactory,
    UserFactory,
    VMFactory,
    VMPoolFactory,
    fill_pool,
)

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


# -- the list and the incident page ------------------------------------------------


def incident_titles(response) -> list[str]:
    assert response.status_code == 200
    return [row.obj.title for row in response.context["rows"]]


@pytest.fixture
def incidents():
    """Three incidents in two regions: one recovering, one recovered, one closed."""
    east, west = RegionFactory(name="east", hosts=0), RegionFactory(name="west", hosts=0)
    cmp1 = Host.objects.create(region=east, name="cmp-1", state="down")
    cmp2 = Host.objects.create(region=east, name="cmp-2", state="up")
    cmp9 = Host.objects.create(region=west, name="cmp-9", state="up")
    Host.objects.create(region=west, name="never-failed", state="up")
    made = {}
    for title, host, status, vms in (
        ("Host cmp-2 failed", cmp2, "closed", 3),
        ("Host cmp-9 failed", cmp9, "recovered", 7),
        ("Host cmp-1 failed", cmp1, "open", 5),
    ):
        made[host.name] = Incident.objects.create(
            kind="host_failure",
            title=title,
            host=host,
            region=host.region,
            status=status,
            vms_affected=vms,
            closed_by="olga" if status == "closed" else "",
        )
    return made


def test_the_incident_list_filters_searches_and_sorts(operator, incidents):
    everything = incident_titles(operator.get("/incidents/"))
    assert everything == ["Host cmp-1 failed", "Host cmp-9 failed", "Host cmp-2 failed"]
    assert incident_titles(operator.get("/incidents/?sort=opened_at")) == everything[::-1]
    assert incident_titles(operator.get("/incidents/?status=recovered")) == ["Host cmp-9 failed"]
    east = incidents["cmp-1"].region
    assert set(incident_titles(operator.get(f"/incidents/?region={east.pk}"))) == {
        "Host cmp-1 failed",
        "Host cmp-2 failed",
    }
    host = incidents["cmp-9"].host
    assert incident_titles(operator.get(f"/incidents/?host={host.pk}")) == ["Host cmp-9 failed"]
    assert incident_titles(operator.get("/incidents/?q=OLGA")) == ["Host cmp-2 failed"]
    assert incident_titles(operator.get("/incidents/?sort=-vms_affected"))[0] == "Host cmp-9 failed"

    page = operator.get("/incidents/").content.decode()
    # The host filter offers the hosts that have had an incident, by region.
    assert "east / cmp-1" in page and "never-failed" not in page
    assert f'href="/incidents/{incidents["cmp-1"].pk}/"' in page


def test_the_incident_list_exports_csv_and_takes_bad_values(operator, incidents):
    response = operator.get("/incidents/?format=csv&status=closed")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert (row["Incident"], row["Status"], row["Region"], row["Host"]) == (
        "Host cmp-2 failed",
        "Closed",
        "east",
        "cmp-2",
    )
    assert (row["VMs"], row["Closed by"]) == ("3", "olga")

    bad = operator.get("/incidents/?region=abc&host=-1&status=on_fire&sort=-x&since=yesterday")
    assert bad.status_code == 200 and len(bad.context["rows"]) == 3


def test_the_incident_list_costs_the_same_queries_for_25_or_200_rows(operator):
    region = RegionFactory(hosts=0)
    hosts = [Host.objects.create(region=region, name=f"cmp-{n}", state="up") for n in range(5)]
    Incident.objects.bulk_create(
        Incident(
            kind="host_failure",
            title=f"incident {n}",
            status="closed",
            host=hosts[n % 5],
            region=region,
        )
        for n in range(210)
    )
    counts = []
    for size in (25, 200):
        with CaptureQueriesContext(connection) as captured:
            response = operator.get(f"/incidents/?per_page={size}")
        assert len(response.context["rows"]) == size
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_the_incident_page_shows_users_moved_alerts_and_recent_events(operator, incidents):
    incident = incidents["cmp-1"]
    pool = VMPoolFactory()
    old_vm, new_vm = VMFactory(pool=pool, name="desk-old"), VMFactory(pool=pool, name="desk-new")
    user = UserFactory(username="alice")
    binding = Binding.objects.create(
        allocator=AllocatorFactory(pools=[pool]), kind="user", user=user, vm=new_vm
    )
    VMSwap.objects.create(
        binding=binding,
        pool=pool,
        old_vm=old_vm,
        new_vm=new_vm,
        status="done",
        reason="host failed",
        actor="recovery",
        incident=incident,
    )
    alert = Alert.objects.create(
        kind="host_down",
        key="host_down:east/cmp-1",
        incident=incident,
        message="Host cmp-1 down",
        last_seen_at=timezone.now(),
    )
    IncidentEvent.objects.create(incident=incident, message="cmp-1 declared failed")
    incident_close(incident=incident, note="PSU replaced", actor="olga")

    page = operator.get(f"/incidents/{incident.pk}/").content.decode()
    assert "cmp-1 declared failed" in page and "PSU replaced" in page
    assert f'href="/helpdesk/users/{user.pk}/">alice</a>' in page
    assert f'href="/vms/{old_vm.pk}/"' in page and "desk-new" in page
    assert f'href="/alerts/{alert.pk}/">Host cmp-1 down</a>' in page
    assert "Recent events" in page and "incident.close" in page


@pytest.mark.parametrize("role", ["viewer", "helpdesk"])
def test_below_operator_the_close_button_is_hidden_and_refused(client, incidents, role):
    incident = incidents["cmp-1"]
    client.force_login(UserFactory(username=f"as-{role}", role=role))
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert incident.title in page and "/close/" not in page
    assert client.get("/incidents/").status_code == 200
    assert client.post(f"/incidents/{incident.pk}/close/", {"note": "x"}).status_code == 403
    assert client.post("/faults/").status_code == 403
    assert client.get("/faults/").status_code == 403
    incident.refresh_from_db()
    assert incident.status == "open"
