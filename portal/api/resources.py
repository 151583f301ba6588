"""Building blocks of the ops API's read endpoints: paging, query-string filters
that are validated like any other input, and links to the objects' portal pages."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination

from portal.links import object_url


class OpsPagination(PageNumberPagination):
    """Pages of 100 rows by default (`page`, `page_size` up to 500), like the alerts."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class DeferredJoinPagination(OpsPagination):
    """Pages of a long list, or of one whose rows carry many joined objects: the
    page's ids are found on the listed table alone (filters and order as asked),
    and only those rows are then read, with their joins. A database that joins
    before it sorts (SQLite does) otherwise joins every row of a large table to
    show one page, and a late page reads every wide row it skips; over the ids an
    index on the order can answer by itself."""

    def paginate_queryset(self, queryset, request, view=None):
        ids = super().paginate_queryset(queryset.values_list("pk", flat=True), request, view)
        if ids is None:
            return None
        ids = list(ids)
        rows = queryset.order_by().in_bulk(ids)
        return [rows[pk] for pk in ids if pk in rows]


class QueryFilters(serializers.Serializer):
    """A list endpoint's filters, read from the query string. A list field takes one
    value or several, comma-separated or repeated (`state=up,down`); an empty value
    is no filter. A value that does not validate is a 400 naming the parameter, so a
    script with a typo learns of it instead of reading an empty or unfiltered list."""

    def to_internal_value(self, data):
        values = {}
        for name, field in self.fields.items():
            if name not in data:
                continue
            if isinstance(field, serializers.ListField):
                raw = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
                items = [item.strip() for value in raw for item in str(value).split(",")]
                items = [item for item in items if item]
                if items:
                    values[name] = items
            else:
                value = data.get(name)
                if value is not None and str(value).strip() != "":
                    values[name] = value
        return super().to_internal_value(values)


def query_filters(serializer_class: type[QueryFilters], request) -> dict:
    """The request's validated filters; raises a ValidationError (400) otherwise."""
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


def choice_list(choices, help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=choices),
        required=False,
        max_length=50,
        help_text=help_text,
    )


def named(queryset, slug_field: str, noun: str, help_text: str) -> serializers.SlugRelatedField:
    """A filter naming one object by its unique name; an unknown name is a 400."""
    return serializers.SlugRelatedField(
        slug_field=slug_field,
        queryset=queryset,
        required=False,
        help_text=help_text,
        error_messages={
            "does_not_exist": f"There is no {noun} “{{value}}”.",
            "invalid": f"Not a valid {noun} name.",
        },
    )


def portal_address(path: str) -> str:
    """A portal path as operators reach it (`PORTAL_BASE_URL`); "" stays ""."""
    return settings.PORTAL_BASE_URL.rstrip("/") + path if path else ""


def portal_page_url(object_type: str, object_id) -> str:
    """The object's page in the portal, or "" if it has none."""
    return portal_address(object_url(object_type, str(object_id)))


@extend_schema_field(OpenApiTypes.STR)
class PortalPageField(serializers.Field):
    """The object's page in the portal (`app_label.model` names its kind)."""

    def __init__(self, object_type: str, **kwargs):
        kwargs.setdefault("help_text", "The object's page in the portal.")
        super().__init__(source="*", read_only=True, **kwargs)
        self.object_type = object_type

    def to_representation(self, instance) -> str:
        return portal_page_url(self.object_type, instance.pk)
