"""The audit trail page: who did what to which object, when, from where, with
before and after; filters, search, a time window, CSV; and the list framework's
own rules (bad query strings, formula cells in CSV)."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.listing import csv_safe
from portal.models import AuditEvent
from portal.services import audit_record
from tests.factories import UserFactory, VMPoolFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(username="olga", role="operator"))
    return client


def test_a_change_made_on_a_page_is_in_the_trail_with_its_address(operator, region):
    pool = VMPoolFactory(region=region, name="agents-east", target_ready=4)
    operator.post(
        f"/pools/{pool.pk}/",
        {**_pool_form(pool), "target_ready": 6},
        REMOTE_ADDR="10.20.30.40",
    )

    page = operator.get("/audit/?q=agents-east").content.decode()
    event = AuditEvent.objects.get(action="vmpool.update")
    assert (event.actor, event.source_ip) == ("olga", "10.20.30.40")
    assert event.before["target_ready"] == 4 and event.after["target_ready"] == 6
    assert "olga" in page and "10.20.30.40" in page and "vmpool.update" in page
    detail = operator.get(f"/audit/{event.pk}/").content.decode()
    assert "target_ready" in detail and f'href="/pools/{pool.pk}/"' in detail


def _pool_form(pool) -> dict:
    from pools.forms import PoolForm

    form = PoolForm(instance=pool)
    return {
        name: value
        for name, value in ((n, form[n].value()) for n in form.fields)
        if value is not None
    }


def test_filters_by_action_object_actor_and_time(operator, region):
    pool = VMPoolFactory(region=region, name="p1")
    audit_record(action="vmpool.update", obj=pool, actor="olga")
    audit_record(action="vmpool.resume", obj=pool, actor="hugo")
    old = audit_record(action="vmpool.update", obj=pool, actor="vera")
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    def actors(query):
        rows = _csv(operator.get(f"/audit/?format=csv&{query}"))
        return sorted(row[1] for row in rows[1:])

    assert actors("action=vmpool.update") == ["olga", "vera"]
    assert actors("actor=hugo") == ["hugo"]
    assert actors(f"object_type=pools.vmpool&object_id={pool.pk}") == ["hugo", "olga", "vera"]
    since = (timezone.localtime() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert actors(f"object_type=pools.vmpool&since={since}") == ["hugo", "olga"]


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv"
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize(
    "query",
    [
        "sort=nonsense",
        "page=999",
        "page=-1",
        "per_page=7",
        "action=nope",
        "since=yesterday",
        "q=" + "x" * 500,
    ],
)
def test_bad_query_strings_answer_with_the_page(operator, query):
    audit_record(action="login", object_type="auth.user", object_repr="olga")
    assert operator.get(f"/audit/?{query}").status_code == 200


def test_the_table_alone_for_htmx(operator):
    response = operator.get("/audit/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="listing")
    assert response.status_code == 200
    assert b'<div id="listing"' in response.content and b"<html" not in response.content


def test_an_object_page_shows_its_recent_events_with_a_link_to_all(operator, region):
    pool = VMPoolFactory(region=region)
    audit_record(action="vmpool.pause", obj=pool, actor="system")
    page = operator.get(f"/pools/{pool.pk}/").content.decode()
    assert "vmpool.pause" in page
    assert f"/audit/?object_type=pools.vmpool&amp;object_id={pool.pk}" in page


def test_help_desk_and_viewers_do_not_read_the_trail(client):
    for role in ("viewer", "helpdesk"):
        client.force_login(UserFactory(role=role))
        assert client.get("/audit/").status_code == 403


def test_csv_cells_that_would_run_as_formulas_are_defused():
    assert csv_safe('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert csv_safe("@SUM(A1)") == "'@SUM(A1)"
    assert csv_safe("-12.5") == "-12.5"
    assert csv_safe(None) == ""
    assert csv_safe("alice") == "alice"
