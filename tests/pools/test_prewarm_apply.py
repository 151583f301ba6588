"""Applying the boot-storm plan: the facts it reads from the database, the
calendar windows it writes (and the ones it leaves alone), its audit trail, the
command and the daily task."""

from datetime import datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from cloud.choices import HostState
from cloud.models import Host
from pools.models import PoolSchedule, SchedulingPolicy, Shift
from pools.selectors import pool_boot_samples, pool_target, prewarm_inputs, prewarm_plan
from pools.services import prewarm_apply, shift_create, shift_delete, shift_update
from pools.tasks import prewarm_replan
from portal.models import AuditEvent
from tests.factories import VMFactory, VMPoolFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _planner_settings(settings):
    settings.PREWARM_BOOT_SECONDS = 300
    settings.PREWARM_BOOT_SECONDS_FLOOR = 30
    settings.PREWARM_SAFETY_MARGIN_MINUTES = 10
    settings.PREWARM_MAX_LEAD_HOURS = 12
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def morning(pool):
    """100 seats at 08:00 on weekdays; the pool boots 10 at a time, 5 minutes each
    (the default boot time: the pool has no boots to measure)."""
    pool.max_concurrent_boots = 10
    pool.save()
    return shift_create(
        pool=pool,
        label="Morning",
        weekdays=[5, 1, 2, 3, 4],
        starts_at=time(8, 0),
        ends_at=time(16, 0),
        seats=100,
        actor="tester",
    )


def _boot(pool, seconds: float, *, ago: timedelta = timedelta(hours=1)):
    started = timezone.now() - ago
    vm = VMFactory(pool=pool, state="ready")
    vm.__class__.objects.filter(pk=vm.pk).update(
        boot_started_at=started, ready_at=started + timedelta(seconds=seconds)
    )


def test_boot_time_is_the_median_of_the_pools_recent_boots(pool):
    for seconds in (100, 110, 120, 130, 2000):
        _boot(pool, seconds)
    _boot(pool, 5000, ago=timedelta(days=30))  # too old to count
    assert sorted(pool_boot_samples(pool.pk)) == [100, 110, 120, 130, 2000]
    shift_create(
        pool=pool, label="Day", weekdays=[], starts_at=time(8, 0), ends_at=time(16, 0),
        seats=10, actor="tester",
    )  # fmt: skip
    _, pools, _, _ = prewarm_inputs()
    assert pools[pool.pk].boot_seconds == 120
    assert pools[pool.pk].boot_source == "median of 5 recent boots"


def test_inputs_sum_the_boot_caps_of_up_hosts_only(morning, pool):
    SchedulingPolicy.objects.update_or_create(pk=1, defaults={"host_max_concurrent_boots": 3})
    Host.objects.create(region=pool.region, name="a", state=HostState.UP, vcpus=32, memory_mb=1024)
    Host.objects.create(region=pool.region, name="b", state=HostState.UP, max_concurrent_boots=7)
    Host.objects.create(region=pool.region, name="c", state=HostState.DOWN)
    Host.objects.create(region=pool.region, name="d", failed_at=timezone.now())
    _, _, regions, _ = prewarm_inputs()
    hosts = regions[pool.region_id].hosts
    assert sorted(h.boot_cap for h in hosts) == [3, 7]
    assert sum(h.vcpus for h in hosts) == 32 * 2.0


