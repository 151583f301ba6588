"""The boot-storm planner's math, rule by rule, on plain data (no database)."""

from collections import Counter
from datetime import time

import pytest

from pools.prewarm import (
    TICK,
    WEEK_TICKS,
    HostFacts,
    Limits,
    PoolFacts,
    RegionFacts,
    ShiftDemand,
    boot_seconds_observed,
    plan_prewarm,
)
from pools.prewarm_chart import chart, clock, region_curve

MONDAY = (1,)
NO_MARGIN = 0


def pool(pool_id=1, *, region_id=10, cap=1000, boot=60, max_size=100000, **extra):
    return PoolFacts(
        pool_id=pool_id,
        name=f"pool-{pool_id}",
        region_id=region_id,
        max_concurrent_boots=cap,
        max_size=max_size,
        boot_seconds=boot,
        **extra,
    )


def region(region_id=10, *, cap=None, hosts=None, **extra):
    return RegionFacts(
        region_id=region_id, name=f"region-{region_id}", max_concurrent_boots=cap, hosts=hosts,
        **extra,
    )  # fmt: skip


def shift(key=1, *, pool_id=1, seats=10, starts=time(8, 0), ends=time(16, 0), days=MONDAY):
    return ShiftDemand(
        key=key,
        label=f"shift-{key}",
        pool_id=pool_id,
        weekdays=days,
        starts_at=starts,
        ends_at=ends,
        seats=seats,
    )


def limits(*, cap=100000, per_minute=100000, margin=600, max_lead=12 * 3600):
    return Limits(
        max_concurrent_boots=cap,
        max_boots_per_minute=per_minute,
        margin_seconds=margin,
        max_lead_seconds=max_lead,
    )


def plan_of(shifts, pools, regions, lims):
    return plan_prewarm(
        shifts, {p.pool_id: p for p in pools}, {r.region_id: r for r in regions}, lims
    )


def concurrency(plan, *, region_id=None, pool_id=None) -> int:
    """The most boots of the plan running at one tick, counted from scratch."""
    running = Counter()
    for occ in plan.occurrences:
        if region_id is not None and occ.region_id != region_id:
            continue
        if pool_id is not None and occ.pool_id != pool_id:
            continue
        for tick, count in occ.starts.items():
            for i in range(occ.boot_ticks):
                running[(tick + i) % WEEK_TICKS] += count
    return max(running.values(), default=0)


def test_one_shift_bound_by_its_pool_cap_boots_in_waves():
    # 100 seats, 10 at a time, 5 minutes each: 10 waves = 50 min, plus 10 min margin.
    plan = plan_of([shift(seats=100)], [pool(cap=10, boot=300)], [region()], limits())
    planned = plan.shifts[0]
    assert planned.ok and planned.verdict == "ok"
    assert planned.lead_seconds == 3600 and planned.lead_text == "1 h 00 min"
    assert planned.prewarm_start == time(7, 0) and planned.days_before == 0
    assert planned.limited_by.startswith("pool boot cap")
    assert planned.window_weekdays == [1]
    assert concurrency(plan) == 10
    occurrence = plan.occurrences[0]
    assert occurrence.placed == 100
    # Every boot ends by the deadline (shift start minus the margin), none earlier
    # than needed: the last wave ends exactly at the deadline.
    deadline = occurrence.start_tick - 600 // TICK
    assert max(occurrence.starts) + occurrence.boot_ticks == deadline


def test_the_sum_of_the_up_hosts_boot_caps_binds_before_the_region_cap():
    hosts = tuple(HostFacts(boot_cap=2) for _ in range(3))  # 6 at once
    plan = plan_of(
        [shift(seats=60)], [pool(cap=50, boot=120)], [region(cap=20, hosts=hosts)], limits()
    )
    planned = plan.shifts[0]
    # 60 seats, 6 at a time: 10 waves of 2 minutes, plus the margin.
    assert planned.lead_seconds == 10 * 120 + 600
    assert planned.limited_by.startswith("host boot caps (3 up hosts): 6")
    assert concurrency(plan, region_id=10) == 6


def test_the_region_cap_binds_when_the_hosts_could_boot_more():
    hosts = tuple(HostFacts(boot_cap=3) for _ in range(10))  # 30 at once
    plan = plan_of(
        [shift(seats=40)], [pool(cap=50, boot=60)], [region(cap=4, hosts=hosts)], limits()
    )
    planned = plan.shifts[0]
    assert planned.lead_seconds == 10 * 60 + 600
    assert planned.limited_by.startswith("region boot cap")
    assert concurrency(plan, region_id=10) == 4


