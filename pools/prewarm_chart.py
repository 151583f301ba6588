"""The boot curve of a plan, and its drawing as an inline SVG chart.

For one region and one weekday: how many desktops the plan has booting and ready
at each moment, against the seats the shifts of that day need, with each shift's
start and each pre-warm start marked. The geometry is computed here; the page's
template only writes the SVG elements (no script, no chart library)."""

import math
from dataclasses import dataclass, field

from .prewarm import DAY_NAMES, DAY_SECONDS, TICK, WEEK_TICKS, Plan

# Drawing area, in SVG user units (the chart scales to the page's width).
WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 34, 40
MAX_POINTS = 300
TIME_STEPS_MINUTES = (5, 10, 15, 30, 60, 120, 180, 240, 360, 720)


@dataclass
class Curve:
    """Desktops booting, ready (booted by the plan) and needed (seats of the
    shifts already started), tick by tick from `first_tick`."""

    day: int
    first_tick: int
    booting: list[int]
    ready: list[int]
    needed: list[int]
    shift_starts: list[tuple[int, str]]  # (tick, label)
    prewarm_starts: list[tuple[int, str]]

    @property
    def last_tick(self) -> int:
        return self.first_tick + len(self.booting) - 1


def region_curve(plan: Plan, region_id: int, day: int) -> Curve | None:
    """The curve of the region's shifts starting on `day` (ISO weekday); None
    when none does."""
    occurrences = [o for o in plan.occurrences if o.region_id == region_id and o.day == day]
    if not occurrences:
        return None
    labels = {s.shift.key: s.shift.label for s in plan.shifts}
    begin = min(
        [o.first_tick for o in occurrences if o.starts] + [o.start_tick for o in occurrences]
    )
    end = max(o.start_tick for o in occurrences)
    pad = max(60 // TICK * 5, (end - begin) // 12)
    begin, end = begin - pad, end + pad
    size = end - begin + 1
    booting, ready_at, needed_at = [0] * size, [0] * size, [0] * size
    for occ in occurrences:
        for tick, count in occ.starts.items():
            for i in range(tick - begin, min(size, tick - begin + occ.boot_ticks)):
                booting[i] += count
            if tick - begin + occ.boot_ticks < size:
                ready_at[tick - begin + occ.boot_ticks] += count
        needed_at[occ.start_tick - begin] += occ.seats
    return Curve(
        day=day,
        first_tick=begin,
        booting=booting,
        ready=_running_total(ready_at),
        needed=_running_total(needed_at),
        shift_starts=[(o.start_tick, labels.get(o.key, "")) for o in occurrences],
        prewarm_starts=[(o.first_tick, labels.get(o.key, "")) for o in occurrences if o.starts],
    )


def _running_total(values: list[int]) -> list[int]:
    total, result = 0, []
    for value in values:
        total += value
        result.append(total)
    return result


def clock(tick: int, day: int | None = None) -> str:
    """A tick as wall-clock time, with the weekday when it is not `day`."""
    seconds = (tick % WEEK_TICKS) * TICK
    weekday = seconds // DAY_SECONDS + 1
    text = f"{seconds % DAY_SECONDS // 3600:02d}:{seconds % 3600 // 60:02d}"
    return text if weekday == day else f"{DAY_NAMES[weekday - 1]} {text}"


@dataclass
class Chart:
    """What the template draws: polylines as SVG point lists, axis ticks and the
    vertical marks, all in user units."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    baseline: int = HEIGHT - BOTTOM
    booting: str = ""
    ready: str = ""
    needed: str = ""
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, int]] = field(default_factory=list)
    shift_marks: list[tuple[float, str]] = field(default_factory=list)
    prewarm_marks: list[tuple[float, str]] = field(default_factory=list)
    peak_booting: int = 0
    summary: str = ""


def chart(curve: Curve) -> Chart:
    """Lay the curve out on the chart's drawing area."""
    span = max(1, curve.last_tick - curve.first_tick)
    top_value = max([1, *curve.needed, *curve.ready, *curve.booting])
    top_value = _round_up(top_value * 1.1)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(tick: int) -> float:
        return round(LEFT + (tick - curve.first_tick) / span * plot_width, 1)

    def y(value: float) -> float:
        return round(TOP + plot_height - value / top_value * plot_height, 1)

    stride = max(1, math.ceil(len(curve.booting) / MAX_POINTS))
    sampled = list(range(0, len(curve.booting), stride))
    if sampled[-1] != len(curve.booting) - 1:
        sampled.append(len(curve.booting) - 1)

    def line(values: list[int]) -> str:
        return " ".join(f"{x(curve.first_tick + i)},{y(values[i])}" for i in sampled)

    result = Chart(
        booting=line(curve.booting),
        ready=line(curve.ready),
        needed=_steps(curve.needed, curve.first_tick, x, y),
        peak_booting=max(curve.booting),
    )
    minutes = next(
        (m for m in TIME_STEPS_MINUTES if span * TICK / (m * 60) <= 8), TIME_STEPS_MINUTES[-1]
    )
    every = minutes * 60 // TICK
    first = -(-curve.first_tick // every) * every
    result.x_ticks = [
        (x(tick), clock(tick, curve.day)) for tick in range(first, curve.last_tick + 1, every)
    ]
    result.y_ticks = [(y(v), v) for v in (0, top_value // 2, top_value)]
    result.shift_marks = [
        (x(tick), f"{label} {clock(tick, curve.day)}") for tick, label in curve.shift_starts
    ]
    result.prewarm_marks = [(x(tick), label) for tick, label in curve.prewarm_starts]
    result.summary = (
        f"{DAY_NAMES[curve.day - 1]}: {curve.needed[-1]} seats; at most "
        f"{result.peak_booting} desktops booting at once"
    )
    return result


def _steps(values: list[int], first_tick: int, x, y) -> str:
    """A step line: flat between changes, vertical at each change."""
    points = [f"{x(first_tick)},{y(values[0])}"]
    for i in range(1, len(values)):
        if values[i] != values[i - 1]:
            points.append(f"{x(first_tick + i)},{y(values[i - 1])}")
            points.append(f"{x(first_tick + i)},{y(values[i])}")
    points.append(f"{x(first_tick + len(values) - 1)},{y(values[-1])}")
    return " ".join(points)


def _round_up(value: float) -> int:
    """A round axis maximum at or above `value`: 1, 2 or 5 times a power of ten."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * power >= value:
            return int(factor * power)
    return int(10 * power)
