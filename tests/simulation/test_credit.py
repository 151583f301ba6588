"""The Credit scheduler simulator and the BOOST variant, one rule at a time, and
the figures they produce."""

import pytest

from simulation.credit import (
    CREDIT_MAX,
    PERIODIC,
    CreditScheduler,
    compare,
    simulate,
)
from simulation.workloads import (
    DEFAULT_CLASSES,
    ClassParams,
    MixError,
    Workload,
    default_mix,
    parse_mix,
)

# Never sleeps: always wants the CPU.
CPU = Workload("cpu", burst_ms=(1000, 1000), think_ms=(0, 0))
# One burst of 60 ms (two slices), then asleep for the rest of the test.
ONE_LONG_BURST = Workload("long", burst_ms=(60, 60), think_ms=(100_000, 100_000))
ONE_SHORT_BURST = Workload("short", burst_ms=(5, 5), think_ms=(100_000, 100_000))
PLAIN = ClassParams("plain", "Plain")


def names(scheduler, pcpu=None):
    """The dispatches as (time, vCPU) pairs, of one pCPU if given."""
    return [(t, name) for t, p, name in scheduler.dispatches if pcpu is None or p == pcpu]


def started(pcpus=1, **options):
    scheduler = CreditScheduler(pcpus, trace=True, **options)
    return scheduler


def set_credit(scheduler, credits):
    scheduler.start()
    by_name = {v.vm.name: v for v in scheduler.vcpus}
    for name, credit in credits.items():
        by_name[name].credit = credit
    return by_name


# Credit.


def test_a_tick_debits_100_credits_from_the_running_vcpu_only():
    scheduler = started()
    scheduler.add_vm("a", PLAIN, CPU, start_ms=0)
    scheduler.add_vm("b", PLAIN, CPU, start_ms=0)
    vcpus = set_credit(scheduler, {"a": 500, "b": 500})
    scheduler.run(11)
    assert vcpus["a"].credit == 400
    assert vcpus["b"].credit == 500  # queued, not running: not debited
    scheduler.run(21)
    assert vcpus["a"].credit == 300


def test_a_burst_between_two_ticks_pays_nothing():
    scheduler = started()
    scheduler.add_vm("a", PLAIN, ONE_SHORT_BURST, start_ms=2)
    vcpus = set_credit(scheduler, {"a": 500})
    scheduler.run(50)
    assert vcpus["a"].credit == 500
    assert scheduler.stats["plain"].cpu_ms == 5


def test_a_slice_is_30_ms():
    scheduler = started()
    scheduler.add_vm("a", PLAIN, CPU, start_ms=0)
    scheduler.add_vm("b", PLAIN, CPU, start_ms=0)
    set_credit(scheduler, {"a": CREDIT_MAX, "b": CREDIT_MAX})
    scheduler.run(61)
    assert names(scheduler) == [(0, "a/0"), (30, "b/0"), (60, "a/0")]


def test_under_runs_before_over_whatever_the_arrival_order():
    scheduler = started()
    scheduler.add_vm("first", PLAIN, CPU, start_ms=0)
    scheduler.add_vm("over", PLAIN, CPU, start_ms=0)
    scheduler.add_vm("under", PLAIN, CPU, start_ms=0)
    set_credit(scheduler, {"first": CREDIT_MAX, "over": -100, "under": CREDIT_MAX})
    scheduler.run(31)
    # "over" was queued before "under" but has no credit left.
    assert names(scheduler) == [(0, "first/0"), (30, "under/0")]


def test_fifo_within_a_priority():
    scheduler = started()
    scheduler.add_vm("c", PLAIN, ONE_LONG_BURST, start_ms=3)
    scheduler.add_vm("b", PLAIN, ONE_LONG_BURST, start_ms=2)
    scheduler.add_vm("a", PLAIN, CPU, start_ms=0)
    set_credit(scheduler, {"a": CREDIT_MAX, "b": CREDIT_MAX, "c": CREDIT_MAX})
    scheduler.run(61)
    # b woke before c, so it runs first although c was added first.
    assert names(scheduler) == [(0, "a/0"), (30, "b/0"), (60, "c/0")]


def test_a_vcpu_that_used_its_slice_goes_to_the_tail():
    scheduler = started()
    for name in ("a", "b", "c"):
        scheduler.add_vm(name, PLAIN, CPU, start_ms=0)
    set_credit(scheduler, {"a": CREDIT_MAX, "b": CREDIT_MAX, "c": CREDIT_MAX})
    scheduler.run(91)
    assert [n for _, n in names(scheduler)] == ["a/0", "b/0", "c/0", "a/0"]


