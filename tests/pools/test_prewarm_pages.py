"""The boot-storm planner's pages: what each role sees and may do, the chart, and
bad form input answered with clear errors (never a 500)."""

from datetime import time

import pytest

from pools.models import PoolSchedule, Shift
from portal.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/pools/prewarm/"


@pytest.fixture(autouse=True)
def _planner_settings(settings):
    settings.PREWARM_BOOT_SECONDS = 300
    settings.PREWARM_SAFETY_MARGIN_MINUTES = 10


def login(client, role):
    client.force_login(UserFactory(username=f"as-{role}", role=role))
    return client


@pytest.fixture
def shift(pool):
    pool.max_concurrent_boots = 10
    pool.save()
    return Shift.objects.create(
        pool=pool,
        label="Morning",
        weekdays=[1, 2],
        starts_at=time(8, 0),
        ends_at=time(16, 0),
        seats=100,
    )


def valid_form(pool, /, **changes):
    form = {
        "pool": pool.pk,
        "label": "Evening",
        "weekdays": ["1", "3"],
        "starts_at": "18:00",
        "ends_at": "02:00",
        "seats": "40",
    }
    form.update(changes)
    return form


def test_a_viewer_reads_the_plan_and_its_chart_but_gets_no_forms(client, shift, pool):
    page = login(client, "viewer").get(f"{URL}?day=1")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Morning" in html and "07:00" in html and ">ok<" in html
    assert "<svg" in html and "<polyline" in html and "Morning 08:00" in html
    assert "seats needed" in html
    assert "Add a shift" not in html and "Apply the plan" not in html
    assert 'href="/pools/shifts/' not in html
    # A weekday with no shift says so instead of drawing an empty chart.
    assert "No shift of this region starts on Wed" in client.get(f"{URL}?day=3").content.decode()


@pytest.mark.parametrize("day", ["0", "8", "abc", "-1", "1.5", "", "%C2%B2", "%D9%A3"])
def test_a_bad_day_falls_back_to_today(client, shift, day):
    assert login(client, "viewer").get(f"{URL}?day={day}").status_code == 200


def test_the_page_without_shifts(client, db):
    assert "No shifts yet" in login(client, "viewer").get(URL).content.decode()


