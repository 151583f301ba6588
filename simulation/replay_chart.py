"""The placement comparison drawn as one inline SVG (no script, no chart library):
on top, the coefficient of variation of host CPU utilisation over the day, one
line per policy; below, the 95th percentile of boot waits and of evacuation
waits, one bar per policy. The same drawing goes into the portal page and, via
`simulate_placement --svg`, into the README."""

from django.utils.html import escape

WIDTH = 760
LINE_TOP, LINE_HEIGHT = 40, 220
BAR_TOP, BAR_HEIGHT = 330, 150
LEFT, RIGHT = 56, 20
HEIGHT = BAR_TOP + BAR_HEIGHT + 46
COLOURS = {"dynamic": "#1f6feb", "round-robin": "#ef6c00", "nova": "#2e7d32"}
FALLBACK_COLOURS = ("#6a1b9a", "#c62828", "#00838f")
FIRST_MINUTE, LAST_MINUTE = 6 * 60, 22 * 60 + 30
SHIFT_HOURS = (8 * 60, 21 * 60 + 30)


def _nice_top(value: float) -> float:
    """A round axis maximum at or above `value`, cut in four equal steps."""
    for step in (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500):
        if value <= step * 4:
            return step * 4
    return value


def _colour(key: str, index: int) -> str:
    return COLOURS.get(key, FALLBACK_COLOURS[index % len(FALLBACK_COLOURS)])


def _x(minute: float) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (minute - FIRST_MINUTE) / (LAST_MINUTE - FIRST_MINUTE) * span


def placement_svg(report: dict) -> str:
    """The chart of a comparison report (what `replay.compare` returns)."""
    policies = report.get("policies", [])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" role="img" aria-labelledby="placement-chart-title" '
        f'font-size="11" font-family="system-ui, sans-serif">',
        '<title id="placement-chart-title">Host CPU load balance over the day and boot-wait '
        "p95 per placement policy</title>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    # The lines: CV of host CPU utilisation.
    # The axis fits the shifts' hours; the near-idle early morning and late
    # evening, whose CV runs high on a few desktops, are drawn clipped at the top.
    in_shifts = [
        p[1] for pol in policies for p in pol["curve"] if SHIFT_HOURS[0] <= p[0] <= SHIFT_HOURS[1]
    ]
    cv_top = _nice_top(max(in_shifts, default=0.1) or 0.1)
    base = LINE_TOP + LINE_HEIGHT
    parts.append(
        f'<text x="{LEFT}" y="{LINE_TOP - 16}" font-weight="bold">Host CPU load imbalance '
        "(coefficient of variation across up hosts; lower is more even)</text>"
    )
    for i in range(5):
        value = cv_top * i / 4
        y = base - LINE_HEIGHT * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#dde3ea"/>'
            f'<text x="{LEFT - 6}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle" '
            f'fill="#6b7785">{value:.2f}</text>'
        )
    for hour in range(6, 23, 2):
        x = _x(hour * 60)
        parts.append(
            f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="#6b7785"/>'
            f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle" fill="#6b7785">'
            f"{hour:02d}:00</text>"
        )
    region = report.get("region", {})
    if region.get("failed_minute"):
        x = _x(region["failed_minute"])
        parts.append(
            f'<line x1="{x:.1f}" y1="{LINE_TOP}" x2="{x:.1f}" y2="{base}" stroke="#c62828" '
            f'stroke-dasharray="4 3"/><text x="{x + 4:.1f}" y="{LINE_TOP + 26}" fill="#c62828">'
            f"{escape(region.get('failed_host') or '')} fails</text>"
        )
    for index, policy in enumerate(policies):
        points = " ".join(
            f"{_x(minute):.1f},{base - min(cv, cv_top) / cv_top * LINE_HEIGHT:.1f}"
            for minute, cv, *_ in policy["curve"]
            if FIRST_MINUTE <= minute <= LAST_MINUTE
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{_colour(policy["key"], index)}" '
            f'stroke-width="1.6"/>'
        )
    legend_x = LEFT + 8
    for index, policy in enumerate(policies):
        x = legend_x + index * 150
        parts.append(
            f'<rect x="{x}" y="{LINE_TOP + 2}" width="12" height="4" '
            f'fill="{_colour(policy["key"], index)}"/>'
            f'<text x="{x + 16}" y="{LINE_TOP + 8}">{escape(policy["label"])}</text>'
        )
    # The bars: p95 of boot waits and of evacuation waits.
    measures = [("boot_wait", "boot wait p95"), ("evacuation_wait", "evacuation wait p95")]
    values = [p[m]["p95"] for p in policies for m, _ in measures]
    top = _nice_top(max(values, default=60) or 60)
    bar_base = BAR_TOP + BAR_HEIGHT
    parts.append(
        f'<text x="{LEFT}" y="{BAR_TOP - 16}" font-weight="bold">Waits, 95th percentile '
        "(seconds from request to a ready desktop)</text>"
    )
    for i in range(5):
        value = top * i / 4
        y = bar_base - BAR_HEIGHT * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#dde3ea"/>'
            f'<text x="{LEFT - 6}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle" '
            f'fill="#6b7785">{value:.0f}</text>'
        )
    group_width = (WIDTH - LEFT - RIGHT) / len(measures)
    bar_width = min(60, group_width / (len(policies) + 1)) if policies else 0
    for group, (measure, label) in enumerate(measures):
        start = LEFT + group * group_width + (group_width - bar_width * len(policies)) / 2
        for index, policy in enumerate(policies):
            value = policy[measure]["p95"]
            height = min(value, top) / top * BAR_HEIGHT
            x = start + index * bar_width
            parts.append(
                f'<rect x="{x + 4:.1f}" y="{bar_base - height:.1f}" width="{bar_width - 8:.1f}" '
                f'height="{height:.1f}" fill="{_colour(policy["key"], index)}">'
                f"<title>{escape(policy['label'])}: {value:.0f} s</title></rect>"
                f'<text x="{x + bar_width / 2:.1f}" y="{bar_base - height - 4:.1f}" '
                f'text-anchor="middle">{value:.0f}</text>'
            )
        parts.append(
            f'<text x="{LEFT + group * group_width + group_width / 2:.1f}" y="{bar_base + 16}" '
            f'text-anchor="middle" fill="#6b7785">{label}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{bar_base}" x2="{WIDTH - RIGHT}" y2="{bar_base}" stroke="#6b7785"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)
