"""Placement by dynamic priority, a pure function: each rule checked on its own."""

from datetime import UTC, datetime, timedelta

from pools.placement import HostLoad, Unit, free_units, place, priority

UNIT = Unit(vcpus=2, memory_mb=4096, weight=2.0)
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def host(name, **overrides) -> HostLoad:
    values = {
        "name": name,
        "group": "rack-a",
        "up": True,
        "vcpus": 32,
        "memory_mb": 131072,
        "cpu_allocation_ratio": 2.0,
        "ram_allocation_ratio": 1.2,
        "vcpus_used": 0,
        "memory_mb_used": 0,
        "response_ms": 20.0,
        "boots_in_flight": 0,
        "boot_cap": 3,
        "failures_in_row": 0,
        "last_placed_at": None,
    }
    return HostLoad(**{**values, **overrides})


def test_free_units_take_the_scarcer_resource_under_overcommit():
    # CPU: 32 x 2.0 = 64 vCPU -> 32 units; memory: 131072 x 1.2 = 157286 MB -> 38 units.
    assert free_units(host("a"), UNIT) == 32
    # Memory runs out first on a host with little RAM: 16384 x 1.2 / 4096 = 4.8 -> 4.
    assert free_units(host("b", memory_mb=16384), UNIT) == 4
    assert free_units(host("c", vcpus_used=64), UNIT) == 0


def test_priority_is_free_units_times_weight_plus_response_time_times_mu():
    assert priority(host("a", response_ms=100.0), UNIT, mu=-0.05) == 32 * 2.0 - 5.0
    heavy = Unit(vcpus=2, memory_mb=4096, weight=3.0)
    assert priority(host("a", response_ms=0.0), heavy, mu=-0.05) == 96.0


def test_a_slower_host_ranks_lower():
    fast, slow = host("fast", response_ms=5.0), host("slow", response_ms=400.0)
    decision = place([slow, fast], UNIT, mu=-0.05, max_failures=3)
    scores = {c.host: c.priority for c in decision.candidates}
    assert scores["fast"] > scores["slow"]


def test_the_highest_priority_group_is_served_first():
    hosts = [
        host("a1", group="rack-a", vcpus_used=60),  # nearly full rack
        host("b1", group="rack-b"),
        host("b2", group="rack-b"),
    ]
    assert place(hosts, UNIT, mu=-0.05, max_failures=3).group == "rack-b"


def test_hosts_take_turns_inside_a_group():
    hosts = [
        host("a", last_placed_at=T0),
        host("b", last_placed_at=T0 - timedelta(minutes=5)),
        host("c", last_placed_at=T0 - timedelta(minutes=1)),
    ]
    assert place(hosts, UNIT, mu=-0.05, max_failures=3).host == "b"
    never = host("d", vcpus_used=30)  # a never-used host goes first, even if less free
    assert place([*hosts, never], UNIT, mu=-0.05, max_failures=3).host == "d"


def test_ineligible_hosts_say_why():
    hosts = [
        host("down", up=False),
        host("full", vcpus_used=64),
        host("busy", boots_in_flight=3),
        host("flaky", failures_in_row=3),
        host("fine"),
    ]
    decision = place(hosts, UNIT, mu=-0.05, max_failures=3)
    assert decision.host == "fine"
    why = {c.host: c.why_not for c in decision.candidates}
    assert why == {
        "down": "host is down",
        "full": "no free unit",
        "busy": "3 boots in flight, cap 3",
        "flaky": "last 3 boots failed",
        "fine": "",
    }


def test_no_eligible_host_means_no_placement():
    decision = place([host("down", up=False)], UNIT, mu=-0.05, max_failures=3)
    assert decision.host is None and decision.group is None
    assert decision.as_record()["candidates"][0]["why_not"] == "host is down"


def test_the_benchmark_counts_overlapping_boots_exactly():
    from pools.management.commands.bench_refill import max_overlap

    assert max_overlap([]) == 0
    assert max_overlap([(0, 4), (1, 5), (2, 3)]) == 3
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1  # back to back: never two at once
