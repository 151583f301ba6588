"""A Celery queue per region: with `CELERY_REGION_QUEUES` on, the work on one
region's cloud is published to `region.<name>` and the all-regions periodic jobs
fan out per region; off, everything goes to the default queue and the periodic
jobs do the work themselves."""

from datetime import timedelta

import pytest
from celery import signals
from django.utils import timezone

from cloud import tasks as cloud_tasks
from cloud.models import Region
from maintenance import tasks as maintenance_tasks
from maintenance.models import MaintenanceRun, MaintenanceTask, RunItem
from monitoring import tasks as monitoring_tasks
from pools import tasks as pools_tasks
from pools.choices import VMState
from pools.models import VM, SchedulingPolicy, VMPool
from pools.services import pool_refill
from portal.celery import app
from portal.celery_routing import lookups_forget, region_for_task, route_task
from tests.factories import FeatureClassFactory, RegionFactory, VMPoolFactory, fill_pool

pytestmark = pytest.mark.django_db
DEFAULT = "celery"


@pytest.fixture(autouse=True)
def _fresh_lookups():
    lookups_forget()
    yield
    lookups_forget()


@pytest.fixture
def routing_on(settings):
    settings.CELERY_REGION_QUEUES = True


@pytest.fixture
def published():
    """Every task message the code publishes (to the in-memory test broker), as
    (task name, args, queue)."""
    sent = []

    def record(sender=None, body=None, routing_key=None, **kwargs):
        args = body[0] if isinstance(body, list | tuple) else []
        sent.append((sender, list(args), routing_key))

    signals.before_task_publish.connect(record, weak=False)
    yield sent
    signals.before_task_publish.disconnect(record)


@pytest.fixture
def world():
    """Two regions, `east` and `west`, a pool in each and a disabled `north`."""
    east = RegionFactory(name="east")
    west = RegionFactory(name="west")
    north = RegionFactory(name="north", enabled=False)
    return {
        "east": east,
        "west": west,
        "north": north,
        "east_pool": VMPoolFactory(region=east, name="agents-east"),
        "west_pool": VMPoolFactory(region=west, name="agents-west"),
    }


def run_item_in(pool: VMPool) -> RunItem:
    fill_pool(pool, 1)
    vm = VM.objects.filter(pool=pool).first()
    task = MaintenanceTask.objects.create(name=f"reboot {pool.name}", action="reboot")
    run = MaintenanceRun.objects.create(task=task)
    return RunItem.objects.create(run=run, vm=vm, vm_name=vm.name)


def queue_of(task, *args, **kwargs) -> str:
    """The queue Celery's own router picks for this call."""
    options = app.amqp.router.route({}, task.name, args, kwargs)
    return options["queue"].name


def region_bound_calls(world):
    """Each region-bound task with an argument that belongs to `east`."""
    east, pool = world["east"], world["east_pool"]
    item = run_item_in(pool)
    return [
        (pools_tasks.pool_refill, (pool.pk,), {}),
        (pools_tasks.pool_refill, (), {"pool_id": pool.pk}),
        (pools_tasks.region_poll_boots, (east.pk,), {}),
        (pools_tasks.region_reconcile, (east.pk,), {}),
        (pools_tasks.region_delete_expired_quarantine, (east.pk,), {}),
        (cloud_tasks.region_sync_hosts, (east.pk,), {}),
        (cloud_tasks.region_poll_agents, (east.pk,), {}),
        (monitoring_tasks.region_recover_failed_hosts, (east.pk,), {}),
        (maintenance_tasks.item_execute, (item.pk,), {}),
        (maintenance_tasks.item_notify, (item.pk,), {}),
    ]


def test_each_region_bound_task_goes_to_its_regions_queue(world, routing_on):
    for task, args, kwargs in region_bound_calls(world):
        assert queue_of(task, *args, **kwargs) == "region.east", task.name


def test_with_routing_off_every_task_goes_to_the_default_queue(world, settings):
    settings.CELERY_REGION_QUEUES = False
    for task, args, kwargs in region_bound_calls(world):
        assert queue_of(task, *args, **kwargs) == DEFAULT, task.name


