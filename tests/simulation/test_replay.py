"""The working-day placement replay: its event stream, the three policies, the
host failure, the load-balance measure and the command."""

import random
from dataclasses import dataclass

import pytest
from django.core.management import CommandError, call_command

from pools.placement import Unit, place
from portal.models import AuditEvent
from simulation.models import PlacementRun
from simulation.replay import (
    ReplayConfig,
    build_day,
    coefficient_of_variation,
    compare,
    summary,
)
from simulation.replay_policies import (
    REFUSED,
    WAIT,
    dynamic_priority,
    host_load,
    normalise,
    nova_weigher,
    nova_weights,
    round_robin,
)


@dataclass
class FakeHost:
    name: str
    vcpus: int = 64
    memory_mb: int = 256 * 1024
    vcpus_used: int = 0
    memory_mb_used: int = 0
    group: str = "g"
    up: bool = True
    cpu_allocation_ratio: float = 2.0
    ram_allocation_ratio: float = 1.2
    boot_cap: int = 3
    boots_in_flight: int = 0
    response_ms: float = 5.0
    last_placed_at: float | None = None


AGENT = Unit(vcpus=2, memory_mb=4096, weight=2.0)
SMALL = ReplayConfig(hosts=10, seats=400)


@pytest.fixture(scope="module")
def small_report():
    return compare(SMALL)


def test_the_day_is_the_same_for_the_same_seed():
    first, again = build_day(ReplayConfig(seed=7)), build_day(ReplayConfig(seed=7))
    assert first.events == again.events
    assert first.hosts == again.hosts
    other = build_day(ReplayConfig(seed=8))
    assert [e.at for e in other.events] != [e.at for e in first.events]


def test_the_day_has_logins_logouts_swaps_and_one_host_failure():
    day = build_day(ReplayConfig(seats=1000))
    kinds = [e.kind for e in day.events]
    assert kinds.count("login") == kinds.count("logout") == 1000 == len(day.users)
    assert kinds.count("swap") > 0
    assert kinds.count("host-failure") == 1
    failed = next(e.host for e in day.events if e.kind == "host-failure")
    assert next(h.group for h in day.hosts if h.name == failed) == "large"
    assert [e.at for e in day.events] == sorted(e.at for e in day.events)
    assert {h.group for h in day.hosts} == {"large", "medium", "small"}
    assert not any(
        e.kind == "host-failure" for e in build_day(ReplayConfig(host_failure=False)).events
    )


def test_round_robin_cycles_the_hosts_and_skips_those_without_room():
    hosts = [FakeHost("a"), FakeHost("b"), FakeHost("c")]
    policy = round_robin()
    assert [policy(hosts, AGENT, 0).host for _ in range(4)] == ["a", "b", "c", "a"]
    hosts[1].up = False
    hosts[2].memory_mb_used = hosts[2].memory_mb * 2  # full
    assert [policy(hosts, AGENT, 0).host for _ in range(2)] == ["a", "a"]
    hosts[0].up = False
    assert policy(hosts, AGENT, 0) == REFUSED


def test_round_robin_ignores_boot_caps():
    hosts = [FakeHost("a", boots_in_flight=3), FakeHost("b", boots_in_flight=3)]
    assert round_robin()(hosts, AGENT, 0).host == "a"


def test_nova_normalises_like_nova():
    assert normalise([0.0, 50.0, 100.0]) == [0.0, 0.5, 1.0]
    # The RAM and CPU weighers have minval 0: negatives count as 0, the scale is the top.
    assert normalise([-10.0, 20.0, 40.0]) == [0.0, 0.5, 1.0]
    # With the floor fixed at 0, equal weights are all the best (1.0), not all 0.
    assert normalise([30.0, 30.0]) == [1.0, 1.0]
    assert normalise([0.0, -5.0]) == [0.0, 0.0]


def test_nova_picks_the_most_normalised_free_ram_plus_vcpu():
    hosts = [
        # Most free RAM (1.0) but little CPU (16 of 128 free: 0.125): 1.125.
        FakeHost("ram-rich", vcpus=64, vcpus_used=112, memory_mb=256 * 1024),
        # 0.75 of the best free RAM and the most free vCPUs (1.0): 1.75.
        FakeHost("balanced", vcpus=64, vcpus_used=0, memory_mb=192 * 1024),
        # Small on both.
        FakeHost("small", vcpus=32, vcpus_used=0, memory_mb=64 * 1024),
    ]
    weights = nova_weights(hosts)
    assert weights[0] == pytest.approx(1.125)
    assert weights[1] == pytest.approx(1.75)
    assert nova_weigher()(hosts, AGENT, 0).host == "balanced"


def test_nova_filters_hosts_that_do_not_fit_before_weighing():
    hosts = [
        # The emptiest by RAM, but no vCPU left under the 2.0 ratio.
        FakeHost("no-vcpu", vcpus=64, vcpus_used=127, memory_mb=512 * 1024),
        FakeHost("fits", vcpus=64, vcpus_used=100, memory_mb=64 * 1024),
        FakeHost("down", up=False),
    ]
    assert nova_weigher()(hosts, AGENT, 0).host == "fits"
    hosts[1].memory_mb_used = int(64 * 1024 * 1.2)
    assert nova_weigher()(hosts, AGENT, 0) == REFUSED


