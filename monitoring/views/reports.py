"""The reports page and its CSV export: a date range (or a preset) in, the four
reports of `monitoring.reports` out, as tables with small charts or as CSV."""

import csv
from datetime import date, datetime, time, timedelta

from django import forms
from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from portal.roles import Role, role_required

from ..reports import HOURLY_UP_TO, REPORTS, Report

MAX_RANGE_DAYS = 366
# Dates outside these cannot be turned into moments in every time zone, and no
# record is that old or that new anyway.
EARLIEST = date(1970, 1, 1)
LATEST = date(9998, 12, 31)
PRESETS = {"today": ("Today", 1), "7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30)}
DEFAULT_PRESET = "7d"


class ReportRangeForm(forms.Form):
    """The range of a report: `from` and `to` are local dates, both included; a
    `preset` (today, last 7 or 30 days) takes precedence over them. Nothing given
    means the last 7 days; only `to` means the week up to it; only `from` means
    from then to today."""

    preset = forms.ChoiceField(
        required=False, choices=[("", "Dates below")] + [(k, v[0]) for k, v in PRESETS.items()]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword, so these are added here rather than declared.
        self.fields["from"] = forms.DateField(required=False, label="From")
        self.fields["to"] = forms.DateField(required=False, label="To")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        today = timezone.localdate()
        preset = data.get("preset") or ("" if data.get("from") or data.get("to") else "7d")
        if preset:
            first, last = today - timedelta(days=PRESETS[preset][1] - 1), today
        else:
            last = data.get("to") or today
            first = data.get("from") or last - timedelta(days=PRESETS[DEFAULT_PRESET][1] - 1)
        for name, value in (("from", first), ("to", last)):
            if not EARLIEST <= value <= LATEST:
                raise forms.ValidationError(
                    f"The “{name}” date must be between {EARLIEST} and {LATEST}."
                )
        if last < first:
            raise forms.ValidationError("The “to” date is before the “from” date.")
        days = (last - first).days + 1
        if days > MAX_RANGE_DAYS:
            raise forms.ValidationError(
                f"A report covers at most {MAX_RANGE_DAYS} days; this range has {days}. "
                "Choose a shorter range."
            )
        data["first"], data["last"] = first, last
        return data

    def bounds(self) -> tuple[datetime, datetime]:
        """The range as moments: from the start of the first day to the start of
        the day after the last, in the portal's time zone."""
        tz = timezone.get_default_timezone()
        first, last = self.cleaned_data["first"], self.cleaned_data["last"]
        since = timezone.make_aware(datetime.combine(first, time.min), tz)
        until = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), tz)
        return since, until


def _cell(key: str, value) -> str:
    """A value as the page shows it."""
    if value is None:
        return "—"
    if key == "hit_ratio":
        return f"{value * 100:.1f}%"
    return str(value)


def _table(report: Report, rows: list[dict] | None = None, *, footer: bool = False) -> dict:
    """A report's rows as the page shows them, with a footer of the totals under
    the columns they have."""
    rows = report.rows if rows is None else rows
    table = {
        "headings": [heading for _, heading in report.columns],
        "rows": [[_cell(key, row[key]) for key, _ in report.columns] for row in rows],
    }
    if footer and rows:
        cells = [
            _cell(key, report.totals[key]) if key in report.totals else ""
            for key, _ in report.columns
        ]
        table["footer"] = ["All", *cells[1:]]
    return table


def _bars(items: list[tuple[str, float | None]], *, display, full=None) -> list[dict]:
    """Bars for an inline SVG chart: each with its label, its shown value, its
    position (`index`) and its length as a percentage of `full` (by default the
    largest value)."""
    top = full if full is not None else max((value or 0 for _, value in items), default=0)
    return [
        {
            "index": index,
            "label": label,
            "value": display(value),
            "percent": round((value or 0) / top * 100, 1) if top else 0,
        }
        for index, (label, value) in enumerate(items)
    ]


