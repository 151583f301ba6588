"""The maintenance lists (tasks and runs): filters, search, sorting, pages, CSV,
a fixed number of queries whatever the page size, the task and run pages with
their related objects and recent events, and the buttons only operators get."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from maintenance.choices import ItemStatus, RunStatus
from maintenance.models import MaintenanceRun, MaintenanceTask, RunItem
from maintenance.services import run_start
from pools.models import VM
from tests.factories import UserFactory, VMPoolFactory

from .conftest import make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client):
    client.force_login(UserFactory(username="vera", role="viewer"))
    return client


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(username="otto", role="operator"))
    return client


def names_in_order(response) -> list[str]:
    """The names of the rows the list shows, in order, each linked to its page."""
    assert response.status_code == 200
    page = response.content.decode()
    names = [row.obj.name for row in response.context["rows"]]
    for row in response.context["rows"]:
        assert f'href="/maintenance/tasks/{row.obj.pk}/">{row.obj.name}<' in page
    return names


def csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def query_count(client, url: str) -> tuple[int, int]:
    """Queries the page took, and how many rows it showed."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), len(response.context["rows"])


def make_run(task, *, status=RunStatus.SUCCEEDED, by="otto", trigger="manual", **fields):
    return MaintenanceRun.objects.create(
        task=task, status=status, started_by=by, trigger=trigger, **fields
    )


def add_items(run, vms, statuses):
    RunItem.objects.bulk_create(
        RunItem(run=run, vm=vm, vm_name=vm.name, position=index, status=status)
        for index, (vm, status) in enumerate(zip(vms, statuses, strict=False))
    )


@pytest.fixture
def tasks(warm_pool, sim_credential):
    """A script task on the warm pool with a run, a disabled nightly reboot (cron),
    a one-off power-off tomorrow and an image roll-out to another pool."""
    other = VMPoolFactory(name="vip", image="win10")
    patch = make_task(name="patch agents", pools=[warm_pool], credential=sim_credential)
    nightly = make_task(
        name="nightly reboot",
        action="reboot",
        script="",
        pools=[warm_pool],
        schedule_kind="cron",
        cron="0 22 * * *",
        enabled=False,
    )
    tomorrow = make_task(
        name="power off",
        action="power_off",
        script="",
        pools=[other],
        schedule_kind="once",
        run_at=timezone.now() + timedelta(days=1),
    )
    hourly = make_task(
        name="hourly reboot",
        action="reboot",
        script="",
        pools=[other],
        schedule_kind="cron",
        cron="5 * * * *",
    )
    rollout = make_task(name="roll vip", action="rebuild", script="", image="win11", pool=other)
    make_run(patch)
    return {
        "patch": patch,
        "nightly": nightly,
        "tomorrow": tomorrow,
        "hourly": hourly,
        "rollout": rollout,
        "other": other,
    }


ALL_TASKS = ["patch agents", "nightly reboot", "power off", "hourly reboot", "roll vip"]


def test_the_task_list_filters_and_searches(viewer, tasks, warm_pool):
    def shown(query):
        return set(names_in_order(viewer.get(f"/maintenance/{query}")))

    assert shown("") == set(ALL_TASKS)
    assert shown("?action=rebuild") == {"roll vip"}
    assert shown("?action=reboot") == {"nightly reboot", "hourly reboot"}
    assert shown("?enabled=no") == {"nightly reboot"}
    assert shown("?schedule=cron&enabled=yes") == {"hourly reboot"}
    # A pool is a target of a task, or the pool an image is rolled out to.
    assert shown(f"?pool={warm_pool.pk}") == {"patch agents", "nightly reboot"}
    assert shown(f"?pool={tasks['other'].pk}") == {"power off", "hourly reboot", "roll vip"}
    assert shown("?q=REBOOT") == {"nightly reboot", "hourly reboot"}


def test_the_task_list_sorts_by_name_next_run_and_last_run(viewer, tasks):
    by_name = names_in_order(viewer.get("/maintenance/"))
    assert by_name == sorted(ALL_TASKS)
    assert names_in_order(viewer.get("/maintenance/?sort=-name")) == by_name[::-1]

    # The hourly reboot starts within the hour, the power-off tomorrow; the others
    # (by hand, or disabled) have no next run and come last.
    upcoming = names_in_order(viewer.get("/maintenance/?sort=next_run"))
    assert upcoming[:2] == ["hourly reboot", "power off"]
    page = viewer.get("/maintenance/").content.decode()
    expected = (tasks["tomorrow"].run_at).strftime("%Y-%m-%d %H:%M")
    assert expected in page

    latest = names_in_order(viewer.get("/maintenance/?sort=-last_run"))
    assert latest[0] == "patch agents"


