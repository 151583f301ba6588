"""Feature classes: how weight and CPU cap become flavor extra specs, applying
them to the flavors of a class's pools (on the simulated cloud, with the cloud
down, with a flavor shared between classes), the audit trail, the pages per
role and the API."""

import importlib
import math

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError

from cloud.drivers import driver_for
from cloud.models import Region, SimulatedRegion
from pools.flavors import (
    CPU_PERIOD,
    CPU_QUOTA,
    CPU_SHARES,
    class_extra_specs,
    cpu_quota_us,
    cpu_shares,
    specs_change,
)
from pools.models import FeatureClass
from pools.services import feature_class_apply
from portal.models import AuditEvent
from tests.factories import FeatureClassFactory, RegionFactory, UserFactory, VMPoolFactory

pytestmark = pytest.mark.django_db


def _class(**values) -> FeatureClass:
    defaults = {"name": "vip-agent", "label": "VIP agent", "weight": 3.0, "urgency": 3}
    return FeatureClassFactory(**{**defaults, **values})


def _specs(region: Region, flavor: str) -> dict:
    return driver_for(region).flavor_extra_specs(flavor)


# -- the mapping, rule by rule ------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "shares"),
    [
        (1.0, 1024),  # an ordinary VM: what cgroups v1 gives a task by default
        (2.0, 2048),
        (3.0, 3072),
        (0.5, 512),
        (0.0015, 2),  # rounds to 2, the least both cgroup versions take
        (0.0, 2),
        (9.765625, 10000),  # the top value cgroups v2 takes
        (9.8, 10000),
        (100.0, 10000),
        (1e308, 10000),  # clamped before rounding: no overflow
    ],
)
def test_weight_maps_to_cpu_shares_within_both_cgroup_ranges(weight, shares):
    assert cpu_shares(weight) == shares


@pytest.mark.parametrize("weight", [-0.1, math.nan, math.inf, "2", None])
def test_a_weight_the_hypervisor_cannot_take_is_refused(weight):
    with pytest.raises(ValueError):
        cpu_shares(weight)


@pytest.mark.parametrize(
    ("cap", "quota"),
    [(0, None), (1, 1000), (25, 25000), (50, 50000), (99, 99000), (100, 100000)],
)
def test_cap_maps_to_a_quota_per_vcpu_of_a_100_ms_period(cap, quota):
    assert cpu_quota_us(cap) == quota


@pytest.mark.parametrize("cap", [-1, 101, 2.5, True, "50", None])
def test_a_cap_outside_0_to_100_percent_is_refused(cap):
    with pytest.raises(ValueError):
        cpu_quota_us(cap)


def test_an_uncapped_class_sets_only_shares_a_capped_one_all_three():
    assert class_extra_specs(FeatureClass(weight=2.0, cpu_cap_percent=0)) == {CPU_SHARES: "2048"}
    assert class_extra_specs(FeatureClass(weight=1.0, cpu_cap_percent=50)) == {
        CPU_SHARES: "1024",
        CPU_PERIOD: "100000",
        CPU_QUOTA: "50000",
    }
    # The boost has no KVM counterpart: it changes no spec.
    assert class_extra_specs(FeatureClass(weight=1.0, boost_factor=3)) == {CPU_SHARES: "1024"}


def test_a_change_touches_only_deskops_keys():
    current = {CPU_SHARES: "1024", CPU_QUOTA: "50000", CPU_PERIOD: "100000", "hw:cpu_policy": "x"}
    to_set, to_unset = specs_change(current, {CPU_SHARES: "3072"})
    assert to_set == {CPU_SHARES: "3072"}
    assert sorted(to_unset) == [CPU_PERIOD, CPU_QUOTA]
    assert specs_change({CPU_SHARES: "3072"}, {CPU_SHARES: "3072"}) == ({}, [])


@pytest.mark.parametrize(
    "values",
    [
        {"cpu_cap_percent": 101},
        {"boost_factor": 11},
        {"weight": -1.0},
        {"weight": 100.5},
    ],
)
def test_the_model_refuses_values_out_of_range(values):
    feature_class = FeatureClass(name="x", label="X", **values)
    with pytest.raises(ValidationError):
        feature_class.full_clean()