def _hbar_chart(items, *, display, full=None) -> dict:
    """A horizontal bar chart, one row of 22 units per item, bars up to 400 long."""
    bars = _bars(items, display=display, full=full)
    for bar in bars:
        bar["y"] = bar["index"] * 22
        bar["width"] = round(bar["percent"] * 4, 1)
        bar["value_x"] = 170 + bar["width"] + 6
    return {"bars": bars, "height": max(len(bars) * 22, 22)}


def _vbar_chart(items, *, display) -> dict:
    """A vertical bar chart, 20 units per item, bars up to 100 high."""
    bars = _bars(items, display=display)
    for bar in bars:
        bar["x"] = bar["index"] * 20 + 2
        bar["y"] = round(100 - bar["percent"], 1)
        bar["label_x"] = bar["index"] * 20 + 10
    return {"bars": bars, "width": max(len(bars) * 20, 20)}


def _range_query(first: date, last: date) -> str:
    return f"from={first.isoformat()}&to={last.isoformat()}"


def _form_context(form) -> dict:
    return {
        "form": form,
        "presets": [(key, label) for key, (label, _) in PRESETS.items()],
        "retention_days": settings.REPORTS_RETENTION_DAYS,
        "max_range_days": MAX_RANGE_DAYS,
    }


@role_required(Role.VIEWER)
@require_GET
def reports_page(request):
    form = ReportRangeForm(request.GET)
    if not form.is_valid():
        return render(request, "monitoring/reports.html", _form_context(form), status=400)
    since, until = form.bounds()
    reports = {name: select(since=since, until=until) for name, select in REPORTS.items()}
    usage = reports["usage"]
    first, last = form.cleaned_data["first"], form.cleaned_data["last"]
    query = _range_query(first, last)
    context = {
        **_form_context(form),
        "first": first,
        "last": last,
        "hourly": until - since <= HOURLY_UP_TO,
        "reports": reports,
        "tables": {
            name: _table(report, footer=True) for name, report in reports.items() if name != "usage"
        },
        "usage_tables": [
            (title, _table(usage, [row for row in usage.rows if row["by"] == by]))
            for by, title in (("site", "By site"), ("pool", "By pool"), ("hour", "By hour of day"))
        ],
        "csv_links": {
            name: f"{reverse('monitoring:report-csv', args=[name])}?{query}" for name in REPORTS
        },
        "hit_ratio_chart": _hbar_chart(
            [(p["pool"], p["hit_ratio"]) for p in reports["allocations"].totals["by_pool"]],
            display=lambda v: _cell("hit_ratio", v),
            full=1.0,
        ),
        "hour_chart": _vbar_chart(
            [(f"{r['key']:02d}", r["desktop_hours"]) for r in usage.rows if r["by"] == "hour"],
            display=str,
        ),
    }
    return render(request, "monitoring/reports.html", context)


def _csv_value(value) -> str:
    """A value as a CSV cell. Text that a spreadsheet would run as a formula is
    quoted (pool and site names are slugs, but the guard costs nothing)."""
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


@role_required(Role.VIEWER)
@require_GET
def report_csv(request, name: str):
    select = REPORTS.get(name)
    if select is None:
        raise Http404(f"No report named {name}.")
    form = ReportRangeForm(request.GET)
    if not form.is_valid():
        errors = [str(e) for field_errors in form.errors.values() for e in field_errors]
        return HttpResponse(
            "Bad range: " + " ".join(errors) + "\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    since, until = form.bounds()
    report = select(since=since, until=until)
    first, last = form.cleaned_data["first"], form.cleaned_data["last"]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="deskops-{name}-{first.isoformat()}-{last.isoformat()}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow([key for key, _ in report.columns])
    for row in report.rows:
        writer.writerow([_csv_value(row[key]) for key, _ in report.columns])
    return response
