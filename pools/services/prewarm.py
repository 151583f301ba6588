"""Shifts and their pre-warming: the audited changes of shifts, and applying the
boot-storm plan as calendar windows of the pools."""

import logging
from dataclasses import dataclass, field
from datetime import time

from django.db import transaction

from portal.services import SYSTEM_ACTOR, audit_record

from ..models import PoolSchedule, Shift, VMPool
from ..selectors import prewarm_plan

logger = logging.getLogger(__name__)

PLANNED_PREFIX = "prewarm: "
_FIELDS = ("pool", "label", "weekdays", "starts_at", "ends_at", "seats")


def _describe(shift: Shift) -> dict:
    return {
        "pool": shift.pool.name,
        "label": shift.label,
        "weekdays": list(shift.weekdays),
        "starts_at": shift.starts_at.strftime("%H:%M"),
        "ends_at": shift.ends_at.strftime("%H:%M"),
        "seats": shift.seats,
    }


@transaction.atomic
def shift_create(
    *,
    pool: VMPool,
    label: str,
    weekdays: list[int],
    starts_at: time,
    ends_at: time,
    seats: int,
    actor: str,
    request_id: str = "",
) -> Shift:
    shift = Shift(
        pool=pool,
        label=label,
        weekdays=sorted(set(weekdays)),
        starts_at=starts_at,
        ends_at=ends_at,
        seats=seats,
    )
    shift.full_clean()
    shift.save()
    audit_record(
        action="shift.create", obj=shift, after=_describe(shift), actor=actor, request_id=request_id
    )
    return shift


@transaction.atomic
def shift_update(*, shift: Shift, fields: dict, actor: str, request_id: str = "") -> Shift:
    """Change a shift. Its calendar window keeps the last applied plan until the
    plan is applied again (the planner page shows both)."""
    before = _describe(shift)
    for name, value in fields.items():
        if name not in _FIELDS:
            raise ValueError(f"not a shift field: {name}")
        setattr(shift, name, sorted(set(value)) if name == "weekdays" else value)
    shift.full_clean()
    # Only the changed fields: the link to the planned window is the plan's to set
    # (a full save would write back a link a concurrent apply has just changed).
    if fields:
        shift.save(update_fields=list(fields))
    after = _describe(shift)
    if after != before:
        audit_record(
            action="shift.update",
            obj=shift,
            before=before,
            after=after,
            actor=actor,
            request_id=request_id,
        )
    return shift


@transaction.atomic
def shift_delete(*, shift: Shift, actor: str, request_id: str = "") -> None:
    """Remove a shift and the calendar window its plan wrote (a hand-made window
    of the pool is never touched)."""
    # The stored link, not the caller's copy: a plan applied since may have set it.
    shift = (
        Shift.objects.select_for_update(of=("self",))
        .select_related("pool", "schedule")
        .get(pk=shift.pk)
    )
    before = _describe(shift)
    if shift.schedule_id:
        before["window"] = _window(shift.schedule)
        PoolSchedule.objects.filter(pk=shift.schedule_id).delete()
    audit_record(
        action="shift.delete", obj=shift, before=before, actor=actor, request_id=request_id
    )
    shift.delete()


@dataclass
class ApplyResult:
    """What applying the plan did, shift by shift."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    impossible: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"{len(self.created)} windows created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )
        if self.skipped:
            text += f"; not written: {', '.join(self.skipped)}"
        if self.impossible:
            text += f"; impossible (pre-warmed as early as allowed): {', '.join(self.impossible)}"
        return text


DAY_SECONDS = 24 * 3600


def _seconds_after(earlier: time, later: time) -> int:
    """Seconds from one time of day to the next occurrence of another (0 to a day)."""
    seconds = (
        (later.hour - earlier.hour) * 3600
        + (later.minute - earlier.minute) * 60
        + (later.second - earlier.second)
    )
    return seconds % DAY_SECONDS


def _window_seconds(prewarm_start: time, shift_start: time, shift_end: time) -> int:
    """How long a window from the pre-warm start to the shift's end would last."""
    shift_length = _seconds_after(shift_start, shift_end) or DAY_SECONDS
    return _seconds_after(prewarm_start, shift_start) + shift_length


def _window(schedule: PoolSchedule | None) -> dict | None:
    if schedule is None:
        return None
    return {
        "pool": schedule.pool.name,
        "label": schedule.label,
        "weekdays": list(schedule.weekdays),
        "starts": schedule.starts.strftime("%H:%M"),
        "ends": schedule.ends.strftime("%H:%M"),
        "target_ready": schedule.target_ready,
    }


@transaction.atomic
def prewarm_apply(*, actor: str = SYSTEM_ACTOR, request_id: str = "") -> ApplyResult:
    """Write the plan into the pools' calendars: for each shift one window,
    labelled "prewarm: <shift label>", from the planned pre-warm start to the
    shift's end, keeping `seats` VMs ready. The shift's earlier window is updated
    in place; windows made by hand are never touched. A shift judged impossible
    still gets its window, from the earliest start allowed, so it gets as many
    desktops as the caps give. The shifts are locked while this runs, so two
    runs at once take turns and the second sees the first's windows."""
    shifts = {
        shift.pk: shift
        for shift in Shift.objects.select_for_update(of=("self",)).select_related(
            "pool", "schedule__pool"
        )
    }
    plan = prewarm_plan()
    result = ApplyResult()
    for planned in plan.shifts:
        shift = shifts.get(planned.shift.key)
        if shift is None:
            continue  # created after the lock was taken: the next run plans it
        name = f"{shift.pool.name}/{shift.label}"
        wanted = {
            "pool": shift.pool,
            "label": f"{PLANNED_PREFIX}{shift.label}"[:80],
            "weekdays": planned.window_weekdays,
            "starts": planned.prewarm_start,
            "ends": shift.ends_at,
            "target_ready": shift.seats,
        }
        if _window_seconds(planned.prewarm_start, shift.starts_at, shift.ends_at) >= DAY_SECONDS:
            # One calendar window lasts less than a day: when the lead and the shift
            # together take a day or more, the window covers the pre-warming only, and
            # during the shift the pool's own target applies.
            wanted["ends"] = shift.starts_at
        if wanted["starts"] == wanted["ends"]:
            # Pre-warming would have to last the whole day: a window cannot say that.
            result.skipped.append(name)
            continue
        if not planned.ok:
            result.impossible.append(name)
        current = shift.schedule
        if current is not None and all(getattr(current, k) == v for k, v in wanted.items()):
            result.unchanged.append(name)
            continue
        before = _window(current)
        if current is None:
            current = PoolSchedule.objects.create(**wanted)
            shift.schedule = current
            shift.save(update_fields=["schedule"])
            result.created.append(name)
        else:
            for key, value in wanted.items():
                setattr(current, key, value)
            current.save()
            result.updated.append(name)
        audit_record(
            action="shift.prewarm_apply",
            obj=shift,
            before={"window": before} if before else None,
            after={
                "window": _window(current),
                "verdict": planned.verdict,
                "lead_seconds": planned.lead_seconds,
                "problems": planned.problems,
            },
            actor=actor,
            request_id=request_id,
        )
    logger.info("pre-warm plan applied: %s", result)
    return result