def test_the_migration_gives_the_usual_classes_their_cpu_priority():
    for name in ("vip-agent", "agent", "supervisor", "custom"):
        FeatureClass.objects.create(name=name, label=name)
    migration = importlib.import_module("pools.migrations.0007_feature_class_cpu")
    migration.set_cpu_priority(django_apps, None)
    got = {c.name: (c.boost_factor, c.cpu_cap_percent) for c in FeatureClass.objects.all()}
    assert got == {"vip-agent": (3, 0), "agent": (1, 0), "supervisor": (0, 50), "custom": (0, 0)}


# -- applying to flavors ---------------------------------------------------------------


def test_apply_sets_the_specs_on_every_flavor_of_the_class_and_audits_it():
    vip = _class(cpu_cap_percent=80)
    east, west = RegionFactory(hosts=1), RegionFactory(hosts=1)
    VMPoolFactory(name="vip-east", region=east, feature_class=vip, flavor="desk.large")
    VMPoolFactory(name="vip-east-2", region=east, feature_class=vip, flavor="desk.large")
    VMPoolFactory(name="vip-west", region=west, feature_class=vip, flavor="desk.large")
    driver_for(east).flavor_update_extra_specs("desk.large", set_specs={"hw:rng": "yes"})

    outcomes = feature_class_apply(feature_class=vip, actor="alice", request_id="req-1")

    wanted = {CPU_SHARES: "3072", CPU_PERIOD: "100000", CPU_QUOTA: "80000"}
    assert {o.pool: o.status for o in outcomes} == {
        "vip-east": "changed",
        "vip-east-2": "changed",
        "vip-west": "changed",
    }
    assert _specs(east, "desk.large") == {**wanted, "hw:rng": "yes"}  # theirs kept
    assert _specs(west, "desk.large") == wanted
    vip.refresh_from_db()
    assert vip.flavors_applied_at is not None
    assert {entry["pool"] for entry in vip.flavors_outcome} == {
        "vip-east",
        "vip-east-2",
        "vip-west",
    }
    event = AuditEvent.objects.get(action="featureclass.apply_specs")
    assert (event.actor, event.request_id, event.object_id) == ("alice", "req-1", str(vip.pk))
    key = f"{east.name}/desk.large"
    assert event.before[key] == {} and event.after[key] == wanted
    assert event.after["outcome"]["vip-west"] == "changed"

    # Again: nothing to change, and it says so.
    again = feature_class_apply(feature_class=vip, actor="alice")
    assert {o.status for o in again} == {"unchanged"}


def test_uncapping_removes_quota_and_period_from_the_flavor():
    vip = _class(cpu_cap_percent=50)
    pool = VMPoolFactory(feature_class=vip, flavor="desk.large")
    feature_class_apply(feature_class=vip, actor="alice")
    assert CPU_QUOTA in _specs(pool.region, "desk.large")

    FeatureClass.objects.filter(pk=vip.pk).update(cpu_cap_percent=0, weight=1.5)
    vip.refresh_from_db()
    [outcome] = feature_class_apply(feature_class=vip, actor="alice")
    assert outcome.status == "changed"
    assert outcome.before == {CPU_SHARES: "3072", CPU_PERIOD: "100000", CPU_QUOTA: "50000"}
    assert _specs(pool.region, "desk.large") == {CPU_SHARES: "1536"}


def test_a_flavor_shared_with_another_class_is_refused_and_left_alone():
    vip, agent = _class(), FeatureClassFactory(name="agent", label="Agent", weight=2.0)
    region = RegionFactory(hosts=1)
    VMPoolFactory(name="vip-east", region=region, feature_class=vip, flavor="desk.medium")
    VMPoolFactory(name="agents-east", region=region, feature_class=agent, flavor="desk.medium")
    # The same flavor name in another region is another flavor: no conflict there.
    VMPoolFactory(name="vip-west", feature_class=vip, flavor="desk.medium")

    outcomes = {o.pool: o for o in feature_class_apply(feature_class=vip, actor="alice")}

    assert outcomes["vip-east"].status == "refused"
    assert "agents-east" in outcomes["vip-east"].message
    assert "one set of extra specs" in outcomes["vip-east"].message
    assert outcomes["vip-west"].status == "changed"
    assert _specs(region, "desk.medium") == {}
    event = AuditEvent.objects.get(action="featureclass.apply_specs")
    assert event.after["outcome"] == {"vip-east": "refused", "vip-west": "changed"}


