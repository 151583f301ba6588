"""Feature classes: creating one, and carrying a class's CPU priority to the
flavors of its pools as extra specs (pools/flavors.py says which).

A flavor belongs to a region and holds one set of extra specs, so it can serve
one class only: when pools of different classes in one region name the same
flavor, applying either class refuses that flavor (and says which pool is in
the way) instead of letting the last apply win. The cure is a flavor per class.

Nova copies a flavor's extra specs into a server when it boots it (and when it
is resized to the flavor); a running server keeps its copy through reboots and
rebuilds. So applied specs reach the desktops booted after the apply: pools
replace their VMs as they are used and recycled, or an operator rolls them
with a maintenance task."""

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass

from django.db import transaction
from django.utils import timezone

from cloud.drivers import driver_for
from cloud.errors import CloudError, CloudUnavailable
from cloud.models import Region
from portal.services import audit_record

from ..flavors import class_extra_specs, managed_specs, specs_change
from ..models import FeatureClass, VMPool

logger = logging.getLogger(__name__)

CHANGED = "changed"
UNCHANGED = "unchanged"
REFUSED = "refused"
FAILED = "failed"


@dataclass(frozen=True)
class FlavorOutcome:
    """What applying a class did to one pool's flavor. `before` and `after` are
    the flavor's DeskOps keys (None where the cloud was not read)."""

    pool: str
    region: str
    flavor: str
    status: str
    message: str = ""
    before: dict | None = None
    after: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@transaction.atomic
def feature_class_create(
    *,
    name: str,
    label: str,
    weight: float = 1.0,
    urgency: int = 1,
    cpu_cap_percent: int = 0,
    boost_factor: int = 0,
    actor: str,
    request_id: str = "",
) -> FeatureClass:
    """Add a feature class (validated as the model says) and audit it."""
    feature_class = FeatureClass(
        name=name,
        label=label,
        weight=weight,
        urgency=urgency,
        cpu_cap_percent=cpu_cap_percent,
        boost_factor=boost_factor,
    )
    feature_class.full_clean()
    feature_class.save()
    audit_record(
        action="featureclass.create",
        obj=feature_class,
        actor=actor,
        after={
            "name": name,
            "weight": weight,
            "urgency": urgency,
            "cpu_cap_percent": cpu_cap_percent,
            "boost_factor": boost_factor,
        },
        request_id=request_id,
    )
    return feature_class


def _flavor_conflict(region: Region, flavor: str, feature_class: FeatureClass) -> str:
    """Why the flavor cannot carry this class's specs, or "" if it can."""
    other = (
        VMPool.objects.filter(region=region, flavor=flavor)
        .exclude(feature_class=feature_class)
        .select_related("feature_class")
        .order_by("name")
        .first()
    )
    if other is None:
        return ""
    return (
        f"Flavor {flavor} in region {region.name} is also the flavor of pool {other.name} "
        f"(class {other.feature_class.label}), and a flavor holds one set of extra specs: "
        "give each class a flavor of its own."
    )


def _apply_to_flavor(
    region: Region, flavor: str, feature_class: FeatureClass, wanted: dict[str, str]
) -> tuple[str, str, dict | None, dict | None]:
    """Bring one flavor's DeskOps keys to `wanted`: (status, message, before, after)."""
    conflict = _flavor_conflict(region, flavor, feature_class)
    if conflict:
        return REFUSED, conflict, None, None
    try:
        driver = driver_for(region)
        current = driver.flavor_extra_specs(flavor)
        to_set, to_unset = specs_change(current, wanted)
        before = managed_specs(current)
        if not to_set and not to_unset:
            return UNCHANGED, "The flavor already has these specs.", before, before
        after = managed_specs(
            driver.flavor_update_extra_specs(flavor, set_specs=to_set, unset=to_unset)
        )
    except CloudUnavailable as exc:
        return FAILED, f"Region {region.name} did not answer; try again later ({exc}).", None, None
    except CloudError as exc:
        return FAILED, f"Region {region.name} refused: {exc}", None, None
    if after != wanted:
        # The cloud took the call but does not read back what was asked.
        return FAILED, f"The flavor reads back {after}, not {wanted}.", before, after
    return CHANGED, "", before, after


def _apply(
    feature_class: FeatureClass, pools: list[VMPool]
) -> tuple[list[FlavorOutcome], dict[str, str]]:
    wanted = class_extra_specs(feature_class)
    by_flavor: dict[tuple[int, str], list[VMPool]] = defaultdict(list)
    for pool in pools:
        by_flavor[(pool.region_id, pool.flavor)].append(pool)
    outcomes = []
    for members in by_flavor.values():
        region, flavor = members[0].region, members[0].flavor
        status, message, before, after = _apply_to_flavor(region, flavor, feature_class, wanted)
        logger.info(
            "class %s: flavor %s in region %s %s %s",
            feature_class.name,
            flavor,
            region.name,
            status,
            message,
        )
        outcomes.extend(
            FlavorOutcome(
                pool=pool.name,
                region=region.name,
                flavor=flavor,
                status=status,
                message=message,
                before=before,
                after=after,
            )
            for pool in members
        )
    return outcomes, wanted


def _audit_maps(outcomes: list[FlavorOutcome]) -> tuple[dict, dict]:
    """Before/after of each flavor that changed, and every pool's outcome."""
    before, after = {}, {"outcome": {}}
    for outcome in outcomes:
        key = f"{outcome.region}/{outcome.flavor}"
        if outcome.status == CHANGED:
            before[key] = outcome.before
            after[key] = outcome.after
        after["outcome"][outcome.pool] = outcome.status
    return before, after


def feature_class_apply(
    *, feature_class: FeatureClass, actor: str, request_id: str = ""
) -> list[FlavorOutcome]:
    """Set the class's extra specs on the flavors of all its pools, one cloud
    call per distinct flavor, and say per pool what happened: changed, already
    right, refused (a flavor shared with another class) or failed (the cloud
    down or refusing). One flavor failing does not stop the others. The outcome
    is kept on the class for its page, and the whole apply is audited."""
    pools = list(
        feature_class.pools.select_related("region").order_by("region__name", "flavor", "name")
    )
    outcomes, wanted = _apply(feature_class, pools)
    before, after = _audit_maps(outcomes)
    after["specs"] = wanted
    with transaction.atomic():
        FeatureClass.objects.filter(pk=feature_class.pk).update(
            flavors_applied_at=timezone.now(),
            flavors_outcome=[outcome.as_dict() for outcome in outcomes],
        )
        audit_record(
            action="featureclass.apply_specs",
            obj=feature_class,
            actor=actor,
            before=before,
            after=after,
            request_id=request_id,
        )
    return outcomes
