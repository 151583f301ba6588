"""Object lists on the staff pages: search, filters, sorting, pages and CSV export,
declared once per object.

A list is a `Listing` subclass naming its queryset, columns, filters and search
fields; `listing_response` turns a request into the page, the HTMX fragment (when
the filter form or a header link asks for it) or the CSV file. The query string
is the whole state, so every view of a list can be bookmarked and shared:

    ?q=alice&state=ready&sort=-created_at&page=3&per_page=100&format=csv

Anything in it that does not fit (an unknown sort, a page past the end, a filter
value that is not a choice) is ignored or corrected, never an error page.

Each page costs a fixed number of queries whatever its size: one count, one page
of rows (with the `select_related` the queryset declares) and one per filter
whose choices come from the database."""

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

PAGE_SIZES = (25, 50, 100, 200)
CSV_CHUNK = 2000


@dataclass(frozen=True)
class Column:
    """One column: `key` is an attribute path on the row object (`pool.name`);
    `sort` the ORM field it sorts by ("" derives it from the key, None means not
    sortable); `value` computes the cell from the row instead; `url` links it."""

    key: str
    label: str
    sort: str | None = ""
    value: Callable[[Any], Any] | None = None
    url: Callable[[Any], str] | None = None

    @property
    def order_field(self) -> str | None:
        if self.sort is None:
            return None
        return self.sort or self.key.replace(".", "__")

    def cell(self, obj: Any) -> Any:
        if self.value is not None:
            return self.value(obj)
        return resolve(obj, self.key)


def resolve(obj: Any, path: str) -> Any:
    """Follow an attribute path; a field with choices gives its label, a missing
    link gives None."""
    *parents, name = path.split(".")
    for part in parents:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    display = getattr(obj, f"get_{name}_display", None)
    return display() if callable(display) else getattr(obj, name, None)


@dataclass(frozen=True)
class Filter:
    """A drop-down filter. `choices` is a list of (value, label) pairs or a function
    returning one (read when the form is built); `lookup` is the ORM lookup the
    chosen value is matched with, or `apply(queryset, value)` does it instead."""

    name: str
    label: str
    choices: Sequence[tuple[Any, str]] | Callable[[], Iterable[tuple[Any, str]]]
    lookup: str = ""
    apply: Callable[[QuerySet, str], QuerySet] | None = None

    def form_field(self) -> forms.Field:
        choices = self.choices() if callable(self.choices) else self.choices
        return forms.ChoiceField(
            label=self.label,
            required=False,
            choices=[("", "all"), *((str(value), label) for value, label in choices)],
        )

    def filter(self, queryset: QuerySet, value: str) -> QuerySet:
        if self.apply is not None:
            return self.apply(queryset, value)
        return queryset.filter(**{self.lookup or self.name: value})


YES_NO = [("yes", "yes"), ("no", "no")]


def yes_no_filter(name: str, label: str, lookup: str, *, negate: bool = False) -> Filter:
    """A yes / no filter on a boolean lookup. With `negate`, "yes" means the lookup
    is false: `yes_no_filter("failed", "Failed", "failed_at__isnull", negate=True)`."""
    return Filter(
        name,
        label,
        YES_NO,
        apply=lambda qs, value: qs.filter(**{lookup: (value == "yes") != negate}),
    )


@dataclass
class Cell:
    text: Any
    url: str = ""


@dataclass
class Row:
    obj: Any
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Header:
    label: str
    url: str = ""
    direction: str = ""  # "asc", "desc" or "" when the list is not sorted by it