def test_apply_writes_one_window_per_shift_and_audits_it(morning, pool):
    result = prewarm_apply(actor="tester")
    assert result.created == [f"{pool.name}/Morning"]
    window = PoolSchedule.objects.get()
    assert window.label == "prewarm: Morning"
    # 10 waves of 5 minutes, plus the 10 minute margin: from 07:00 to the shift's end.
    assert (window.starts, window.ends, window.target_ready) == (time(7, 0), time(16, 0), 100)
    assert window.weekdays == [1, 2, 3, 4, 5]
    morning.refresh_from_db()
    assert morning.schedule == window
    event = AuditEvent.objects.get(action="shift.prewarm_apply")
    assert event.actor == "tester" and event.before is None
    assert event.after["window"]["starts"] == "07:00" and event.after["verdict"] == "ok"
    # The refill honours it: the pool's target is the seats from 07:00 on a Monday.
    monday = timezone.make_aware(datetime(2026, 11, 16, 7, 30))
    assert pool_target(pool, at=monday) == 100
    assert pool_target(pool, at=monday - timedelta(hours=1)) == pool.target_ready


def test_applying_again_changes_nothing_until_the_plan_does(morning, pool):
    prewarm_apply(actor="tester")
    window_id = PoolSchedule.objects.get().pk
    again = prewarm_apply(actor="tester")
    assert again.unchanged == [f"{pool.name}/Morning"] and not again.created
    assert AuditEvent.objects.filter(action="shift.prewarm_apply").count() == 1

    shift_update(shift=morning, fields={"seats": 200}, actor="tester")
    changed = prewarm_apply(actor="tester")
    assert changed.updated == [f"{pool.name}/Morning"]
    window = PoolSchedule.objects.get()
    assert window.pk == window_id  # replaced in place, not added
    assert (window.starts, window.target_ready) == (time(6, 10), 200)
    event = AuditEvent.objects.filter(action="shift.prewarm_apply").latest("pk")
    assert event.before["window"]["starts"] == "07:00"
    assert event.after["window"]["starts"] == "06:10"


def test_hand_made_windows_are_never_touched(morning, pool):
    by_hand = [
        PoolSchedule.objects.create(
            pool=pool, weekdays=[1], starts=time(6, 0), ends=time(9, 0), target_ready=5,
            label="Monday rush",
        ),
        # Even one that looks like a planned window: only the shift's own link counts.
        PoolSchedule.objects.create(
            pool=pool, weekdays=[], starts=time(5, 0), ends=time(6, 0), target_ready=1,
            label="prewarm: Morning",
        ),
    ]  # fmt: skip
    prewarm_apply(actor="tester")
    shift_update(shift=morning, fields={"starts_at": time(9, 0)}, actor="tester")
    prewarm_apply(actor="tester")
    for window in by_hand:
        kept = PoolSchedule.objects.get(pk=window.pk)
        assert (kept.starts, kept.target_ready) == (window.starts, window.target_ready)
    assert PoolSchedule.objects.count() == 3
    shift_delete(shift=morning, actor="tester")
    assert set(PoolSchedule.objects.values_list("pk", flat=True)) == {w.pk for w in by_hand}
    deleted = AuditEvent.objects.get(action="shift.delete")
    assert deleted.before["window"]["label"] == "prewarm: Morning"


def test_a_planned_window_removed_by_hand_is_written_again(morning):
    prewarm_apply(actor="tester")
    PoolSchedule.objects.all().delete()
    result = prewarm_apply(actor="tester")
    assert len(result.created) == 1 and PoolSchedule.objects.count() == 1


def test_an_impossible_shift_is_still_prewarmed_as_early_as_allowed(pool, settings):
    settings.PREWARM_MAX_LEAD_HOURS = 1
    pool.max_concurrent_boots = 1
    pool.save()
    shift_create(
        pool=pool, label="Rush", weekdays=[1], starts_at=time(8, 0), ends_at=time(12, 0),
        seats=50, actor="tester",
    )  # fmt: skip
    result = prewarm_apply(actor="tester")
    assert result.impossible == [f"{pool.name}/Rush"]
    assert PoolSchedule.objects.get().starts == time(7, 0)
    event = AuditEvent.objects.get(action="shift.prewarm_apply")
    assert event.after["verdict"] == "impossible" and event.after["problems"]


