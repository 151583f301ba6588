"""Benchmark: refill a pool of N VMs on the simulated cloud under a cap of C
concurrent boots, and check the two promises of staggered boots: the refill ends
within 1.1 x ceil(N / C) x the boot time, and no cap is ever passed.

It builds its own region and pool in the database it is pointed at; run it through
`scripts/bench.sh refill`, which gives it a throwaway database."""

import math
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max

from cloud.models import Region, SimHost, SimulatedRegion
from cloud.services import region_sync_hosts
from pools.choices import BOOTING_STATES, VMState
from pools.models import VM, FeatureClass, SchedulingPolicy, VMPool
from pools.services import pool_refill, vms_poll_boots


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end and a start at the same
    instant do not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


class Command(BaseCommand):
    help = "Refill N VMs under a cap of C concurrent boots on the simulated cloud; print figures."

    def add_arguments(self, parser):
        parser.add_argument("--vms", type=int, default=200)
        parser.add_argument("--cap", type=int, default=25, help="Concurrent boots of the pool.")
        parser.add_argument("--boot-seconds", type=float, default=4.0)
        parser.add_argument("--hosts", type=int, default=20)
        parser.add_argument("--host-cap", type=int, default=10, help="Concurrent boots per host.")
        parser.add_argument("--tick", type=float, default=0.05, help="Seconds between passes.")

    def handle(self, *args, vms, cap, boot_seconds, hosts, host_cap, tick, **options):
        if VMPool.objects.filter(name="bench").exists():
            raise CommandError("This database already holds a bench pool: use a fresh one.")
        pool = self._world(vms, cap, boot_seconds, hosts, host_cap)
        started = time.monotonic()
        sampled_peak = 0
        while VM.objects.filter(pool=pool, state=VMState.READY).count() < vms:
            pool_refill(pool_id=pool.pk)
            vms_poll_boots()
            sampled_peak = max(
                sampled_peak, VM.objects.filter(pool=pool, state__in=BOOTING_STATES).count()
            )
            if time.monotonic() - started > 20 * math.ceil(vms / cap) * boot_seconds + 60:
                raise CommandError("The refill made no progress; giving up.")
            time.sleep(tick)
        elapsed = time.monotonic() - started
        self._report(pool, vms, cap, boot_seconds, host_cap, elapsed, sampled_peak)

    def _world(self, vms, cap, boot_seconds, hosts, host_cap) -> VMPool:
        region = Region.objects.create(name="bench", label="Benchmark region")
        SimulatedRegion.objects.create(
            region=region, boot_seconds_min=boot_seconds, boot_seconds_max=boot_seconds
        )
        for index in range(hosts):
            SimHost.objects.create(
                region=region, name=f"bench-{index:03d}", address=f"198.18.0.{index + 1}",
                vcpus=64, memory_mb=262144,
            )  # fmt: skip
        region_sync_hosts(region=region)
        SchedulingPolicy.objects.update_or_create(
            pk=1,
            defaults={
                "max_concurrent_boots": cap * 10,
                "max_boots_per_minute": vms * 10,
                "host_max_concurrent_boots": host_cap,
            },
        )
        feature, _ = FeatureClass.objects.get_or_create(name="agent", defaults={"label": "Agent"})
        return VMPool.objects.create(
            name="bench", region=region, feature_class=feature, flavor="desk.medium",
            vcpus=2, memory_mb=4096, image="win10", target_ready=vms, max_size=vms,
            max_concurrent_boots=cap, pause_after_errors=0,
        )  # fmt: skip

    def _report(self, pool, vms, cap, boot_seconds, host_cap, elapsed, sampled_peak):
        booted = list(VM.objects.filter(pool=pool).values_list("boot_started_at", "ready_at"))
        intervals = [(s.timestamp(), r.timestamp()) for s, r in booted]
        peak = max_overlap(intervals)
        per_host = {}
        for host in VM.objects.filter(pool=pool).values_list("host_name", flat=True).distinct():
            rows = VM.objects.filter(pool=pool, host_name=host)
            per_host[host] = max_overlap(
                [
                    (s.timestamp(), r.timestamp())
                    for s, r in rows.values_list("boot_started_at", "ready_at")
                ]
            )
        waves = math.ceil(vms / cap)
        bound = 1.1 * waves * boot_seconds
        last_ready = VM.objects.filter(pool=pool).aggregate(last=Max("ready_at"))["last"]
        ok_time = elapsed <= bound
        ok_caps = peak <= cap and max(per_host.values()) <= host_cap
        host_peak = max(per_host.values())
        rows = [
            ("VMs booted", f"{len(booted)} (the last ready at {last_ready:%H:%M:%S})"),
            ("pool cap C", f"{cap}"),
            ("boot time", f"{boot_seconds:.1f} s"),
            ("waves ceil(N/C)", f"{waves}"),
            ("elapsed", f"{elapsed:.1f} s"),
            ("bound 1.1 x waves x boot", f"{bound:.1f} s -> {'within' if ok_time else 'OVER'}"),
            (
                "peak concurrent boots",
                f"{peak} (sampled {sampled_peak}), cap {cap} -> "
                + ("held" if peak <= cap else "EXCEEDED"),
            ),
            ("peak boots on one host", f"{host_peak} over {len(per_host)} hosts, cap {host_cap}"),
        ]
        self.stdout.write("\n".join(f"{label + ':':<28} {value}" for label, value in rows))
        if not (ok_time and ok_caps):
            raise CommandError("The refill missed its promise (see above).")