def test_the_task_list_pages_and_exports_csv(viewer, tasks):
    MaintenanceTask.objects.bulk_create(
        MaintenanceTask(name=f"bulk {index:03d}", action="reboot") for index in range(30)
    )
    first = viewer.get("/maintenance/?per_page=25&q=bulk")
    assert len(first.context["rows"]) == 25
    assert "30 tasks · page 1 of 2" in first.content.decode()
    second = viewer.get("/maintenance/?per_page=25&q=bulk&page=2")
    assert [row.obj.name for row in second.context["rows"]] == [
        f"bulk {index:03d}" for index in range(25, 30)
    ]

    rows = csv_rows(viewer.get("/maintenance/?format=csv&action=reboot&q=reboot"))
    by_name = {row["Task"]: row for row in rows}
    assert set(by_name) == {"nightly reboot", "hourly reboot"}
    assert by_name["nightly reboot"]["Enabled"] == "no"
    assert by_name["nightly reboot"]["Schedule"] == "cron 0 22 * * *"
    assert by_name["nightly reboot"]["Next run"] == ""
    assert by_name["hourly reboot"]["Next run"]  # computed from its beat schedule
    assert by_name["hourly reboot"]["Targets"] == "1 pool"
    patch = csv_rows(viewer.get("/maintenance/?format=csv&q=patch"))[0]
    assert patch["Last result"] == "Succeeded" and patch["Credential"] == "sim"


def test_bad_query_values_on_the_task_list_answer_200(viewer, tasks):
    response = viewer.get(
        "/maintenance/?action=explode&enabled=maybe&pool=abc&schedule=never"
        "&sort=secret&page=-4&per_page=7&q=" + "x" * 300
    )
    assert response.status_code == 200
    assert "These filters are ignored." in response.content.decode()
    assert viewer.get("/maintenance/?page=999").status_code == 200


def test_the_task_list_costs_the_same_queries_for_25_or_200_rows(viewer, tasks, warm_pool):
    MaintenanceTask.objects.bulk_create(
        MaintenanceTask(name=f"bulk {index:03d}", action="reboot") for index in range(210)
    )
    bulk = list(MaintenanceTask.objects.filter(name__startswith="bulk"))
    vms = list(warm_pool.vms.all())
    through = MaintenanceTask.target_vms.through
    through.objects.bulk_create(
        through(maintenancetask_id=task.pk, vm_id=vms[0].pk) for task in bulk
    )
    MaintenanceRun.objects.bulk_create(MaintenanceRun(task=task) for task in bulk[:150])

    small, shown_small = query_count(viewer, "/maintenance/?per_page=25")
    large, shown_large = query_count(viewer, "/maintenance/?per_page=200")
    assert (shown_small, shown_large) == (25, 200)
    assert small == large, (small, large)


def test_only_operators_get_the_task_buttons(client, tasks):
    client.force_login(UserFactory(username="vera", role="viewer"))
    page = client.get("/maintenance/").content.decode()
    assert "patch agents" in page
    assert "Start now" not in page and "New task" not in page
    detail = client.get(f"/maintenance/tasks/{tasks['patch'].pk}/").content.decode()
    assert "Start now" not in detail and "/edit/" not in detail

    client.force_login(UserFactory(username="otto", role="operator"))
    page = client.get("/maintenance/").content.decode()
    assert "Start now" in page and "New task" in page
    assert "Guest credentials" not in page  # administrators only


@pytest.mark.parametrize("role", ["viewer", "helpdesk"])
def test_changes_are_refused_below_operator(client, tasks, role):
    client.force_login(UserFactory(username=f"as-{role}", role=role))
    task = tasks["patch"]
    run = MaintenanceRun.objects.get(task=task)
    for url in (
        "/maintenance/tasks/new/",
        f"/maintenance/tasks/{task.pk}/edit/",
        f"/maintenance/tasks/{task.pk}/start/",
        f"/maintenance/runs/{run.pk}/cancel/",
        f"/maintenance/runs/{run.pk}/retry/",
        f"/maintenance/runs/{run.pk}/rollback/",
        "/maintenance/runs/",
    ):
        assert client.post(url).status_code == 403, url
    assert MaintenanceRun.objects.count() == 1


def test_the_task_page_shows_its_runs_and_recent_events(operator, tasks):
    task = tasks["patch"]
    for _ in range(12):
        make_run(task, status=RunStatus.CANCELLED)
    page = operator.get(f"/maintenance/tasks/{task.pk}/").content.decode()
    assert "latest 10 of 13" in page
    assert f"/maintenance/runs/?task={task.pk}" in page
    newest = MaintenanceRun.objects.filter(task=task).first()
    assert f"/maintenance/runs/{newest.pk}/" in page
    assert "Recent events" in page and "maintenancetask.create" in page
    hourly = operator.get(f"/maintenance/tasks/{tasks['hourly'].pk}/").content.decode()
    next_run = hourly.split('id="next-run">')[1].split("</dd>")[0]
    assert next_run[:2] == "20"  # a date, not "none scheduled"


