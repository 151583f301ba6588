"""The placement comparison page: who reads it, who starts a replay, what a bad
value gets, and the worker's side of a run."""

import pytest
from django.urls import reverse

from portal.models import AuditEvent
from simulation.models import PlacementRun
from simulation.replay import ReplayConfig, compare
from simulation.replay_services import placement_run_execute, placement_run_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/simulation/placement/"
GOOD = {"seed": "3", "hosts": "10", "seats": "400", "host_boot_cap": "", "host_failure": "on"}


@pytest.fixture(scope="module")
def small_report():
    return compare(ReplayConfig(hosts=10, seats=400))


def _as(client, role):
    client.force_login(UserFactory(username=f"as-{role}", role=role))
    return client


def test_the_url_name():
    assert reverse("simulation:placement") == URL


def test_a_viewer_reads_the_latest_run_without_the_form(client, small_report):
    placement_run_record(report=small_report, actor="simulate_placement")
    response = _as(client, "viewer").get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Dynamic priority" in body and "Nova weigher" in body
    assert "host CPU CV at the peak" in body
    assert "<svg" in body and "<polyline" in body
    assert "Run a new replay" not in body


def test_the_page_says_when_nothing_ran_yet(client):
    response = _as(client, "viewer").get(URL)
    assert response.status_code == 200
    assert "No replay has run yet" in response.content.decode()


def test_an_operator_starts_a_replay_that_a_worker_runs(client):
    response = _as(client, "operator").post(URL, GOOD)
    run = PlacementRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"?run={run.pk}")
    assert run.status == PlacementRun.Status.QUEUED and run.created_by == "as-operator"
    assert run.parameters["seed"] == 3 and run.parameters["hosts"] == 10
    # The policy's own factors and cap are used when none is given.
    assert run.parameters["mu"] == -0.05 and run.parameters["host_boot_cap"] == 3
    assert AuditEvent.objects.filter(
        action="simulation.placement_run", actor="as-operator"
    ).exists()

    waiting = client.get(response["Location"])
    assert "A worker is running this replay" in waiting.content.decode()

    assert placement_run_execute(run_id=run.pk) == "done"
    assert placement_run_execute(run_id=run.pk) == "not queued"  # delivered twice: run once
    run.refresh_from_db()
    assert run.status == PlacementRun.Status.DONE and run.finished_at is not None
    assert [p["key"] for p in run.results["policies"]] == ["dynamic", "round-robin", "nova"]
    shown = client.get(response["Location"]).content.decode()
    assert f"Replay #{run.pk}" in shown and "busiest host CPU at the peak" in shown


def test_a_failing_replay_says_so(client, monkeypatch):
    run = PlacementRun.objects.create(parameters={"seed": 1, "hosts": 10, "seats": 400})

    def broken(config):
        raise ValueError("no hosts to replay")

    monkeypatch.setattr("simulation.replay_services.compare", broken)
    assert placement_run_execute(run_id=run.pk) == "failed"
    run.refresh_from_db()
    assert run.status == PlacementRun.Status.FAILED and "no hosts" in run.error
    page = _as(client, "viewer").get(f"{URL}?run={run.pk}").content.decode()
    assert "The replay failed: no hosts to replay" in page


@pytest.mark.parametrize(
    "field, value",
    [
        ("hosts", "1000"),
        ("hosts", "3"),
        ("seats", "abc"),
        ("seats", "999999"),
        ("seed", "-1"),
        ("host_boot_cap", "0"),
        ("seed", ""),
    ],
)
def test_bad_values_are_a_400_naming_the_field(client, field, value):
    response = _as(client, "operator").post(URL, {**GOOD, field: value})
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors
    assert not PlacementRun.objects.exists()


def test_who_may_do_what(client):
    assert client.get(URL).status_code == 302  # to the login page
    assert _as(client, "helpdesk").post(URL, GOOD).status_code == 403
    assert not PlacementRun.objects.exists()
    assert _as(client, "viewer").get(URL).status_code == 200


def test_an_unknown_run_is_a_404_and_a_bad_run_id_is_ignored(client):
    viewer = _as(client, "viewer")
    assert viewer.get(f"{URL}?run=999").status_code == 404
    assert viewer.get(f"{URL}?run=abc").status_code == 200


@pytest.mark.parametrize("raw", ["%C2%B2", "%D9%A3", "abc", "-1", "1.5", "%20"])
def test_a_run_id_that_is_not_a_plain_number_is_ignored(client, small_report, raw):
    # "²" and "٣" (Arabic-Indic three) pass str.isdigit() but int() rejects the first.
    run = placement_run_record(report=small_report, actor="simulate_placement")
    response = _as(client, "viewer").get(f"{URL}?run={raw}")
    assert response.status_code == 200
    assert response.context["run"] == run