def test_dynamic_priority_chooses_what_place_chooses():
    """Leaving out the hosts `place` would pass over must not change its choice."""
    rng = random.Random(3)
    policy = dynamic_priority(mu=-0.05, max_failures=3)
    for _ in range(200):
        hosts = [
            FakeHost(
                f"h{i}",
                group=rng.choice(["x", "y", "z"]),
                vcpus_used=rng.randrange(0, 130),
                memory_mb_used=rng.randrange(0, 300 * 1024),
                boots_in_flight=rng.randrange(0, 4),
                up=rng.random() > 0.1,
                response_ms=rng.uniform(2, 40),
                last_placed_at=rng.choice([None, rng.uniform(0, 100)]),
            )
            for i in range(8)
        ]
        loads = [host_load(h) for h in hosts]
        expected = place(loads, AGENT, mu=-0.05, max_failures=3).host
        assert policy(hosts, AGENT, 0).host == expected


def test_dynamic_priority_waits_at_the_boot_caps_and_refuses_when_full():
    policy = dynamic_priority(mu=-0.05, max_failures=3)
    busy = [FakeHost("a", boots_in_flight=3), FakeHost("b", boots_in_flight=3)]
    assert policy(busy, AGENT, 0) == WAIT
    full = [FakeHost("a", memory_mb_used=400 * 1024), FakeHost("b", up=False)]
    assert policy(full, AGENT, 0) == REFUSED


def test_the_coefficient_of_variation():
    assert coefficient_of_variation([0.5, 0.5, 0.5]) == 0.0
    assert coefficient_of_variation([0.5, 1.5]) == pytest.approx(0.5)
    assert coefficient_of_variation([]) == 0.0
    assert coefficient_of_variation([0.0, 0.0]) == 0.0


def test_a_summary_takes_the_nearest_rank_p95():
    assert summary(list(range(1, 101))) == {"count": 100, "mean": 50.5, "p95": 95, "max": 100}
    assert summary([7.0])["p95"] == 7.0
    assert summary([]) == {"count": 0, "mean": 0.0, "p95": 0.0, "max": 0.0}


def test_every_policy_replays_the_same_day(small_report):
    report = small_report
    assert [p["key"] for p in report["policies"]] == ["dynamic", "round-robin", "nova"]
    for policy in report["policies"]:
        # Every login is served once, whatever the policy.
        assert policy["login_wait"]["count"] == report["region"]["users"] == 400
        assert policy["boot_wait"]["count"] > 400  # pre-warm, refills, swaps, evacuation
        assert 0 < policy["cv_cpu_peak"] < 1
        assert policy["curve"][0][0] == 6 * 60


def test_the_host_failure_moves_its_users_elsewhere(small_report):
    report = small_report
    for policy in report["policies"]:
        failures = policy["failures"]
        assert failures["users_displaced"] > 0
        # Everyone displaced got a desktop again, on another host.
        assert policy["evacuation_wait"]["count"] == failures["users_displaced"]
        assert failures["never_served_evacuated"] == 0
        assert failures["refused_evacuations"] == 0


def test_a_host_failure_with_too_little_room_left_counts_the_failures():
    # Ten hosts hold about 870 agents; 900 seats leave no room for the evacuation.
    report = compare(ReplayConfig(hosts=10, seats=900))
    for policy in report["policies"]:
        failures = policy["failures"]
        assert failures["refused_evacuations"] > 0
        assert failures["refused"] >= failures["refused_evacuations"]
        assert failures["never_served"] > 0
        assert policy["evacuation_wait"]["count"] < failures["users_displaced"]


def test_without_the_host_failure_nobody_is_displaced():
    report = compare(ReplayConfig(hosts=10, seats=400, host_failure=False))
    assert report["region"]["failed_host"] is None
    assert all(p["failures"]["users_displaced"] == 0 for p in report["policies"])


@pytest.mark.django_db
def test_the_command_prints_the_table_writes_the_chart_and_saves(tmp_path, capsys):
    chart = tmp_path / "placement.svg"
    call_command(
        "simulate_placement", "--hosts", "10", "--seats", "400", "--svg", str(chart), "--save"
    )
    out = capsys.readouterr().out
    assert "| measure | Dynamic priority | Round-robin | Nova weigher |" in out
    assert "host CPU CV at the peak" in out
    assert chart.read_text().startswith("<svg") and "polyline" in chart.read_text()
    run = PlacementRun.objects.get()
    assert run.status == PlacementRun.Status.DONE
    assert run.parameters["hosts"] == 10 and len(run.results["policies"]) == 3
    assert AuditEvent.objects.filter(
        action="simulation.placement_run", object_id=str(run.pk)
    ).exists()


@pytest.mark.django_db
def test_the_command_refuses_a_bad_size():
    with pytest.raises(CommandError):
        call_command("simulate_placement", "--hosts", "0")
