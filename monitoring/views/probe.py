"""The login probe's page: how the last day of synthetic logins went, a latency
chart with the failures in red, the latest results, and a button that runs the
probe at once."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal.roles import Role, role_required

from ..probe import probe_enabled, probe_login
from ..probe_selectors import probe_points, probe_results_recent, probe_summary

HOURS = 24
RECENT = 50

# The chart's drawing area inside its SVG view box, in user units.
CHART_WIDTH, CHART_HEIGHT = 900, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that holds `value`."""
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def latency_chart(points: list[dict], *, hours: int, now=None) -> dict:
    """Geometry of the latency chart, drawn by the template as inline SVG: time
    runs left to right over the last `hours` hours, latency upwards. Successful
    logins make the line; failures are red marks across the chart, with a dot at
    their latency, or on the top edge when no HTTP answer came back."""
    now = now or timezone.now()
    start = now - timedelta(hours=hours)
    span = (now - start).total_seconds()
    plot_w, plot_h = CHART_WIDTH - LEFT - RIGHT, CHART_HEIGHT - TOP - BOTTOM
    latencies = [p["latency_ms"] for p in points if p["latency_ms"] is not None]
    top_ms = _nice_ceiling(max(latencies, default=0) or 100)

    def x(at) -> float:
        return round(LEFT + plot_w * max(0.0, (at - start).total_seconds()) / span, 1)

    def y(latency_ms) -> float:
        return round(TOP + plot_h * (1 - min(latency_ms, top_ms) / top_ms), 1)

    # A pause of a few intervals without a successful login breaks the line, so a
    # probe that stopped running does not look like a steady latency.
    gap = timedelta(seconds=settings.PROBE_INTERVAL * 3)
    segments, failures, previous = [], [], None
    for point in points:
        if point["ok"] and point["latency_ms"] is not None:
            if previous is None or point["at"] - previous > gap:
                segments.append([])
            segments[-1].append(f"{x(point['at'])},{y(point['latency_ms'])}")
            previous = point["at"]
        elif not point["ok"]:
            answered = point["status_code"] is not None and point["latency_ms"] is not None
            failures.append(
                {
                    "x": x(point["at"]),
                    "y": y(point["latency_ms"]) if answered else TOP,
                    "at": point["at"],
                    "outcome": point["outcome"],
                    "detail": point["detail"],
                }
            )
    y_ticks = [{"y": y(top_ms * share), "label": f"{top_ms * share:g} ms"} for share in (0, 0.5, 1)]
    x_ticks = [
        {"x": x(start + timedelta(hours=h)), "at": start + timedelta(hours=h)}
        for h in range(0, hours + 1, max(1, hours // 6))
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": LEFT,
        "label_x": LEFT - 6,
        "label_y": CHART_HEIGHT - 8,
        "right": CHART_WIDTH - RIGHT,
        "top": TOP,
        "bottom": CHART_HEIGHT - BOTTOM,
        "lines": [" ".join(segment) for segment in segments],
        # A success with no neighbour draws no line: it is drawn as a dot.
        "dots": [segment[0].split(",") for segment in segments if len(segment) == 1],
        "failures": failures,
        "y_ticks": y_ticks,
        "x_ticks": x_ticks,
        "empty": not points,
    }


@role_required(Role.VIEWER, Role.OPERATOR)
def probe_page(request):
    points = probe_points(HOURS)
    context = {
        "summary": probe_summary(HOURS),
        "chart": latency_chart(points, hours=HOURS),
        "results": probe_results_recent(RECENT),
        "probe_url": settings.PROBE_URL,
        "probe_username": settings.PROBE_USERNAME,
        "probe_terminal": settings.PROBE_TERMINAL,
        "probe_interval": settings.PROBE_INTERVAL,
    }
    return render(request, "monitoring/probe.html", context)


@role_required(Role.OPERATOR)
@require_POST
def probe_run(request):
    """Run the probe now, in this request, and tell the operator how it went."""
    if not probe_enabled():
        messages.error(
            request,
            "The login probe is not configured: set PROBE_USERNAME, PROBE_PASSWORD "
            "and PROBE_TERMINAL.",
        )
        return redirect("monitoring:probe")
    result = probe_login()
    latency = f"{result.latency_ms:.0f} ms" if result.latency_ms is not None else "no answer"
    if result.ok:
        messages.success(
            request,
            f"Login probe succeeded in {latency}: desktop {result.vm_name}. {result.detail}",
        )
    else:
        messages.error(
            request, f"Login probe failed: {result.outcome} ({latency}). {result.detail}".rstrip()
        )
    return redirect("monitoring:probe")
