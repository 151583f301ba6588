"""The worlds the benchmarks build in their throwaway databases: a desktop pool
filled on a simulated region with the cloud-wide boot caps out of the way, and
users already connected to it through the real connect service."""

from django.contrib.auth import get_user_model

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import Allocator, AllocatorPool, Terminal
from allocation.services import desktop_connect
from cloud.models import Region
from pools.models import FeatureClass, SchedulingPolicy, VMPool
from pools.services import pool_refill, vms_poll_boots


def bench_pool(*, region: Region, name: str, ready: int, max_size: int) -> VMPool:
    """A pool of `ready` booted VMs (the region must boot instantly for now), with
    no cloud-wide cap slowing the benchmark's own boots."""
    SchedulingPolicy.objects.update_or_create(
        pk=1,
        defaults={
            "max_concurrent_boots": 1000,
            "max_boots_per_minute": 10000,
            "host_max_concurrent_boots": 100,
        },
    )
    feature, _ = FeatureClass.objects.get_or_create(name="agent", defaults={"label": "Agent"})
    pool = VMPool.objects.create(
        name=name, region=region, feature_class=feature, flavor="desk.medium",
        vcpus=2, memory_mb=4096, image="win10", target_ready=ready, max_size=max_size,
        max_concurrent_boots=ready, pause_after_errors=0,
    )  # fmt: skip
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    return pool


def bench_users_connect(*, pool: VMPool, prefix: str, count: int, password: str) -> None:
    """`count` users (`<prefix>0`, `<prefix>1`, …) bound to desktops of `pool` by
    a default user-binding allocator, each connected once at one terminal."""
    allocator = Allocator.objects.create(
        name=prefix, is_default=True, binding_policy=BindingPolicy.USER
    )
    AllocatorPool.objects.create(allocator=allocator, pool=pool)
    serial = f"TC-{prefix.upper()}"
    Terminal.objects.create(serial=serial, status=TerminalStatus.ENROLLED)
    User = get_user_model()
    for index in range(count):
        user = User.objects.create(username=f"{prefix}{index}")
        user.set_password(password)
        user.save()
        desktop_connect(username=user.username, password=password, terminal_serial=serial)