class Listing:
    """Subclass per list. Required: `title`, `columns`, `get_queryset()`."""

    title = ""
    noun = "rows"
    columns: Sequence[Column] = ()
    filters: Sequence[Filter] = ()
    search_fields: Sequence[str] = ()
    search_placeholder = "Search"
    default_sort = ""  # a column key, "-" first for descending
    page_size = 50
    # A template that renders one `<tr>` for `row` (a Row), when plain cells do not do.
    row_template = ""
    csv_filename = "export"
    # Filters of a time window on this field, when set (since / until).
    time_field = ""

    def __init__(self, request: HttpRequest):
        self.request = request
        self.params = request.GET
        self.form = self._build_form()
        self.form.is_valid()
        self.values = getattr(self.form, "cleaned_data", {})

    def get_queryset(self) -> QuerySet:
        raise NotImplementedError

    # -- state from the query string -------------------------------------------------

    def _build_form(self) -> forms.Form:
        fields: dict[str, forms.Field] = {}
        if self.search_fields:
            fields["q"] = forms.CharField(required=False, max_length=200, label="Search")
        for flt in self.filters:
            fields[flt.name] = flt.form_field()
        if self.time_field:
            widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
            fields["since"] = forms.DateTimeField(required=False, label="From", widget=widget)
            fields["until"] = forms.DateTimeField(required=False, label="To", widget=widget)
        form_class = type("ListingForm", (forms.Form,), fields)
        return form_class(self.params or None)

    def _sortable(self) -> dict[str, str]:
        return {c.key: c.order_field for c in self.columns if c.order_field}

    @property
    def sort(self) -> str:
        wanted = self.params.get("sort", "")
        if wanted.lstrip("-") in self._sortable():
            return wanted
        return self.default_sort

    @property
    def per_page(self) -> int:
        try:
            wanted = int(self.params.get("per_page", self.page_size))
        except ValueError:
            return self.page_size
        return wanted if wanted in PAGE_SIZES else self.page_size

    # -- rows ---------------------------------------------------------------------

    def rows(self) -> QuerySet:
        queryset = self.get_queryset()
        query = (self.values.get("q") or "").strip()
        if query and self.search_fields:
            condition = Q()
            for name in self.search_fields:
                condition |= Q(**{f"{name}__icontains": query})
            queryset = queryset.filter(condition)
        for flt in self.filters:
            value = self.values.get(flt.name)
            if value:
                queryset = flt.filter(queryset, value)
        if self.time_field:
            if self.values.get("since"):
                queryset = queryset.filter(**{f"{self.time_field}__gte": self.values["since"]})
            if self.values.get("until"):
                queryset = queryset.filter(**{f"{self.time_field}__lte": self.values["until"]})
        order = []
        if self.sort:
            field_name = self._sortable()[self.sort.lstrip("-")]
            order.append(f"-{field_name}" if self.sort.startswith("-") else field_name)
        # The primary key last keeps pages stable when the sorted values repeat.
        order.append("-pk" if self.sort.startswith("-") else "pk")
        return queryset.order_by(*order)

    def row(self, obj: Any) -> Row:
        return Row(
            obj=obj,
            cells=[Cell(c.cell(obj), c.url(obj) if c.url else "") for c in self.columns],
        )

    # -- links --------------------------------------------------------------------

    def url_with(self, **changes: Any) -> str:
        params = {k: v for k, v in self.params.items() if k != "format"}
        for key, value in changes.items():
            if value in (None, ""):
                params.pop(key, None)
            else:
                params[key] = value
        return f"{self.request.path}?{urlencode(params)}" if params else self.request.path

    def headers(self) -> list[Header]:
        current = self.sort
        result = []
        for column in self.columns:
            if not column.order_field:
                result.append(Header(column.label))
                continue
            direction = ""
            if current.lstrip("-") == column.key:
                direction = "desc" if current.startswith("-") else "asc"
            flipped = column.key if direction == "desc" else f"-{column.key}"
            if not direction:
                flipped = column.key
            result.append(Header(column.label, self.url_with(sort=flipped, page=None), direction))
        return result

    # -- answers ------------------------------------------------------------------

    def context(self) -> dict:
        paginator = Paginator(self.rows(), self.per_page)
        page = paginator.get_page(self.params.get("page"))
        return {
            "listing": self,
            "filter_form": self.form,
            "headers": self.headers(),
            "page": page,
            "rows": [self.row(obj) for obj in page.object_list],
            "csv_url": self.url_with(format="csv", page=None),
            "first_url": self.url_with(page=None),
            "previous_url": self.url_with(page=page.previous_page_number())
            if page.has_previous()
            else "",
            "next_url": self.url_with(page=page.next_page_number()) if page.has_next() else "",
            "last_url": self.url_with(page=paginator.num_pages),
            "page_sizes": [(size, self.url_with(per_page=size, page=None)) for size in PAGE_SIZES],
        }

    def csv_response(self) -> StreamingHttpResponse:
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(self._csv_lines(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{self.csv_filename}-{stamp}.csv"'
        return response

    def _csv_lines(self):
        buffer = _LineBuffer()
        writer = csv.writer(buffer)
        yield writer.writerow([c.label for c in self.columns])
        for obj in self.rows().iterator(chunk_size=CSV_CHUNK):
            yield writer.writerow([csv_safe(c.cell(obj)) for c in self.columns])


class _LineBuffer:
    def write(self, value: str) -> str:
        return value


def csv_safe(value: Any) -> str:
    """A cell as CSV text. Text a spreadsheet would run as a formula (= + - @ at
    the start) gets a leading apostrophe, so an exported name cannot run code."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat(timespec="seconds")
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def listing_response(
    request: HttpRequest,
    listing_class: type[Listing],
    *,
    template: str = "includes/listing_page.html",
    extra: dict | None = None,
) -> HttpResponse:
    """The list as a page, as the HTMX fragment that replaces the table, or as CSV
    (`?format=csv`, every matching row, not only the page)."""
    listing = listing_class(request)
    if request.GET.get("format") == "csv":
        return listing.csv_response()
    context = {**listing.context(), **(extra or {})}
    if getattr(request, "htmx", False) and request.htmx.target == "listing":
        return render(request, "includes/listing.html", context)
    return render(request, template, context)