def test_an_operator_adds_a_shift(client, pool):
    response = login(client, "operator").post(f"{URL}?day=3", valid_form(pool))
    assert response.status_code == 302 and response["Location"] == f"{URL}?day=3"
    shift = Shift.objects.get()
    assert (shift.label, shift.weekdays, shift.seats) == ("Evening", [1, 3], 40)
    assert (shift.starts_at, shift.ends_at) == (time(18, 0), time(2, 0))
    event = AuditEvent.objects.get(action="shift.create")
    assert event.actor == "as-operator" and event.after["seats"] == 40
    page = client.get(f"{URL}?day=3").content.decode()
    assert "Evening" in page and "not applied" in page and "Add a shift" in page


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"seats": "abc"}, "seats", "Enter a whole number."),
        ({"seats": "0"}, "seats", "greater than or equal to 1"),
        ({"seats": "-5"}, "seats", "greater than or equal to"),
        ({"seats": "1000001"}, "seats", "less than or equal to 100000"),
        ({"starts_at": "25:99"}, "starts_at", "Enter a valid time."),
        ({"ends_at": "18:00"}, "ends_at", "must not start and end at the same time"),
        ({"weekdays": ["9"]}, "weekdays", "Select a valid choice"),
        ({"pool": "999999"}, "pool", "Select a valid choice"),
        ({"pool": "x"}, "pool", "Select a valid choice"),
        ({"label": ""}, "label", "This field is required."),
        ({"label": "x" * 65}, "label", "at most 64 characters"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(client, pool, changes, field, message):
    response = login(client, "operator").post(URL, valid_form(pool, **changes))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Shift.objects.exists()


def test_a_second_shift_with_the_same_label_in_the_pool_is_refused(client, shift, pool):
    response = login(client, "operator").post(URL, valid_form(pool, label="Morning"))
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert Shift.objects.count() == 1


def test_help_desk_may_not_add_shifts_or_apply(client, pool):
    login(client, "helpdesk")
    assert client.post(URL, valid_form(pool)).status_code == 403
    assert client.post(f"{URL}apply/").status_code == 403
    assert not Shift.objects.exists()


def test_an_operator_applies_the_plan(client, shift, pool):
    response = login(client, "operator").post(f"{URL}apply/")
    assert response.status_code == 302
    window = PoolSchedule.objects.get()
    assert (window.label, window.starts, window.target_ready) == (
        "prewarm: Morning",
        time(7, 0),
        100,
    )
    assert AuditEvent.objects.get(action="shift.prewarm_apply").actor == "as-operator"
    page = client.get(response["Location"]).content.decode()
    assert "Plan applied: 1 windows created" in page and ">applied<" in page
    # The pool's page shows the window and links to the planner.
    pool_page = client.get(f"/pools/{pool.pk}/").content.decode()
    assert "prewarm: Morning" in pool_page and 'href="/pools/prewarm/"' in pool_page


def test_an_operator_edits_a_shift(client, shift):
    login(client, "operator")
    assert client.get(f"/pools/shifts/{shift.pk}/").status_code == 200
    form = valid_form(shift.pool, label="Morning", seats="120", starts_at="07:30")
    response = client.post(f"/pools/shifts/{shift.pk}/", form)
    assert response.status_code == 302
    shift.refresh_from_db()
    assert (shift.seats, shift.starts_at) == (120, time(7, 30))
    event = AuditEvent.objects.get(action="shift.update")
    assert (event.before["seats"], event.after["seats"]) == (100, 120)


def test_bad_edits_are_refused_and_leave_the_shift_alone(client, shift):
    login(client, "operator")
    response = client.post(f"/pools/shifts/{shift.pk}/", valid_form(shift.pool, seats="lots"))
    assert response.status_code == 400 and "Enter a whole number." in response.content.decode()
    shift.refresh_from_db()
    assert shift.seats == 100
    assert client.get("/pools/shifts/999999/").status_code == 404


def test_an_operator_removes_a_shift_and_its_window(client, shift):
    login(client, "operator")
    client.post(f"{URL}apply/")
    assert client.post(f"/pools/shifts/{shift.pk}/delete/").status_code == 302
    assert not Shift.objects.exists() and not PoolSchedule.objects.exists()
    assert client.get(f"/pools/shifts/{shift.pk}/delete/").status_code == 405
    assert client.post("/pools/shifts/999999/delete/").status_code == 404


def test_an_impossible_shift_says_why(client, pool):
    Shift.objects.create(
        pool=pool, label="Huge", weekdays=[1], starts_at=time(8, 0), ends_at=time(9, 0),
        seats=pool.max_size + 1,
    )  # fmt: skip
    html = login(client, "viewer").get(f"{URL}?day=1").content.decode()
    assert "impossible" in html and f"the pool may hold at most {pool.max_size} VMs" in html
    assert "1 shift cannot be ready in time" in html


def test_the_admin_refuses_bad_weekdays_and_audits_what_it_saves(client, pool):
    from portal.models import AuditEvent

    admin = login(client, "administrator")
    form = {
        "pool": pool.pk, "label": "Night", "starts_at": "22:00", "ends_at": "06:00",
        "seats": "5",
    }  # fmt: skip
    bad = admin.post("/admin/pools/shift/add/", {**form, "weekdays": "[9]"})
    assert bad.status_code == 200 and "ISO weekdays" in bad.content.decode()
    assert not Shift.objects.exists()

    admin.post("/admin/pools/shift/add/", {**form, "weekdays": "[1, 2]"})
    shift = Shift.objects.get()
    assert shift.weekdays == [1, 2]
    admin.post(f"/admin/pools/shift/{shift.pk}/change/", {**form, "weekdays": "[3]", "seats": "7"})
    assert Shift.objects.get().seats == 7
    actions = list(
        AuditEvent.objects.filter(object_id=str(shift.pk)).values_list("action", flat=True)
    )
    assert "shift.create" in actions and "shift.update" in actions
