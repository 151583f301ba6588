"""The maintenance ops API: tasks (with `start`), runs (with `cancel`, `retry`,
`rollback`, their VMs and log), and the OpenAPI schema still builds."""

import pytest
from rest_framework.test import APIClient

from maintenance.choices import ItemStatus, RunStatus
from maintenance.models import MaintenanceRun, MaintenanceTask
from portal.models import AuditEvent
from tests.factories import UserFactory

from .conftest import drive

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


def task_body(**overrides) -> dict:
    body = {
        "name": "api-patch",
        "action": "script",
        "script": "echo hi",
        "target_pools": ["agents"],
        "credential": "sim",
        "batch_size": 3,
        "max_parallel": 3,
        "pause_seconds": 0,
        "canary_size": 0,
    }
    body.update(overrides)
    return body


def test_the_api_is_for_staff_only(db):
    assert APIClient().get("/api/v1/maintenance-tasks/").status_code == 401
    client = APIClient()
    client.force_authenticate(UserFactory())
    assert client.get("/api/v1/maintenance-runs/").status_code == 403


def test_a_task_is_created_started_and_followed_through_the_api(api, warm_pool, sim_credential):
    created = api.post("/api/v1/maintenance-tasks/", task_body(), format="json")
    assert created.status_code == 201, created.content
    task_id = created.json()["id"]
    assert created.json()["target_pools"] == ["agents"]
    assert AuditEvent.objects.filter(action="maintenancetask.create", actor="operator").exists()

    started = api.post(f"/api/v1/maintenance-tasks/{task_id}/start/")
    assert started.status_code == 201, started.content
    run_id = started.json()["id"]
    assert started.json()["counts"]["total"] == 6
    again = api.post(f"/api/v1/maintenance-tasks/{task_id}/start/")
    assert again.status_code == 409 and again.json()["error"] == "run_conflict"

    drive(MaintenanceRun.objects.get(pk=run_id))

    run = api.get(f"/api/v1/maintenance-runs/{run_id}/").json()
    assert run["status"] == RunStatus.SUCCEEDED and run["percent"] == 100
    items = api.get(f"/api/v1/maintenance-runs/{run_id}/items/").json()
    assert len(items) == 6 and {i["status"] for i in items} == {ItemStatus.SUCCEEDED}
    logs = api.get(f"/api/v1/maintenance-runs/{run_id}/logs/").json()
    assert logs[0]["message"].startswith("Started by operator")
    listed = api.get(f"/api/v1/maintenance-runs/?task={task_id}").json()
    assert [r["id"] for r in listed] == [run_id]
    assert api.get("/api/v1/maintenance-runs/?status=running").json() == []
    assert api.post(f"/api/v1/maintenance-runs/{run_id}/retry/").status_code == 409


def test_the_api_refuses_an_invalid_task_with_the_reasons(api, warm_pool, sim_credential):
    response = api.post("/api/v1/maintenance-tasks/", task_body(batch_size=0), format="json")
    assert response.status_code == 400 and "batch_size" in response.json()["fields"]

    body = task_body(window_start="08:00", window_end="07:00", target_pools=[])
    response = api.post("/api/v1/maintenance-tasks/", body, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert "ends before it starts" in fields["window_end"][0]
    assert "Choose what the task works on" in fields["target_pools"][0]

    rollout = api.post(
        "/api/v1/maintenance-tasks/",
        task_body(action="rebuild", image="win11", target_pools=[], in_use_policy="force"),
        format="json",
    )
    assert rollout.status_code == 400
    assert set(rollout.json()["fields"]) >= {"pool", "in_use_policy"}


def test_a_partial_update_keeps_the_rest_and_is_audited(api, warm_pool, sim_credential):
    task_id = api.post("/api/v1/maintenance-tasks/", task_body(), format="json").json()["id"]
    response = api.patch(
        f"/api/v1/maintenance-tasks/{task_id}/",
        {"schedule_kind": "cron", "cron": "0 22 * * 1-5"},
        format="json",
    )
    assert response.status_code == 200, response.content
    task = MaintenanceTask.objects.get(pk=task_id)
    assert list(task.target_pools.all()) == [warm_pool]
    assert task.periodic_task.crontab.hour == "22"
    assert AuditEvent.objects.filter(action="maintenancetask.update").exists()


def test_cancel_and_rollback_through_the_api(api, warm_pool):
    body = task_body(
        name="roll",
        action="rebuild",
        image="win11",
        pool="agents",
        target_pools=[],
        credential=None,
        canary_size=1,
    )
    task_id = api.post("/api/v1/maintenance-tasks/", body, format="json").json()["id"]
    run_id = api.post(f"/api/v1/maintenance-tasks/{task_id}/start/").json()["id"]
    drive(MaintenanceRun.objects.get(pk=run_id))

    rollback = api.post(f"/api/v1/maintenance-runs/{run_id}/rollback/")
    assert rollback.status_code == 201, rollback.content
    assert rollback.json()["rollback_of"] == run_id
    assert [h["event"] for h in rollback.json()["image_history"]] == ["roll-out", "roll-back"]
    cancelled = api.post(f"/api/v1/maintenance-runs/{rollback.json()['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == RunStatus.CANCELLED
    warm_pool.refresh_from_db()
    assert warm_pool.image == "win10"


def test_a_task_with_runs_is_not_deleted(api, warm_pool, sim_credential):
    task_id = api.post("/api/v1/maintenance-tasks/", task_body(), format="json").json()["id"]
    api.post(f"/api/v1/maintenance-tasks/{task_id}/start/")
    response = api.delete(f"/api/v1/maintenance-tasks/{task_id}/")
    assert response.status_code == 409 and response.json()["error"] == "task_has_runs"
    fresh = api.post("/api/v1/maintenance-tasks/", task_body(name="other"), format="json").json()
    assert api.delete(f"/api/v1/maintenance-tasks/{fresh['id']}/").status_code == 204


def test_the_openapi_schema_builds_with_the_maintenance_api(client, staff):
    client.force_login(staff)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/maintenance-tasks/",
        "/api/v1/maintenance-tasks/{id}/start/",
        "/api/v1/maintenance-runs/{id}/cancel/",
        "/api/v1/maintenance-runs/{id}/retry/",
        "/api/v1/maintenance-runs/{id}/rollback/",
        "/api/v1/maintenance-runs/{id}/items/",
        "/api/v1/guest-credentials/",
    ):
        assert path in paths, path
    credential = response.json()["components"]["schemas"]["GuestCredential"]["properties"]
    assert credential["password"]["writeOnly"] is True
