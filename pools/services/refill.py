"""Refill: boot VMs until each pool holds its target of ready ones, within every
cap that protects the cloud from a boot storm."""

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from cloud.drivers import ServerSpec, driver_for
from cloud.errors import CloudError
from cloud.models import Host
from monitoring.events import dashboard_changed
from portal.services import audit_record

from ..choices import ALIVE_STATES, BOOTING_STATES, VMState
from ..models import VM, SchedulingPolicy, VMPool
from ..placement import HostLoad, place
from ..selectors import boots_in_flight, boots_started_since, host_loads, pool_target, pool_unit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BootRoom:
    """How many boots a refill pass may start, and which limit says so."""

    count: int
    limited_by: str


def boot_room(*, pool: VMPool, policy: SchedulingPolicy, in_flight: dict, now) -> BootRoom:
    """The smallest of: what the pool lacks of its (calendar) target, and the room
    left under the pool's, the region's and the global cap on concurrent boots, the
    pool's maximum size, and the limit on boots started per minute."""
    counts = VM.objects.filter(pool=pool).aggregate(
        ready=Count("id", filter=Q(state=VMState.READY)),
        booting=Count("id", filter=Q(state__in=BOOTING_STATES)),
        alive=Count("id", filter=Q(state__in=ALIVE_STATES)),
    )
    limits = {
        "target": pool_target(pool, at=now) - counts["ready"] - counts["booting"],
        "pool boot cap": pool.max_concurrent_boots - counts["booting"],
        "pool size": pool.max_size - counts["alive"],
        "global boot cap": policy.max_concurrent_boots - in_flight["total"],
        "boots per minute": policy.max_boots_per_minute
        - boots_started_since(now - timedelta(seconds=60)),
    }
    if pool.region.max_concurrent_boots is not None:
        limits["region boot cap"] = (
            pool.region.max_concurrent_boots - in_flight["region"][pool.region_id]
        )
    limited_by = min(limits, key=limits.get)
    return BootRoom(count=max(0, limits[limited_by]), limited_by=limited_by)


def _plan_boots(*, pool_id: int) -> tuple[VMPool, list[VM]]:
    """Decide how many VMs to boot and where, and write them as `requested`.

    The scheduling policy's row is locked for the whole decision, so concurrent
    refills of any pools take turns: each one counts the VMs the others planned,
    and no cap is ever passed however many workers run refills at once."""
    with transaction.atomic():
        policy = SchedulingPolicy.objects.select_for_update().get(pk=SchedulingPolicy.current().pk)
        pool = (
            VMPool.objects.select_for_update()
            .select_related("region", "feature_class")
            .get(pk=pool_id)
        )
        if not pool.enabled or pool.paused_at or not pool.region.enabled:
            return pool, []
        now = timezone.now()
        in_flight = boots_in_flight()
        room = boot_room(pool=pool, policy=policy, in_flight=in_flight, now=now)
        if room.count == 0:
            return pool, []
        hosts = host_loads(region=pool.region, policy=policy, in_flight=in_flight)
        planned = []
        for sequence in range(1, room.count + 1):
            vm = VM(pool=pool, name=f"{pool.name}-{uuid.uuid4().hex[:8]}")
            if pool.region.place_by_portal and hosts:
                decision = place(
                    hosts,
                    pool_unit(pool),
                    mu=policy.response_time_factor,
                    max_failures=policy.max_boot_failures_in_row,
                )
                if decision.host is None:
                    _pool_note_error(pool, "No host is eligible for placement (see a VM's page).")
                    break
                vm.host_name, vm.placement = decision.host, decision.as_record()
                hosts = _after_placing(
                    hosts, decision.host, pool, now + timedelta(microseconds=sequence)
                )
                Host.objects.filter(region=pool.region, name=decision.host).update(
                    last_placed_at=now
                )
            elif pool.region.place_by_portal:
                vm.placement = {"host": None, "note": "no host inventory yet: the cloud chose"}
            vm.save()
            planned.append(vm)
    return pool, planned


def _after_placing(hosts: list[HostLoad], chosen: str, pool: VMPool, moment) -> list[HostLoad]:
    """The host loads after one more VM is planned on `chosen` at `moment`."""
    return [
        replace(
            h,
            vcpus_used=h.vcpus_used + pool.vcpus,
            memory_mb_used=h.memory_mb_used + pool.memory_mb,
            boots_in_flight=h.boots_in_flight + 1,
            last_placed_at=moment,
        )
        if h.name == chosen
        else h
        for h in hosts
    ]


