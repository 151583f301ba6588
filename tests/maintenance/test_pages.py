"""The maintenance pages: the task list, the form and its validation, the task
page, the run page with its progress (JSON polled by the page) and its buttons,
all audited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from maintenance.choices import ItemStatus, RunStatus
from maintenance.models import MaintenanceRun, MaintenanceTask
from maintenance.services import run_start
from portal.models import AuditEvent

from .conftest import drive, make_task

pytestmark = pytest.mark.django_db


def form_data(target, credential, /, **overrides) -> dict:
    data = {
        "name": "Patch agents",
        "description": "",
        "action": "script",
        "script": "echo hi",
        "package": "",
        "image": "",
        "pool": "",
        "target_pools": [target.pk],
        "target_hosts_text": "",
        "target_vms_text": "",
        "credential": credential.pk,
        "schedule_kind": "manual",
        "run_at": "",
        "cron": "",
        "window_start": "",
        "window_end": "",
        "batch_size": 5,
        "max_parallel": 2,
        "pause_seconds": 30,
        "canary_size": 1,
        "max_failure_percent": 10,
        "in_use_policy": "skip",
        "notice_minutes": 5,
        "notice_message": "Maintenance in {minutes} minutes.",
        "timeout_seconds": 600,
        "enabled": "on",
    }
    data.update(overrides)
    return data


def test_the_pages_need_a_staff_login(client):
    for url in ("/maintenance/", "/maintenance/tasks/new/", "/maintenance/credentials/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_creating_a_task_from_the_form_saves_it_audited(client, staff, warm_pool, sim_credential):
    client.force_login(staff)
    assert client.get("/maintenance/tasks/new/").status_code == 200

    response = client.post("/maintenance/tasks/new/", form_data(warm_pool, sim_credential))

    task = MaintenanceTask.objects.get(name="Patch agents")
    assert response.status_code == 302 and response["Location"] == f"/maintenance/tasks/{task.pk}/"
    assert list(task.target_pools.all()) == [warm_pool]
    event = AuditEvent.objects.get(action="maintenancetask.create")
    assert event.actor == "operator" and event.after["target_pools"] == ["agents"]
    page = client.get("/maintenance/").content.decode()
    assert "Patch agents" in page and "Start now" in page


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        (
            {"window_start": "22:00", "window_end": "05:00"},
            "window_end",
            "The window ends before it starts",
        ),
        ({"window_start": "22:00"}, "window_end", "Give both ends of the window"),
        ({"batch_size": 0}, "batch_size", "greater than or equal to 1"),
        ({"action": "rebuild", "image": "win11", "target_pools": []}, "pool", "needs the pool"),
        ({"action": "rebuild", "pool": "", "image": ""}, "image", "needs the image to roll out"),
        ({"target_pools": []}, "target_pools", "Choose what the task works on"),
        ({"in_use_policy": "wait"}, "in_use_policy", "Waiting for logoff needs a window"),
        ({"credential": ""}, "credential", "needs a credential"),
        ({"schedule_kind": "cron", "cron": "every night"}, "cron", "five fields"),
        ({"schedule_kind": "once"}, "run_at", "needs the date and time"),
        ({"action": "package", "package": "vim; reboot"}, "package", "package name"),
    ],
)
def test_the_form_refuses_what_cannot_work(
    client, staff, warm_pool, sim_credential, overrides, field, message
):
    client.force_login(staff)
    response = client.post(
        "/maintenance/tasks/new/", form_data(warm_pool, sim_credential, **overrides)
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not MaintenanceTask.objects.exists()


def test_a_rollout_with_target_lists_is_refused(client, staff, warm_pool, sim_credential):
    client.force_login(staff)
    data = form_data(warm_pool, sim_credential, action="rebuild", image="win11", pool=warm_pool.pk)
    response = client.post("/maintenance/tasks/new/", data)
    assert "targets its pool only" in " ".join(response.context["form"].errors["target_pools"])


def test_a_night_window_is_accepted_when_it_ends_the_next_day(
    client, staff, warm_pool, sim_credential
):
    client.force_login(staff)
    data = form_data(
        warm_pool,
        sim_credential,
        window_start="22:00",
        window_end="05:00",
        window_ends_next_day="on",
        in_use_policy="wait",
    )
    assert client.post("/maintenance/tasks/new/", data).status_code == 302


def test_editing_a_task_audits_what_changed(client, staff, warm_pool, sim_credential):
    task = make_task(pools=[warm_pool], credential=sim_credential)
    client.force_login(staff)
    page = client.get(f"/maintenance/tasks/{task.pk}/edit/").content.decode()
    assert "echo patched" in page

    data = form_data(warm_pool, sim_credential, name="patch", script="echo v2")
    response = client.post(f"/maintenance/tasks/{task.pk}/edit/", data)

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="maintenancetask.update")
    assert event.before["script"] == "echo patched" and event.after["script"] == "echo v2"


def test_start_now_opens_the_run_page_with_its_progress_bar(
    client, staff, warm_pool, sim_credential
):
    task = make_task(pools=[warm_pool], credential=sim_credential)
    client.force_login(staff)

    response = client.post(f"/maintenance/tasks/{task.pk}/start/")

    run = MaintenanceRun.objects.get()
    assert response["Location"] == f"/maintenance/runs/{run.pk}/"
    assert AuditEvent.objects.filter(action="maintenancerun.start", actor="operator").exists()
    page = client.get(f"/maintenance/runs/{run.pk}/").content.decode()
    assert '<progress id="run-progress" max="100" value="0">' in page
    assert "maintenance/run.js" in page and f"/maintenance/runs/{run.pk}/progress/" in page
    for button in ("retry-button", "cancel-button"):
        assert button in page
    assert "rollback-button" not in page  # only an image roll-out rolls back
    for vm in warm_pool.vms.all():
        assert vm.name in page

    detail = client.get(f"/maintenance/tasks/{task.pk}/").content.decode()
    assert f"#{run.pk}" in detail and "is under way" in detail


def test_the_progress_json_follows_the_run(client, staff, warm_pool, sim_credential):
    run = run_start(task=make_task(pools=[warm_pool], credential=sim_credential), actor="operator")
    client.force_login(staff)
    url = f"/maintenance/runs/{run.pk}/progress/"
    before = client.get(url).json()
    assert before["percent"] == 0 and before["counts"]["pending"] == 6

    drive(run)
    after = client.get(url).json()

    assert after["status"] == RunStatus.SUCCEEDED and after["percent"] == 100
    assert after["counts"]["succeeded"] == 6
    assert {item["status"] for item in after["items"]} == {ItemStatus.SUCCEEDED}
    assert any("Finished" in line["message"] for line in after["logs"])
    client.logout()
    assert client.get(url).status_code == 302


def test_the_run_buttons_cancel_retry_and_roll_back(client, staff, warm_pool, sim_credential):
    client.force_login(staff)
    run = run_start(task=make_task(pools=[warm_pool], credential=sim_credential), actor="operator")
    client.post(f"/maintenance/runs/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED

    response = client.post(f"/maintenance/runs/{run.pk}/retry/", follow=True)
    assert "cannot be retried" in response.content.decode()

    rollout = make_task(name="roll", action="rebuild", script="", image="win11", pool=warm_pool)
    rolled = drive(run_start(task=rollout, actor="operator"))
    page = client.get(f"/maintenance/runs/{rolled.pk}/").content.decode()
    assert "rollback-button" in page and "Roll back to win10" in page

    response = client.post(f"/maintenance/runs/{rolled.pk}/rollback/")

    rollback = MaintenanceRun.objects.get(rollback_of=rolled)
    assert response["Location"] == f"/maintenance/runs/{rollback.pk}/"
    warm_pool.refresh_from_db()
    assert warm_pool.image == "win10"
    actions = set(AuditEvent.objects.filter(actor="operator").values_list("action", flat=True))
    assert {"maintenancerun.cancel", "maintenancerun.rollback", "vmpool.update"} <= actions
    page = client.get(f"/maintenance/runs/{rolled.pk}/").content.decode()
    assert "roll-back" in page and "Rolled back by run" in page


def test_a_one_off_task_in_the_past_is_refused(client, staff, warm_pool, sim_credential):
    client.force_login(staff)
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    data = form_data(warm_pool, sim_credential, schedule_kind="once", run_at=past)
    response = client.post("/maintenance/tasks/new/", data)
    assert "The start time has passed." in response.content.decode()
