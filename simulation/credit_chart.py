"""The drawing of a Credit / BOOST comparison as an SVG bar chart: on the left
each class's scheduling latency (mean as a dark bar, p95 as the light bar behind
it), on the right each class's throughput in CPU ms per second. The geometry is
computed here; the template `simulation/credit_chart.svg` only writes the
rectangles, lines and texts (no script, no chart library)."""

import math
from dataclasses import dataclass, field

from .credit import Comparison

WIDTH, HEIGHT = 760, 310
TOP, BOTTOM = 44, 62
LATENCY_LEFT, LATENCY_RIGHT = 46, 440
THROUGHPUT_LEFT, THROUGHPUT_RIGHT = 500, 720
COLOURS = {
    "credit": ("#1f6feb", "#a9c8f5"),  # mean, p95
    "boost": ("#ef6c00", "#f7c493"),
}


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str = ""


@dataclass
class Text:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    muted: bool = False


@dataclass
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    light: bool = True


@dataclass
class Chart:
    width: int = WIDTH
    height: int = HEIGHT
    title: str = ""
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


def _nice_top(value: float) -> float:
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    # Steps whose quarters are round too.
    for step in (1, 1.2, 1.6, 2, 4, 6, 8, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _axis(chart: Chart, left: float, right: float, top_value: float, unit: str) -> None:
    baseline = HEIGHT - BOTTOM
    for share in (0, 0.25, 0.5, 0.75, 1):
        y = baseline - share * (baseline - TOP)
        chart.lines.append(Line(left, y, right, y, light=share > 0))
        value = top_value * share
        text = f"{value:.0f}" if top_value >= 4 else f"{value:.1f}"
        chart.texts.append(Text(left - 4, y + 3, text, anchor="end", muted=True))
    chart.texts.append(Text(left - 4, TOP - 8, unit, anchor="end", muted=True))


def _height(value: float, top_value: float) -> float:
    return (HEIGHT - BOTTOM - TOP) * min(value, top_value) / top_value


def comparison_chart(comparison: Comparison, title: str = "") -> Chart:
    """The chart of one comparison; every class gets a group of two bars per panel
    (Credit, then BOOST)."""
    chart = Chart(title=title)
    baseline = HEIGHT - BOTTOM
    classes = comparison.classes()
    chart.texts.append(
        Text(LATENCY_LEFT, 16, "Scheduling latency, wake-up to run (mean dark, p95 light)", "start")
    )
    chart.texts.append(Text(THROUGHPUT_LEFT, 16, "Throughput (CPU ms per s)", "start"))

    latency_top = _nice_top(
        max(
            [run.latency_p95_ms or 0 for change in classes for run in (change.credit, change.boost)]
            + [1]
        )
    )
    _axis(chart, LATENCY_LEFT, LATENCY_RIGHT, latency_top, "ms")
    group = (LATENCY_RIGHT - LATENCY_LEFT) / max(1, len(classes))
    bar = min(28.0, group / 3)
    for index, change in enumerate(classes):
        centre = LATENCY_LEFT + group * (index + 0.5)
        for offset, (variant, figures) in (
            (-1, ("credit", change.credit)),
            (0, ("boost", change.boost)),
        ):
            x = centre + offset * bar
            mean_colour, p95_colour = COLOURS[variant]
            if figures.latency_mean_ms is None:
                continue
            p95 = figures.latency_p95_ms or 0
            mean = figures.latency_mean_ms
            name = "Credit" if variant == "credit" else "BOOST"
            tip = f"{change.label}, {name}: mean {mean:.1f} ms, p95 {p95:.0f} ms"
            h = _height(p95, latency_top)
            chart.rects.append(Rect(x, baseline - h, bar - 2, h, p95_colour, tip))
            h = _height(mean, latency_top)
            chart.rects.append(Rect(x + 4, baseline - h, bar - 10, h, mean_colour, tip))
            chart.texts.append(
                Text(x + bar / 2 - 1, baseline - _height(p95, latency_top) - 4, f"{p95:.0f}")
            )
        if change.credit.latency_mean_ms is None:
            chart.texts.append(Text(centre, baseline - 8, "never waits", muted=True))
        chart.texts.append(Text(centre, baseline + 16, change.label))

    throughput_top = _nice_top(
        max(
            [c.credit.cpu_ms_per_s for c in classes] + [c.boost.cpu_ms_per_s for c in classes] + [1]
        )
    )
    _axis(chart, THROUGHPUT_LEFT, THROUGHPUT_RIGHT, throughput_top, "ms/s")
    group = (THROUGHPUT_RIGHT - THROUGHPUT_LEFT) / max(1, len(classes))
    bar = min(20.0, group / 3)
    for index, change in enumerate(classes):
        centre = THROUGHPUT_LEFT + group * (index + 0.5)
        for offset, variant, figures in ((-1, "credit", change.credit), (0, "boost", change.boost)):
            x = centre + offset * bar
            h = _height(figures.cpu_ms_per_s, throughput_top)
            name = "Credit" if variant == "credit" else "BOOST"
            tip = (
                f"{change.label}, {name}: {figures.cpu_ms_per_s:.0f} CPU ms/s, "
                f"{figures.bursts_per_s:.1f} bursts/s"
            )
            chart.rects.append(Rect(x, baseline - h, bar - 2, h, COLOURS[variant][0], tip))
        # The groups are narrow: every other label one line lower, so none overlap.
        chart.texts.append(Text(centre, baseline + 16 + 12 * (index % 2), change.label))

    legend_y = HEIGHT - 10
    chart.rects.append(Rect(LATENCY_LEFT, legend_y - 9, 10, 10, COLOURS["credit"][0]))
    chart.texts.append(Text(LATENCY_LEFT + 14, legend_y, "Credit", "start"))
    chart.rects.append(Rect(LATENCY_LEFT + 70, legend_y - 9, 10, 10, COLOURS["boost"][0]))
    chart.texts.append(Text(LATENCY_LEFT + 84, legend_y, "BOOST", "start"))
    credit, boost = comparison.credit, comparison.boost
    chart.texts.append(
        Text(
            LATENCY_LEFT + 140,
            legend_y,
            f"{credit.pcpus} CPUs, {credit.vcpus} vCPUs, {credit.seconds:g} s simulated; "
            f"busy {credit.utilisation:.0%} / {boost.utilisation:.0%}; "
            f"total {credit.cpu_ms_per_s:.0f} / {boost.cpu_ms_per_s:.0f} CPU ms/s",
            "start",
            muted=True,
        )
    )
    return chart