def test_the_region_follows_the_object(world, routing_on):
    west = world["west"]
    assert queue_of(pools_tasks.pool_refill, world["west_pool"].pk) == "region.west"
    assert queue_of(cloud_tasks.region_sync_hosts, west.pk) == "region.west"
    assert queue_of(maintenance_tasks.item_execute, run_item_in(world["west_pool"]).pk) == (
        "region.west"
    )


@pytest.mark.parametrize(
    "args, kwargs",
    [((999_999,), {}), (("abc",), {}), ((None,), {}), ((True,), {}), ((), {}), ((), {"x": 1})],
)
def test_unknown_or_malformed_ids_go_to_the_default_queue(world, routing_on, args, kwargs):
    assert queue_of(pools_tasks.pool_refill, *args, **kwargs) == DEFAULT
    assert queue_of(cloud_tasks.region_sync_hosts, *args, **kwargs) == DEFAULT
    assert queue_of(maintenance_tasks.item_execute, *args, **kwargs) == DEFAULT


def test_tasks_not_bound_to_a_region_stay_on_the_default_queue(world, routing_on):
    east = world["east"]
    for task in (
        pools_tasks.pools_refill_all,
        pools_tasks.vms_poll_boots,
        cloud_tasks.hosts_sync_all,
        monitoring_tasks.hosts_recover_failed,
        monitoring_tasks.alerts_evaluate,
        maintenance_tasks.runs_advance,
    ):
        assert queue_of(task) == DEFAULT, task.name
    # An id of another kind is not mistaken for a region's.
    assert queue_of(monitoring_tasks.alert_notify, east.pk) == DEFAULT
    assert queue_of(maintenance_tasks.run_advance, east.pk) == DEFAULT


def test_the_lookup_is_remembered(world, routing_on, django_assert_num_queries):
    pool = world["east_pool"]
    with django_assert_num_queries(1):
        assert region_for_task("pools.tasks.pool_refill", [pool.pk]) == "east"
    with django_assert_num_queries(0):
        for _ in range(100):
            assert route_task("pools.tasks.pool_refill", [pool.pk], {}, {}) == {
                "queue": "region.east"
            }


