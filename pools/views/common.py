"""What the pools pages share: who is acting, saving a form through the audited
update, where to go back to after a button, counts as subqueries and cheap links
for long lists."""

from functools import lru_cache

from django.contrib import messages
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import redirect
from django.urls import get_script_prefix, reverse

from portal.pages import next_url, who
from portal.services import model_update


def save_form(request, form, what: str) -> bool:
    """Save a bound ModelForm's changed fields through the audited update. The
    form has already written the new values onto its instance, so the update works
    on a fresh copy from the database to see what they were before."""
    if not form.is_valid():
        return False
    fields = {name: form.cleaned_data[name] for name in form.changed_data}
    if fields:
        stored = type(form.instance).objects.get(pk=form.instance.pk)
        model_update(obj=stored, fields=fields, **who(request))
    messages.success(request, f"Saved {what}.")
    return True


def redirect_back(request, default: str, *args):
    """Back to the page the button was on (`next`, when it is one of ours), else
    to `default`."""
    return redirect(next_url(request, reverse(default, args=args)))


def count_of(related: QuerySet, link: str) -> Coalesce:
    """A per-row count of `related` rows whose `link` points at the row, as a
    subquery: several counts on one list do not multiply each other's joins."""
    counted = (
        related.filter(**{link: OuterRef("pk")})
        .order_by()
        .values(link)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


_PK_MARK = 987654321


@lru_cache(maxsize=64)
def _url_template(name: str, prefix: str) -> str:
    # `prefix` (the script prefix reverse() uses) is only part of the cache key.
    return reverse(name, args=[_PK_MARK])


def detail_url(name: str, pk: int) -> str:
    """`reverse(name, args=[pk])` for a page of one object, resolved once per URL
    name: a list of two hundred rows links each row several times."""
    return _url_template(name, get_script_prefix()).replace(str(_PK_MARK), str(pk))