def _pool_note_error(pool: VMPool, message: str) -> None:
    VMPool.objects.filter(pk=pool.pk).update(last_error=message[:255], last_error_at=timezone.now())


def pool_refill(*, pool_id: int) -> int:
    """Boot VMs toward the pool's target within every cap. Safe to run twice at
    once. Returns the number of boots started."""
    from .boots import pool_check_pause

    pool, planned = _plan_boots(pool_id=pool_id)
    if not planned:
        return 0
    driver = driver_for(pool.region)
    started = 0
    for index, vm in enumerate(planned):
        spec = ServerSpec(
            name=vm.name,
            flavor=pool.flavor,
            vcpus=pool.vcpus,
            memory_mb=pool.memory_mb,
            image=pool.image,
            network=pool.network,
            host=vm.host_name,
        )
        try:
            server_id = driver.create_server(spec)
        except CloudError as exc:
            # The cloud said no (no room, quota, down): stop this pass; the rows not
            # yet sent to the cloud are dropped so they do not count as booting.
            logger.warning("pool %s: boot of %s failed: %s", pool.name, vm.name, exc)
            VM.objects.filter(pk=vm.pk).update(state=VMState.ERROR, error=str(exc)[:255])
            VM.objects.filter(pk__in=[v.pk for v in planned[index + 1 :]]).delete()
            _pool_note_error(pool, str(exc))
            pool_check_pause(pool=pool)
            break
        VM.objects.filter(pk=vm.pk).update(
            server_id=server_id, state=VMState.BUILDING, boot_started_at=timezone.now()
        )
        started += 1
    if started:
        audit_record(action="pool.refill", obj=pool, after={"boots_started": started})
    dashboard_changed(f"pool {pool.name}: {started} boots started")
    return started


def pools_refill_all() -> dict[str, int]:
    """Refill every enabled pool, the most urgent feature class first (so when the
    caps are tight, VIP agents' pools get the boot slots); a failure in one pool
    does not stop the others."""
    result = {}
    pools = VMPool.objects.filter(enabled=True, region__enabled=True, paused_at__isnull=True)
    for pool in pools.order_by("-feature_class__urgency", "name"):
        try:
            result[pool.name] = pool_refill(pool_id=pool.pk)
        except Exception:
            logger.exception("refill of pool %s failed", pool.name)
            result[pool.name] = 0
    return result


def pools_refill_soon(pool_ids: list[int]) -> None:
    """Ask a worker to refill these pools now rather than at the next beat tick. A
    broker that is down costs only that head start, so it is logged, not raised.

    At most one request per pool is queued every `POOL_REFILL_SOON_DEBOUNCE`
    seconds (a key added to the shared cache marks it). In a login storm every
    connect hands out a VM; a refill pass counts what is missing when it runs, so
    one pass tops the pool up for all of them, and a publish per connect would only
    cost each login a broker round trip and give the workers duplicate passes."""
    from pools.tasks import pool_refill

    debounce = settings.POOL_REFILL_SOON_DEBOUNCE
    for pool_id in pool_ids:
        if debounce and not _refill_soon_first(pool_id, debounce):
            continue
        try:
            pool_refill.delay(pool_id)
        except Exception as exc:  # any broker error: the beat refill still comes
            logger.warning("could not queue refill of pool %s: %s", pool_id, exc)
            if debounce:  # let the next connect try again rather than wait out the window
                _refill_soon_forget(pool_id)


def _refill_soon_forget(pool_id: int) -> None:
    try:
        cache.delete(f"pools:refill-soon:{pool_id}")
    except Exception as exc:  # noqa: BLE001 - the cache being down is logged above
        logger.warning("refill debounce unavailable: %s", exc)


def _refill_soon_first(pool_id: int, seconds: int) -> bool:
    """Whether this is the pool's first refill request of the debounce window. When
    the cache cannot say, the request goes out (a duplicate pass is harmless)."""
    try:
        return cache.add(f"pools:refill-soon:{pool_id}", 1, timeout=seconds)
    except Exception as exc:  # a cache server that is down must not stop refills
        logger.warning("refill debounce unavailable: %s", exc)
        return True