def test_a_database_error_routes_to_the_default_queue(world, routing_on, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(VMPool.objects, "filter", broken)
    assert route_task("pools.tasks.pool_refill", [world["east_pool"].pk], {}, {}) is None


def test_a_published_task_lands_on_its_regions_queue(world, routing_on, published):
    pools_tasks.pool_refill.delay(world["west_pool"].pk)
    assert published == [("pools.tasks.pool_refill", [world["west_pool"].pk], "region.west")]


# -- fan-out of the all-regions periodic jobs ------------------------------------


@pytest.mark.parametrize(
    "job, per_region, disabled_too",
    [
        (pools_tasks.vms_poll_boots, "pools.tasks.region_poll_boots", True),
        (pools_tasks.regions_reconcile, "pools.tasks.region_reconcile", False),
        (
            pools_tasks.vms_delete_expired_quarantine,
            "pools.tasks.region_delete_expired_quarantine",
            True,
        ),
        (cloud_tasks.hosts_sync_all, "cloud.tasks.region_sync_hosts", False),
        (cloud_tasks.hosts_poll_agents, "cloud.tasks.region_poll_agents", True),
        (
            monitoring_tasks.hosts_recover_failed,
            "monitoring.tasks.region_recover_failed_hosts",
            True,
        ),
    ],
)
def test_periodic_jobs_fan_out_one_task_per_region(
    world, routing_on, published, settings, job, per_region, disabled_too
):
    settings.HOST_AGENT_TOKEN = "agent-token"
    result = job()

    regions = [name for name in ("east", "north", "west") if disabled_too or name != "north"]
    expected = {(per_region, world[name].pk, f"region.{name}") for name in regions}
    assert {(name, args[0], queue) for name, args, queue in published} == expected
    assert len(published) == len(expected)
    assert result == dict.fromkeys(regions, True)


def test_the_refill_fans_out_per_pool_most_urgent_first(world, routing_on, published):
    vip = VMPoolFactory(
        region=world["west"],
        name="vip-west",
        feature_class=FeatureClassFactory(name="vip", urgency=9),
    )
    VMPoolFactory(region=world["north"], name="agents-north")  # region disabled
    VMPoolFactory(region=world["east"], name="paused", paused_at=timezone.now())

    result = pools_tasks.pools_refill_all()

    assert result == {"queued": 3}
    assert published[0] == ("pools.tasks.pool_refill", [vip.pk], "region.west")
    assert sorted(published[1:]) == sorted(
        [
            ("pools.tasks.pool_refill", [world["east_pool"].pk], "region.east"),
            ("pools.tasks.pool_refill", [world["west_pool"].pk], "region.west"),
        ]
    )
    assert not VM.objects.exists(), "the fan-out must leave the boots to the region workers"


def test_with_routing_off_the_periodic_jobs_do_the_work_and_queue_nothing(
    world, settings, published
):
    settings.CELERY_REGION_QUEUES = False
    SchedulingPolicy.objects.update_or_create(pk=1, defaults={"max_concurrent_boots": 100})

    refilled = pools_tasks.pools_refill_all()
    polled = pools_tasks.vms_poll_boots()
    synced = cloud_tasks.hosts_sync_all()

    assert refilled == {"agents-east": 3, "agents-west": 3}
    assert polled["ready"] == 6
    assert synced == {"east": 2, "west": 2}
    assert published == []


def test_fanning_out_twice_is_harmless(world, routing_on, published):
    cloud_tasks.hosts_sync_all()
    cloud_tasks.hosts_sync_all()
    for _, args, _ in published:
        cloud_tasks.region_sync_hosts(args[0])
    assert Region.objects.get(name="east").hosts.count() == 2


# -- each per-region task does its own region's share and nothing else -----------


def test_polling_one_regions_boots_leaves_the_others_booting(world):
    SchedulingPolicy.objects.update_or_create(pk=1, defaults={"max_concurrent_boots": 100})
    pool_refill(pool_id=world["east_pool"].pk)
    pool_refill(pool_id=world["west_pool"].pk)

    pools_tasks.region_poll_boots(world["east"].pk)

    assert set(VM.objects.filter(pool=world["east_pool"]).values_list("state", flat=True)) == {
        VMState.READY
    }
    assert set(VM.objects.filter(pool=world["west_pool"]).values_list("state", flat=True)) == {
        VMState.BUILDING
    }


def test_syncing_one_regions_hosts_leaves_the_others_alone(world):
    assert cloud_tasks.region_sync_hosts(world["west"].pk) == {"west": 2}
    assert world["west"].hosts.count() == 2
    assert world["east"].hosts.count() == 0
    # A disabled region is not synced, as in the all-regions job.
    assert cloud_tasks.region_sync_hosts(world["north"].pk) == {}


def test_reconciling_one_region(world):
    assert set(pools_tasks.region_reconcile(world["east"].pk)) == {"east"}


def test_deleting_one_regions_expired_quarantine(world):
    fill_pool(world["east_pool"], 1)
    fill_pool(world["west_pool"], 1)
    past = timezone.now() - timedelta(minutes=1)
    VM.objects.update(state=VMState.QUARANTINED, quarantined_until=past)

    assert pools_tasks.region_delete_expired_quarantine(world["west"].pk) == 1

    assert VM.objects.get(pool=world["west_pool"]).state == VMState.DELETED
    assert VM.objects.get(pool=world["east_pool"]).state == VMState.QUARANTINED


def test_without_an_agent_token_the_agent_poll_does_not_fan_out(world, routing_on, published):
    assert cloud_tasks.hosts_poll_agents()["polled"] == 0
    assert published == []


def test_the_queue_depth_metric_reads_every_regions_queue(world, settings, monkeypatch):
    from monitoring import queues

    asked = []
    monkeypatch.setattr(
        queues, "broker_queue_lengths", lambda *, queues, **kwargs: asked.append(queues) or {}
    )
    settings.CELERY_REGION_QUEUES = False
    queues.celery_queue_lengths()
    settings.CELERY_REGION_QUEUES = True
    queues.celery_queue_lengths()
    assert asked == [[DEFAULT], [DEFAULT, "region.east", "region.north", "region.west"]]