def test_a_cloud_that_is_down_fails_that_flavor_with_a_clear_message_only():
    vip = _class()
    down = RegionFactory(name="down-region", hosts=1, simulation__api_failure_rate=1.0)
    VMPoolFactory(name="vip-down", region=down, feature_class=vip, flavor="desk.large")
    VMPoolFactory(name="vip-up", feature_class=vip, flavor="desk.large")

    outcomes = {o.pool: o for o in feature_class_apply(feature_class=vip, actor="alice")}

    assert outcomes["vip-down"].status == "failed"
    assert "down-region did not answer" in outcomes["vip-down"].message
    assert outcomes["vip-up"].status == "changed"
    SimulatedRegion.objects.filter(region=down).update(api_failure_rate=0.0)
    assert _specs(down, "desk.large") == {}


def test_a_cloud_that_refuses_fails_with_its_reason():
    # An OpenStack region naming no clouds.yaml entry: the driver refuses at once.
    region = Region.objects.create(name="nova-x", driver="openstack")
    vip = _class()
    VMPoolFactory(name="vip-nova", region=region, feature_class=vip, flavor="desk.large")
    [outcome] = feature_class_apply(feature_class=vip, actor="alice")
    assert outcome.status == "failed"
    assert "nova-x refused" in outcome.message and "clouds.yaml" in outcome.message


def test_a_class_without_pools_applies_to_nothing():
    vip = _class()
    assert feature_class_apply(feature_class=vip, actor="alice") == []
    assert AuditEvent.objects.filter(action="featureclass.apply_specs").count() == 1


# -- pages ------------------------------------------------------------------------------


def _login(client, role):
    client.force_login(UserFactory(username=f"as-{role}", role=role))
    return client


FORM = {
    "label": "VIP agent",
    "weight": "4",
    "urgency": "3",
    "cpu_cap_percent": "60",
    "boost_factor": "2",
}


def test_a_viewer_reads_the_classes_their_specs_and_pools(client):
    vip = _class(cpu_cap_percent=50, boost_factor=3)
    pool = VMPoolFactory(name="vip-east", feature_class=vip, flavor="desk.large")
    _login(client, "viewer")

    listing = client.get("/classes/").content.decode()
    assert "VIP agent" in listing and "quota:cpu_shares=3072" in listing
    assert "quota:cpu_quota=50000" in listing and "Add a class" not in listing

    page = client.get(f"/classes/{vip.pk}/").content.decode()
    assert "vip-east" in page and "desk.large" in page and "not applied" in page
    assert "Apply to flavors" not in page and "<form" not in page.split("</header>")[-1]

    detail = client.get(f"/pools/{pool.pk}/").content.decode()
    assert "quota:cpu_shares=3072" in detail

    assert client.post(f"/classes/{vip.pk}/", FORM).status_code == 403
    assert client.post(f"/classes/{vip.pk}/apply/").status_code == 403
    assert client.post("/classes/", {"new-name": "x"}).status_code == 403


def test_an_operator_may_not_apply_or_edit(client):
    vip = _class()
    _login(client, "operator")
    assert client.post(f"/classes/{vip.pk}/apply/").status_code == 403
    assert client.post(f"/classes/{vip.pk}/", FORM).status_code == 403


def test_an_administrator_edits_a_class_and_it_is_audited(client):
    vip = _class()
    _login(client, "administrator")
    response = client.post(f"/classes/{vip.pk}/", FORM)
    assert response.status_code == 302
    vip.refresh_from_db()
    assert (vip.weight, vip.cpu_cap_percent, vip.boost_factor) == (4.0, 60, 2)
    event = AuditEvent.objects.get(action="featureclass.update")
    assert event.before["cpu_cap_percent"] == 0 and event.after["cpu_cap_percent"] == 60
    page = client.get(f"/classes/{vip.pk}/").content.decode()
    assert "quota:cpu_quota=60000" in page and "quota:cpu_shares=4096" in page


