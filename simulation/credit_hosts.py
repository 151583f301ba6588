"""The scheduler simulation for a real host: the mix of its VMs, grouped by their
pool's feature class, and the cached comparison of Credit and BOOST on it."""

import hashlib
import json
import logging

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from cloud.models import Host
from pools.choices import VMState
from pools.models import VM, FeatureClass

from .credit import Comparison, compare
from .workloads import ClassParams, MixEntry, workload_for_class

logger = logging.getLogger(__name__)

# Booted desktops, idle or in use: the simulation asks how the host behaves when
# all of them are busy, the peak of a shift.
SIMULATED_STATES = (VMState.READY, VMState.IN_USE)
CACHE_PREFIX = "simulation:credit:"


def class_params(feature_class: FeatureClass) -> ClassParams:
    return ClassParams(
        name=feature_class.name,
        label=feature_class.label,
        weight=feature_class.weight,
        urgency=feature_class.urgency,
        cpu_cap_percent=feature_class.cpu_cap_percent,
        boost_factor=feature_class.boost_factor,
    )


def host_mix(host: Host) -> list[MixEntry]:
    """The host's booted VMs as a mix: one entry per (feature class, vCPUs), each
    running its class's workload (supervisors mixed, everyone else interactive)."""
    rows = (
        VM.objects.filter(
            pool__region_id=host.region_id, host_name=host.name, state__in=SIMULATED_STATES
        )
        .values("pool__feature_class_id", "pool__vcpus")
        .annotate(count=Count("id"))
        # No model ordering may leak into the GROUP BY and split the groups.
        .order_by()
    )
    counts = {(r["pool__feature_class_id"], r["pool__vcpus"]): r["count"] for r in rows}
    classes = FeatureClass.objects.in_bulk({class_pk for class_pk, _ in counts})
    mix = []
    for (class_pk, vcpus), count in sorted(counts.items()):
        params = class_params(classes[class_pk])
        mix.append(MixEntry(params, vcpus, workload_for_class(params.name), count))
    return mix


def mix_key(mix: list[MixEntry], *, pcpus: int, seconds: float, seed: int) -> str:
    """A cache key that changes with anything the figures depend on: the mix, the
    classes' scheduler parameters, the host's CPUs and the run's length and seed."""
    described = [
        [
            e.feature_class.name,
            e.feature_class.label,
            e.feature_class.xen_weight,
            e.feature_class.urgency,
            e.feature_class.cpu_cap_percent,
            e.feature_class.boost_factor,
            e.vcpus,
            e.workload.name,
            e.count,
        ]
        for e in mix
    ]
    text = json.dumps([described, pcpus, seconds, seed], sort_keys=True)
    return CACHE_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def host_scheduling(host: Host) -> tuple[list[MixEntry], Comparison | None]:
    """The host's mix and both variants on it (None when the host has no VMs or
    no known CPUs), computed once per mix and kept in the cache."""
    mix = host_mix(host)
    if not mix or host.vcpus < 1:
        return mix, None
    # Bounded whatever the setting says: the section must stay quick.
    seconds = min(max(settings.SCHEDULER_SIM_SECONDS, 0.5), 60.0)
    key = mix_key(mix, pcpus=host.vcpus, seconds=seconds, seed=1)
    comparison = cache.get(key)
    if comparison is None:
        comparison = compare(mix, pcpus=host.vcpus, seconds=seconds, seed=1)
        cache.set(key, comparison, settings.SCHEDULER_SIM_CACHE_SECONDS)
        logger.info(
            "simulated CPU scheduling of host %s (%s VMs)", host.name, sum(e.count for e in mix)
        )
    return mix, comparison