def test_a_vcpu_crossing_into_over_at_a_tick_leaves_for_the_over_tail():
    scheduler = started()
    scheduler.add_vm("a", PLAIN, CPU, start_ms=0)
    scheduler.add_vm("b", PLAIN, CPU, start_ms=0)
    set_credit(scheduler, {"a": 150, "b": CREDIT_MAX})
    scheduler.run(21)
    # a's credit went from 50 to -50 at the tick of 20 ms, before its slice ended.
    assert names(scheduler) == [(0, "a/0"), (20, "b/0")]


def test_credits_are_refilled_only_when_every_active_vcpu_is_over():
    scheduler = started()
    scheduler.add_vm("a", PLAIN, CPU, start_ms=0)
    scheduler.add_vm("b", PLAIN, CPU, start_ms=0)
    vcpus = set_credit(scheduler, {"a": 150, "b": 150})
    assert scheduler.refills == 1  # the first hand-out at time 0
    scheduler.run(40)
    assert scheduler.refills == 1  # a went OVER at 20 ms, but b was still UNDER
    scheduler.run(41)
    assert scheduler.refills == 2  # b went OVER at 40 ms: everyone is OVER
    # One period (300 credits for one CPU) split by weight between the two VMs.
    assert vcpus["a"].credit == pytest.approx(-50 + 150)
    assert vcpus["b"].credit == pytest.approx(-50 + 150)


def test_periodic_accounting_refills_every_30_ms():
    scheduler = started(accounting=PERIODIC)
    scheduler.add_vm("a", PLAIN, CPU, start_ms=0)
    scheduler.run(91)
    assert scheduler.refills == 1 + 3


def test_a_cap_limits_the_cpu_share():
    scheduler = started()
    capped = ClassParams("capped", "Capped", cpu_cap_percent=25)
    scheduler.add_vm("a", capped, CPU, start_ms=0)
    scheduler.run(1000)
    result = scheduler.result()
    # Alone on the CPU it could take all of it; the cap leaves it 25 ms per 100 ms.
    assert result.by_class()["capped"].cpu_ms_per_s == 250
    assert result.utilisation == pytest.approx(0.25)


def test_a_vcpu_that_wakes_with_its_cap_used_waits_for_the_next_period():
    scheduler = started()
    half = ClassParams("half", "Half", cpu_cap_percent=50)
    # Each 50 ms burst uses exactly the 50 ms quota of a 100 ms period, and the
    # next wake-up comes 10 ms later, still inside the period.
    hits_cap = Workload("hits-cap", burst_ms=(50, 50), think_ms=(10, 10))
    scheduler.add_vm("a", half, hits_cap, start_ms=0)
    scheduler.run(201)
    # Woken at 60 and 160, it first runs when the next period starts (the other
    # dispatches are the same burst going on after crossing into OVER).
    dispatched = [t for t, _ in names(scheduler)]
    assert 100 in dispatched and 200 in dispatched
    assert [t for t in dispatched if t % 100 >= 50] == []
    stats = scheduler.stats["half"]
    assert stats.latencies == [0, 40, 40]
    assert stats.responses == [50, 90]
    result = scheduler.result().by_class()["half"]
    assert result.latency_p95_ms == 40


@pytest.mark.parametrize("accounting", ["paper", PERIODIC])
def test_weights_share_the_cpu_in_proportion_under_contention(accounting):
    scheduler = CreditScheduler(1, accounting=accounting)
    scheduler.add_vm("heavy", ClassParams("heavy", "Heavy", weight=2.0), CPU)
    scheduler.add_vm("light", ClassParams("light", "Light", weight=1.0), CPU)
    scheduler.run(20_000)
    figures = scheduler.result().by_class()
    ratio = figures["heavy"].cpu_ms_per_s / figures["light"].cpu_ms_per_s
    assert ratio == pytest.approx(2.0, rel=0.05)