def test_shift_services_audit_every_change(pool):
    shift = shift_create(
        pool=pool, label="Night", weekdays=[7, 1, 1], starts_at=time(22, 0), ends_at=time(6, 0),
        seats=5, actor="tester",
    )  # fmt: skip
    assert shift.weekdays == [1, 7]
    shift_update(shift=shift, fields={"seats": 6}, actor="tester")
    shift_update(shift=shift, fields={"seats": 6}, actor="tester")  # no change, no record
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
    assert actions == ["shift.create", "shift.update"]
    update = AuditEvent.objects.get(action="shift.update")
    assert (update.before["seats"], update.after["seats"]) == (5, 6)
    with pytest.raises(ValueError):
        shift_update(shift=shift, fields={"schedule": None}, actor="tester")


def test_the_command_prints_the_plan_per_region_and_applies_it(morning, pool, capsys):
    other = VMPoolFactory(max_concurrent_boots=1, max_size=3)
    Shift.objects.create(
        pool=other, label="Big", weekdays=[2], starts_at=time(9, 0), ends_at=time(17, 0), seats=9
    )
    call_command("plan_prewarm")
    out = capsys.readouterr().out
    assert f"Region {pool.region.name}" in out and f"Region {other.region.name}" in out
    assert f"{pool.name}/Morning: 100 seats at 08:00 (Mon,Tue,Wed,Thu,Fri)" in out
    assert "pre-warm from 07:00 (lead 60 min): ok" in out
    assert "! the pool may hold at most 3 VMs" in out
    assert not PoolSchedule.objects.exists()
    call_command("plan_prewarm", "--apply")
    assert "Applied: 2 windows created" in capsys.readouterr().out
    assert PoolSchedule.objects.count() == 2


def test_the_command_without_shifts(db, capsys):
    call_command("plan_prewarm")
    assert "No shifts to plan." in capsys.readouterr().out


def test_the_daily_task_applies_the_plan(morning):
    assert "1 windows created" in prewarm_replan()
    assert AuditEvent.objects.get(action="shift.prewarm_apply").actor == "system"


def test_the_plan_reads_every_shift(morning):
    plan = prewarm_plan()
    assert [p.shift.label for p in plan.shifts] == ["Morning"]
    assert plan.shifts[0].pool.boot_source.startswith("default")


def test_a_window_that_would_last_a_day_or_more_covers_the_prewarming_only(pool, settings):
    # A 14-hour shift with a 12-hour lead: 26 hours from the pre-warm start to the
    # shift's end, which one calendar window cannot hold (it would read as 2 hours).
    pool.max_concurrent_boots = 1
    pool.save()
    shift_create(
        pool=pool, label="Long", weekdays=[2], starts_at=time(6, 0), ends_at=time(20, 0),
        seats=500, actor="tester",
    )  # fmt: skip
    prewarm_apply(actor="tester")
    window = PoolSchedule.objects.get()
    assert (window.starts, window.ends) == (time(18, 0), time(6, 0))
    assert window.weekdays == [1]


def test_an_edit_that_changes_nothing_keeps_the_link_an_apply_just_wrote(morning):
    stale = Shift.objects.get(pk=morning.pk)  # read before the apply
    prewarm_apply(actor="tester")
    shift_update(shift=stale, fields={}, actor="tester")
    assert Shift.objects.get(pk=morning.pk).schedule_id is not None


@pytest.mark.parametrize("weekdays", [[9], ["x"], [0], [True], "1,2", {"1": 1}])
def test_weekdays_outside_1_to_7_are_refused(pool, weekdays):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        shift_create(
            pool=pool, label="Bad", weekdays=weekdays, starts_at=time(8, 0),
            ends_at=time(9, 0), seats=1, actor="tester",
        )  # fmt: skip
    with pytest.raises(ValidationError):
        PoolSchedule(
            pool=pool, weekdays=weekdays, starts=time(8), ends=time(9), target_ready=1
        ).full_clean()