def test_the_boots_per_minute_limit_spreads_the_starts():
    plan = plan_of([shift(seats=50)], [pool(boot=60)], [region()], limits(per_minute=5))
    planned = plan.shifts[0]
    # 5 boots a minute: 10 groups, the last starting a boot time before the deadline.
    assert planned.lead_seconds == 60 + 9 * 60 + 600
    assert planned.limited_by == "boots per minute"
    starts = plan.occurrences[0].starts
    assert sorted(starts.values()) == [5] * 10
    ticks = sorted(starts)
    assert all(
        later - earlier == 60 // TICK for earlier, later in zip(ticks, ticks[1:], strict=False)
    )


def test_the_global_cap_binds_like_any_other():
    plan = plan_of([shift(seats=30)], [pool(boot=60)], [region()], limits(cap=3))
    planned = plan.shifts[0]
    assert planned.lead_seconds == 10 * 60 + 600
    assert planned.limited_by == "global boot cap"


def test_two_shifts_of_a_region_share_its_cap_and_the_earlier_is_served_first():
    pools = [pool(1, boot=60), pool(2, boot=60)]
    regions = [region(cap=10)]
    early = shift(1, pool_id=1, seats=40, starts=time(8, 0))
    late = shift(2, pool_id=2, seats=40, starts=time(8, 2))
    alone_early = plan_of([early], pools, regions, limits()).shifts[0]
    alone_late = plan_of([late], pools, regions, limits()).shifts[0]
    together = {p.shift.key: p for p in plan_of([late, early], pools, regions, limits()).shifts}
    # The earlier shift's plan is what it would be alone (4 waves of a minute) ...
    assert together[1].lead_seconds == alone_early.lead_seconds == 4 * 60 + 600
    # ... and the later one, finding the cap taken until 07:50, starts earlier
    # than it would alone: 2 waves fit between 07:50 and its deadline 07:52, the
    # other 2 before the first shift's boots, from 07:44.
    assert alone_late.lead_seconds == 4 * 60 + 600
    assert together[2].prewarm_start == time(7, 44)
    assert together[2].lead_seconds == 18 * 60
    plan = plan_of([late, early], pools, regions, limits())
    assert concurrency(plan, region_id=10) == 10


def test_shifts_in_different_regions_or_on_different_days_do_not_share():
    pools = [pool(1, region_id=10, boot=60), pool(2, region_id=20, boot=60), pool(3, boot=60)]
    regions = [region(10, cap=10), region(20, cap=10)]
    shifts = [
        shift(1, pool_id=1, seats=40),
        shift(2, pool_id=2, seats=40),
        shift(3, pool_id=3, seats=40, days=(2,)),
    ]
    plan = plan_of(shifts, pools, regions, limits())
    assert {p.lead_seconds for p in plan.shifts} == {4 * 60 + 600}


def test_a_lead_past_midnight_starts_the_window_the_day_before():
    plan = plan_of(
        [shift(seats=100, starts=time(0, 30), days=(1, 3))],
        [pool(cap=10, boot=300)],
        [region()],
        limits(),
    )
    planned = plan.shifts[0]
    assert planned.prewarm_start == time(23, 30) and planned.days_before == 1
    assert planned.window_weekdays == [2, 7]  # Sunday for Monday, Tuesday for Wednesday
    assert planned.prewarm_label == "23:30 the day before"
    assert planned.ok


def test_every_day_when_no_weekday_is_given():
    plan = plan_of([shift(seats=10, days=())], [pool(cap=10, boot=60)], [region()], limits())
    assert len(plan.occurrences) == 7
    assert plan.shifts[0].window_weekdays == []


def test_impossible_when_even_the_longest_lead_does_not_boot_every_seat():
    plan = plan_of([shift(seats=100)], [pool(cap=1, boot=300)], [region()], limits(max_lead=3600))
    planned = plan.shifts[0]
    assert not planned.ok and planned.verdict == "impossible"
    # An hour minus the margin holds 10 boots of 5 minutes, one at a time.
    assert planned.shortfall == 90
    assert "90 of 100 desktops would not be ready on Mon" in planned.problems[0]
    # It is still pre-warmed as early as allowed.
    assert planned.prewarm_start == time(7, 0)


def test_impossible_when_the_hosts_cannot_hold_the_desktops():
    hosts = (HostFacts(boot_cap=5, vcpus=64, memory_mb=8192),)
    plan = plan_of(
        [shift(seats=3)],
        [pool(boot=60, vcpus=2, memory_mb=4096)],
        [region(hosts=hosts)],
        limits(),
    )
    planned = plan.shifts[0]
    assert not planned.ok
    assert "not enough host capacity" in planned.problems[0]
    assert "12288 MB" in planned.problems[0]