def test_a_cpu_with_only_over_work_steals_under_but_never_over():
    scheduler = started(2)
    scheduler.add_vm("x", PLAIN, CPU, pcpu=0, start_ms=0)
    scheduler.add_vm("o", PLAIN, CPU, pcpu=0, start_ms=0)
    scheduler.add_vm("u", PLAIN, ONE_SHORT_BURST, pcpu=0, start_ms=0)
    scheduler.add_vm("y", PLAIN, CPU, pcpu=1, start_ms=0)
    set_credit(scheduler, {"x": CREDIT_MAX, "o": -100, "u": CREDIT_MAX, "y": -100})
    scheduler.run(6)
    # CPU 1 had only OVER work (y): it took the UNDER u from CPU 0's queue, and
    # once u was done it ran its own y, leaving CPU 0's OVER o where it was.
    assert names(scheduler, pcpu=1) == [(0, "u/0"), (5, "y/0")]
    assert scheduler.steals == 1
    assert scheduler.pcpus[0].over[0].name == "o/0"


def test_an_idle_cpu_takes_over_work_only_when_no_under_waits():
    scheduler = started(2)
    scheduler.add_vm("x", PLAIN, CPU, pcpu=0, start_ms=0)
    scheduler.add_vm("o", PLAIN, CPU, pcpu=0, start_ms=0)
    set_credit(scheduler, {"x": CREDIT_MAX, "o": -100})
    scheduler.run(1)
    # Nothing else to do: CPU 1 runs the OVER vCPU rather than idle (Xen's rule).
    assert names(scheduler, pcpu=1) == [(0, "o/0")]


# BOOST.

URGENT = ClassParams("urgent", "Urgent", boost_factor=3)
LESS_URGENT = ClassParams("less", "Less urgent", boost_factor=1)
MIDDLE = ClassParams("middle", "Middle", boost_factor=2)


def boost_queue(scheduler):
    return [(v.name, v.boost_key) for v in scheduler.pcpus[0].boost]


def test_the_boost_queue_is_ordered_by_factor():
    scheduler = started(boost=True)
    for name, params in (("one", LESS_URGENT), ("three", URGENT), ("two", MIDDLE)):
        scheduler.add_vm(name, params, CPU, pcpu=0)
    vcpus = set_credit(scheduler, {"one": 500, "three": 500, "two": 500})
    for name in ("one", "three", "two"):
        scheduler._enqueue(vcpus[name], scheduler.pcpus[0], slice_ended=True)
    # Ordered by the factor left after the boost, highest first.
    assert boost_queue(scheduler) == [("three/0", 2), ("two/0", 1), ("one/0", 0)]


def test_each_boosted_slice_spends_one_factor_and_wakeups_are_not_boosted():
    scheduler = started(boost=True)
    scheduler.add_vm("u", URGENT, CPU, pcpu=0)
    vcpus = set_credit(scheduler, {"u": 500})
    vm = vcpus["u"].vm
    scheduler._enqueue(vcpus["u"], scheduler.pcpus[0], slice_ended=True)
    assert vm.factor == 2 and boost_queue(scheduler) == [("u/0", 2)]
    scheduler.pcpus[0].boost.clear()
    # The paper boosts a vCPU at the end of its slice, not when it wakes up...
    scheduler._enqueue(vcpus["u"], scheduler.pcpus[0], slice_ended=False)
    assert vm.factor == 2 and list(scheduler.pcpus[0].under) == [vcpus["u"]]
    # ...and a vCPU out of credit goes OVER, boost or not.
    vcpus["u"].credit = -1
    scheduler._enqueue(vcpus["u"], scheduler.pcpus[0], slice_ended=True)
    assert vm.factor == 2 and scheduler.pcpus[0].over[-1] is vcpus["u"]


def test_boost_is_served_before_under():
    scheduler = started(boost=True)
    scheduler.add_vm("plain", PLAIN, CPU, pcpu=0)
    scheduler.add_vm("u", URGENT, CPU, pcpu=0)
    vcpus = set_credit(scheduler, {"plain": 500, "u": 500})
    pcpu = scheduler.pcpus[0]
    scheduler._enqueue(vcpus["plain"], pcpu, slice_ended=False)
    scheduler._enqueue(vcpus["u"], pcpu, slice_ended=True)
    assert scheduler._pick(pcpu) is vcpus["u"]
    assert scheduler._pick(pcpu) is vcpus["plain"]


def test_factors_are_refilled_with_the_credits():
    scheduler = started(boost=True)
    scheduler.add_vm("u", URGENT, CPU, pcpu=0)
    vcpus = set_credit(scheduler, {"u": 500})
    vm = vcpus["u"].vm
    vm.factor = 0
    scheduler._refill()
    assert vm.factor == 3