def test_the_run_page_shows_recent_events_and_hides_buttons_from_viewers(
    client, warm_pool, sim_credential
):
    task = make_task(pools=[warm_pool], credential=sim_credential)
    run = run_start(task=task, actor="otto")
    client.force_login(UserFactory(username="vera", role="viewer"))
    page = client.get(f"/maintenance/runs/{run.pk}/").content.decode()
    assert "maintenancerun.start" in page and "Recent events" in page
    for button in ("retry-button", "cancel-button"):
        assert button not in page
    client.force_login(UserFactory(username="otto", role="operator"))
    page = client.get(f"/maintenance/runs/{run.pk}/").content.decode()
    assert "retry-button" in page and "cancel-button" in page


# -- runs ------------------------------------------------------------------------


@pytest.fixture
def runs(tasks, warm_pool):
    vms = list(warm_pool.vms.order_by("name"))
    ok = make_run(tasks["patch"], by="otto", finished_at=timezone.now())
    add_items(ok, vms, [ItemStatus.SUCCEEDED] * 4 + [ItemStatus.SKIPPED])
    bad = make_run(tasks["nightly"], status=RunStatus.HALTED, by="schedule", trigger="schedule")
    add_items(bad, vms, [ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.FAILED])
    waiting = make_run(tasks["hourly"], status=RunStatus.WAITING, by="olga")
    return {"ok": ok, "bad": bad, "waiting": waiting}


def run_ids(response) -> list[int]:
    assert response.status_code == 200
    return [row.obj.pk for row in response.context["rows"]]


def test_the_run_list_counts_items_and_filters(viewer, runs, tasks):
    response = viewer.get("/maintenance/runs/")
    page = response.content.decode()
    for run in runs.values():
        assert f'href="/maintenance/runs/{run.pk}/"' in page
    rows = {row.obj.pk: row.obj for row in response.context["rows"]}
    ok, bad = rows[runs["ok"].pk], rows[runs["bad"].pk]
    assert (ok.item_total, ok.item_succeeded, ok.item_failed, ok.item_skipped) == (5, 4, 0, 1)
    assert (bad.item_total, bad.item_succeeded, bad.item_failed) == (3, 1, 2)

    task = tasks["nightly"]
    assert run_ids(viewer.get(f"/maintenance/runs/?task={task.pk}")) == [runs["bad"].pk]
    assert run_ids(viewer.get("/maintenance/runs/?state=waiting")) == [runs["waiting"].pk]
    assert run_ids(viewer.get("/maintenance/runs/?trigger=schedule")) == [runs["bad"].pk]
    assert run_ids(viewer.get("/maintenance/runs/?q=olga")) == [runs["waiting"].pk]
    assert run_ids(viewer.get("/maintenance/runs/?q=hourly")) == [runs["waiting"].pk]


def test_the_run_list_sorts_newest_first_and_by_failures(viewer, runs, tasks):
    everything = run_ids(viewer.get("/maintenance/runs/"))
    assert everything == sorted(everything, reverse=True)  # newest first
    by_failures = run_ids(viewer.get("/maintenance/runs/?sort=-item_failed"))
    assert by_failures[0] == runs["bad"].pk
    by_task = run_ids(viewer.get("/maintenance/runs/?sort=task.name&q=o"))
    names = [MaintenanceRun.objects.get(pk=pk).task.name for pk in by_task]
    assert names == sorted(names)


def test_the_run_list_exports_csv_and_takes_bad_values(viewer, runs):
    rows = csv_rows(viewer.get("/maintenance/runs/?format=csv&state=halted"))
    assert len(rows) == 1
    row = rows[0]
    assert row["Run"] == f"#{runs['bad'].pk}" and row["Task"] == "nightly reboot"
    assert row["State"] == "Halted (too many failures)" and row["Started by"] == "schedule"
    assert (row["VMs"], row["Done"], row["Failed"]) == ("3", "1", "2")

    bad = viewer.get("/maintenance/runs/?task=abc&state=lost&sort=-nothing&page=x&since=soon")
    assert bad.status_code == 200 and len(bad.context["rows"]) == 4


def test_the_run_list_pages_with_a_fixed_number_of_queries(viewer, tasks, warm_pool):
    task = tasks["patch"]
    MaintenanceRun.objects.bulk_create(
        MaintenanceRun(task=task, status=RunStatus.SUCCEEDED, started_by="otto") for _ in range(210)
    )
    vm = VM.objects.filter(pool=warm_pool).first()
    RunItem.objects.bulk_create(
        RunItem(run=run, vm=vm, vm_name=vm.name, status=ItemStatus.FAILED)
        for run in MaintenanceRun.objects.all()
    )
    small, shown_small = query_count(viewer, "/maintenance/runs/?per_page=25")
    large, shown_large = query_count(viewer, "/maintenance/runs/?per_page=200")
    assert (shown_small, shown_large) == (25, 200)
    assert small == large, (small, large)
    second = viewer.get("/maintenance/runs/?per_page=200&page=2")
    assert len(second.context["rows"]) == 11