@pytest.mark.parametrize(
    "bad",
    [
        {"cpu_cap_percent": "101"},
        {"cpu_cap_percent": "-1"},
        {"boost_factor": "11"},
        {"weight": "lots"},
        {"weight": "nan"},
        {"weight": "inf"},
        {"weight": "1e400"},
        {"urgency": "99999999999999999999"},
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(client, bad):
    vip = _class()
    _login(client, "administrator")
    response = client.post(f"/classes/{vip.pk}/", {**FORM, **bad})
    assert response.status_code == 400
    vip.refresh_from_db()
    assert (vip.weight, vip.cpu_cap_percent, vip.boost_factor) == (3.0, 0, 0)
    created = client.post(
        "/classes/", {f"new-{k}": v for k, v in {**FORM, "name": "n", **bad}.items()}
    )
    assert created.status_code == 400
    assert not FeatureClass.objects.filter(name="n").exists()


def test_an_administrator_adds_a_class(client):
    _login(client, "administrator")
    data = {f"new-{k}": v for k, v in {**FORM, "name": "night-agent", "label": "Night"}.items()}
    response = client.post("/classes/", data)
    created = FeatureClass.objects.get(name="night-agent")
    assert response.status_code == 302 and response["Location"] == f"/classes/{created.pk}/"
    assert (created.cpu_cap_percent, created.boost_factor) == (60, 2)
    assert AuditEvent.objects.get(action="featureclass.create").object_id == str(created.pk)
    duplicate = client.post("/classes/", data)
    assert (
        duplicate.status_code == 400
        and FeatureClass.objects.filter(name="night-agent").count() == 1
    )


def test_the_apply_button_sets_the_flavors_and_the_page_shows_each_pools_outcome(client):
    vip = _class(cpu_cap_percent=50)
    agent = FeatureClassFactory(name="agent", label="Agent")
    region = RegionFactory(hosts=1)
    VMPoolFactory(name="vip-east", region=region, feature_class=vip, flavor="desk.large")
    VMPoolFactory(name="vip-shared", region=region, feature_class=vip, flavor="desk.medium")
    VMPoolFactory(name="agents-east", region=region, feature_class=agent, flavor="desk.medium")
    _login(client, "administrator")

    response = client.post(f"/classes/{vip.pk}/apply/", follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "1 pool(s) changed" in page and "1 refused" in page
    assert "agents-east" in page  # why vip-shared was refused
    assert _specs(region, "desk.large")[CPU_QUOTA] == "50000"
    # Editing the class afterwards makes the applied flavors stale.
    client.post(f"/classes/{vip.pk}/", {**FORM, "cpu_cap_percent": "40"})
    assert "no: apply" in client.get(f"/classes/{vip.pk}/").content.decode()


def test_the_apply_button_with_the_cloud_down_is_no_500(client):
    vip = _class()
    VMPoolFactory(feature_class=vip, region=RegionFactory(simulation__api_failure_rate=1.0))
    _login(client, "administrator")
    response = client.post(f"/classes/{vip.pk}/apply/", follow=True)
    assert response.status_code == 200
    assert "did not answer" in response.content.decode()


def test_unknown_classes_are_404(client):
    _login(client, "administrator")
    assert client.get("/classes/999999/").status_code == 404
    assert client.post("/classes/999999/apply/").status_code == 404


# -- API ----------------------------------------------------------------------------------


def test_the_api_lists_classes_with_their_cpu_priority_and_specs(client):
    vip = _class(cpu_cap_percent=50, boost_factor=3)
    VMPoolFactory(feature_class=vip)
    _login(client, "viewer")
    body = client.get("/api/v1/feature-classes/").json()
    [row] = body["results"]
    assert row["name"] == "vip-agent" and row["pool_count"] == 1
    assert (row["weight"], row["urgency"], row["cpu_cap_percent"], row["boost_factor"]) == (
        3.0,
        3,
        50,
        3,
    )
    assert row["extra_specs"] == {CPU_SHARES: "3072", CPU_PERIOD: "100000", CPU_QUOTA: "50000"}
    assert row["url"].endswith(f"/classes/{vip.pk}/")
    one = client.get(f"/api/v1/feature-classes/{vip.pk}/").json()
    assert one["extra_specs"] == row["extra_specs"]
    assert client.post("/api/v1/feature-classes/", {}).status_code in (403, 405)
