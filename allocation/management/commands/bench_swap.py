"""Benchmark: how long a help-desk swap takes, from the click to the new
connection info being available, when the pool has a ready VM and when a VM must
boot first. Prints p50 / p95 / max for both.

It builds its own world in the database it is pointed at; run it through
`scripts/bench.sh swap`, which gives it a throwaway database."""

import secrets
import statistics
import time

from django.core.management.base import BaseCommand, CommandError

from allocation.benchmarks import bench_pool, bench_users_connect
from allocation.models import Binding, VMSwap
from allocation.services import desktop_console
from allocation.services.helpdesk import swaps_complete_pending, vm_swap
from cloud.models import Region, SimHost, SimulatedRegion
from cloud.services import region_sync_hosts
from pools.models import VM, VMPool
from pools.services import pool_refill, vms_poll_boots
from portal.stats import percentile

# Throwaway users of a throwaway database.
PASSWORD = secrets.token_urlsafe(16)


class Command(BaseCommand):
    help = "Time help-desk swaps with a ready VM and with a boot on the simulated cloud."

    def add_arguments(self, parser):
        parser.add_argument("--swaps", type=int, default=50, help="Swaps in each phase.")
        parser.add_argument("--boot-seconds", type=float, default=30.0)
        parser.add_argument("--cap", type=int, default=10, help="Concurrent boots of the pool.")
        parser.add_argument("--tick", type=float, default=0.5, help="Seconds between job passes.")

    def handle(self, *args, swaps, boot_seconds, cap, tick, **options):
        if VMPool.objects.filter(name="bench").exists():
            raise CommandError("This database already holds a bench pool: use a fresh one.")
        pool, bindings = self._world(swaps, boot_seconds, cap)

        ready_times = []
        for binding in bindings:
            started = time.monotonic()
            swap = vm_swap(binding=binding, reason="benchmark", actor="bench")
            if swap.status != VMSwap.Status.DONE or desktop_console(vm=swap.new_vm) is None:
                raise CommandError("A swap with ready VMs did not complete at once.")
            ready_times.append(time.monotonic() - started)

        # Phase two: no VM is ready; every swap waits for a boot.
        VMPool.objects.filter(pk=pool.pk).update(target_ready=0)
        VM.objects.filter(pool=pool, state="ready").update(state="error")
        VMPool.objects.filter(pk=pool.pk).update(target_ready=swaps)
        pending = [
            vm_swap(binding=b, reason="benchmark", actor="bench")
            for b in Binding.objects.filter(pk__in=[b.pk for b in bindings])
        ]
        started = time.monotonic()
        while VMSwap.objects.filter(pk__in=[s.pk for s in pending], status="pending").exists():
            pool_refill(pool_id=pool.pk)
            vms_poll_boots()
            swaps_complete_pending()
            if time.monotonic() - started > 50 * boot_seconds + 120:
                raise CommandError("Swaps made no progress; giving up.")
            time.sleep(tick)
        boot_times = [s.seconds for s in VMSwap.objects.filter(pk__in=[s.pk for s in pending])]
        self._report(swaps, boot_seconds, cap, ready_times, boot_times)

    def _world(self, swaps, boot_seconds, cap):
        region = Region.objects.create(name="bench", label="Benchmark region")
        SimulatedRegion.objects.create(region=region, boot_seconds_min=0, boot_seconds_max=0)
        for index in range(10):
            SimHost.objects.create(
                region=region, name=f"bench-{index:02d}", address=f"198.18.1.{index + 1}",
                vcpus=64, memory_mb=262144,
            )  # fmt: skip
        region_sync_hosts(region=region)
        pool = bench_pool(region=region, name="bench", ready=2 * swaps, max_size=10 * swaps)
        bench_users_connect(pool=pool, prefix="bench", count=swaps, password=PASSWORD)
        # From now on, boots take the time asked for, under the pool's cap.
        SimulatedRegion.objects.filter(region=region).update(
            boot_seconds_min=boot_seconds, boot_seconds_max=boot_seconds
        )
        VMPool.objects.filter(pk=pool.pk).update(max_concurrent_boots=cap)
        pool.refresh_from_db()
        return pool, list(Binding.objects.filter(released_at__isnull=True))

    def _report(self, swaps, boot_seconds, cap, ready_times, boot_times):
        def line(label, values):
            return (
                f"{label:<30} p50 {statistics.median(values):8.3f} s   "
                f"p95 {percentile(values, 95):8.3f} s   max {max(values):8.3f} s"
            )

        self.stdout.write(
            "\n".join(
                [
                    f"swaps per phase:               {swaps}",
                    f"boot time:                     {boot_seconds:.0f} s, pool cap {cap}",
                    line("ready VM in the pool:", ready_times),
                    line("VM must boot first:", boot_times),
                    "goal: p95 under 60 s with a ready VM, under 300 s with a boot -> "
                    + (
                        "met"
                        if percentile(ready_times, 95) < 60 and percentile(boot_times, 95) < 300
                        else "MISSED"
                    ),
                ]
            )
        )