def test_shifts_at_work_together_add_up_against_host_capacity():
    hosts = (HostFacts(boot_cap=5, vcpus=64, memory_mb=10 * 4096),)
    pools = [pool(1, boot=60, memory_mb=4096), pool(2, boot=60, memory_mb=4096)]
    day = shift(1, pool_id=1, seats=6, starts=time(8, 0), ends=time(16, 0))
    overlapping = shift(2, pool_id=2, seats=6, starts=time(12, 0), ends=time(20, 0))
    evening = shift(2, pool_id=2, seats=6, starts=time(16, 0), ends=time(23, 0))

    def verdicts(shifts):
        plan = plan_of(shifts, pools, [region(hosts=hosts)], limits())
        return {p.shift.key: p.ok for p in plan.shifts}

    # 12 desktops of 4 GB at work from noon, where the hosts hold 10; none later.
    assert verdicts([day, overlapping]) == {1: True, 2: False}
    assert verdicts([day, evening]) == {1: True, 2: True}


def test_impossible_with_no_up_host_a_disabled_pool_or_too_small_a_pool():
    plan = plan_of([shift()], [pool()], [region(hosts=())], limits())
    assert plan.shifts[0].problems == ["no host of the region is up"]
    assert plan.occurrences[0].placed == 0
    plan = plan_of([shift()], [pool(enabled=False)], [region()], limits())
    assert plan.shifts[0].problems == ["the pool is disabled: nothing boots"]
    plan = plan_of([shift(seats=20)], [pool(max_size=10)], [region()], limits())
    assert plan.shifts[0].problems == ["the pool may hold at most 10 VMs"]


def test_no_host_inventory_means_no_host_cap():
    plan = plan_of([shift(seats=20)], [pool(cap=20, boot=60)], [region(hosts=None)], limits())
    assert plan.shifts[0].lead_seconds == 60 + 600


def test_margin_is_kept_between_the_last_boot_and_the_shift():
    one = plan_of([shift(seats=10)], [pool(cap=10, boot=60)], [region()], limits(margin=0))
    two = plan_of([shift(seats=10)], [pool(cap=10, boot=60)], [region()], limits(margin=900))
    assert two.shifts[0].lead_seconds - one.shifts[0].lead_seconds == 900


@pytest.mark.parametrize(
    "samples, expected",
    [
        ([200, 210, 220, 230, 900], (220.0, "median of 5 recent boots")),
        ([200, 210], (300.0, "default (2 recent boots, 5 needed)")),
        ([1, 2, 2, 3, 1], (30.0, "median of 5 recent boots, raised to the floor")),
    ],
)
def test_boot_time_from_observation(samples, expected):
    assert boot_seconds_observed(samples, default=300, floor=30) == expected


def test_a_longer_observed_boot_means_an_earlier_start():
    fast, _ = boot_seconds_observed([60] * 10, default=300, floor=30)
    slow, _ = boot_seconds_observed([240] * 10, default=300, floor=30)
    leads = [
        plan_of([shift(seats=50)], [pool(cap=10, boot=b)], [region()], limits()).shifts[0]
        for b in (fast, slow)
    ]
    assert leads[1].lead_seconds - leads[0].lead_seconds == 5 * (240 - 60)


def test_the_curve_reaches_the_seats_by_the_shift_start():
    plan = plan_of([shift(seats=100)], [pool(cap=10, boot=300)], [region()], limits())
    curve = region_curve(plan, 10, 1)
    at_start = plan.occurrences[0].start_tick - curve.first_tick
    assert curve.ready[at_start] == 100 == curve.needed[at_start]
    assert curve.needed[at_start - 1] == 0
    assert max(curve.booting) == 10
    assert region_curve(plan, 10, 2) is None
    drawn = chart(curve)
    assert drawn.peak_booting == 10
    assert len(drawn.ready.split()) <= 302
    assert drawn.shift_marks[0][1] == "shift-1 08:00"
    assert [label for _, label in drawn.x_ticks][:2] == ["07:00", "07:10"]
    assert clock(0, 1) == "00:00" and clock(0, 2) == "Mon 00:00"


def test_a_large_plan_is_quick():
    import time as clock_time

    pools = [pool(i, cap=50, boot=300) for i in range(1, 11)]
    shifts = [shift(i, pool_id=i, seats=1000, days=(1, 2, 3, 4, 5)) for i in range(1, 11)]
    hosts = tuple(HostFacts(boot_cap=3) for _ in range(100))
    began = clock_time.perf_counter()
    plan = plan_of(shifts, pools, [region(cap=200, hosts=hosts)], limits())
    assert clock_time.perf_counter() - began < 5
    assert all(p.ok for p in plan.shifts)
    assert concurrency(plan, region_id=10) == 200