def test_a_boosted_vcpu_keeps_the_cpu_at_the_end_of_its_slice():
    """One 60 ms burst (two slices) against two CPU-bound vCPUs with credit: under
    Credit it waits behind both after its first slice; under BOOST it goes on."""

    def response(boost):
        scheduler = started(boost=boost)
        scheduler.add_vm("u", URGENT, ONE_LONG_BURST, start_ms=0)
        scheduler.add_vm("a", PLAIN, CPU, start_ms=0)
        scheduler.add_vm("b", PLAIN, CPU, start_ms=0)
        set_credit(scheduler, {"u": CREDIT_MAX, "a": CREDIT_MAX, "b": CREDIT_MAX})
        scheduler.run(200)
        return scheduler.stats["urgent"].responses

    assert response(boost=False) == [120]
    assert response(boost=True) == [60]


def test_boosting_wakeups_lowers_the_urgent_class_latency():
    """With the wake-up extension, a waking urgent vCPU jumps the queue."""

    def latency(boost):
        scheduler = started(boost=boost, boost_wakeups=True)
        scheduler.add_vm("a", PLAIN, CPU, start_ms=0)
        scheduler.add_vm("b", PLAIN, CPU, start_ms=0)
        scheduler.add_vm("u", URGENT, ONE_SHORT_BURST, start_ms=5)
        set_credit(scheduler, {"u": CREDIT_MAX, "a": CREDIT_MAX, "b": CREDIT_MAX})
        scheduler.run(200)
        return scheduler.stats["urgent"].latencies

    assert latency(boost=False) == [55]  # behind a's slice and b's
    assert latency(boost=True) == [25]  # right after a's slice


# Runs and figures.


def test_the_same_seed_gives_the_same_figures_and_another_seed_others():
    mix = default_mix()
    first = simulate(mix, pcpus=8, seconds=2, seed=7, boost=True)
    again = simulate(mix, pcpus=8, seconds=2, seed=7, boost=True)
    other = simulate(mix, pcpus=8, seconds=2, seed=8, boost=True)
    assert first == again
    assert first != other


def test_both_variants_replay_the_same_demand_on_the_default_mix():
    comparison = compare(default_mix(), pcpus=8, seconds=5, seed=1)
    credit, boost = comparison.credit, comparison.boost
    # Contended: the CPUs are always busy, so throughput is the host's capacity.
    assert credit.utilisation == pytest.approx(1.0) and boost.utilisation == pytest.approx(1.0)
    assert [c.name for c in credit.classes] == ["vip-agent", "agent", "supervisor", "background"]
    for change in comparison.classes():
        if change.name == "background":
            assert change.credit.latency_mean_ms is None  # a batch job never wakes up
            continue
        assert change.credit.wakeups > 0 and change.boost.wakeups > 0
        assert change.credit.latency_p95_ms >= change.credit.latency_mean_ms
        assert change.boost.cpu_ms_per_s == pytest.approx(change.credit.cpu_ms_per_s, rel=0.1)


def test_the_p95_figures_are_nearest_rank_and_none_without_values():
    scheduler = started()
    scheduler.add_vm("a", PLAIN, ONE_SHORT_BURST, start_ms=0)
    scheduler.run(10)
    stats = scheduler.stats["plain"]
    stats.latencies = list(range(1, 101))
    stats.responses = []
    figures = scheduler.result().by_class()["plain"]
    assert figures.latency_p95_ms == 95.0 and isinstance(figures.latency_p95_ms, float)
    assert figures.response_p95_ms is None


def test_a_mix_is_parsed_and_bad_ones_are_refused():
    mix = parse_mix("vip-agent:2:interactive:4, background:1:batch:2", DEFAULT_CLASSES)
    assert [(e.feature_class.name, e.vcpus, e.workload.name, e.count) for e in mix] == [
        ("vip-agent", 2, "interactive", 4),
        ("background", 1, "batch", 2),
    ]
    for bad in ("", "nobody:2:interactive:1", "agent:2:gaming:1", "agent:x:batch:1", "agent:2"):
        with pytest.raises(MixError):
            parse_mix(bad, DEFAULT_CLASSES)


def test_class_weight_is_256_times_f():
    assert ClassParams("a", "A", weight=1.0).xen_weight == 256
    assert ClassParams("a", "A", weight=2.5).xen_weight == 640
    assert ClassParams("a", "A", weight=0.0).xen_weight == 1
