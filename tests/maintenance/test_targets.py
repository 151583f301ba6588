"""The targets a task selects its VMs by, beyond pools, hosts and single VMs:
allocators (the VMs bound under them and the idle VMs of their pools) and
terminal tags (the VMs bound to, or in a session at, a tagged terminal); and the
form and the API that set them."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.choices import BindingPolicy
from allocation.models import Binding, DesktopSession
from maintenance.models import MaintenanceTask
from maintenance.selectors import task_target_vms
from maintenance.services import run_start, task_save
from pools.choices import VMState
from pools.models import VM
from portal.models import AuditEvent
from tests.factories import (
    AllocatorFactory,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
    fill_pool,
)

from .conftest import make_task
from .test_api import task_body
from .test_pages import form_data

pytestmark = pytest.mark.django_db


def booted_pool(name: str, count: int) -> list[VM]:
    pool = VMPoolFactory(name=name, image="win10")
    fill_pool(pool, count)
    return list(VM.objects.filter(pool=pool).order_by("name"))


def bind(vm, allocator, *, terminal=None, released=False, kind=BindingPolicy.USER) -> Binding:
    """Hand `vm` out under `allocator` (to a new user, or to `terminal`)."""
    VM.objects.filter(pk=vm.pk).update(state=VMState.IN_USE, assigned_at=timezone.now())
    fields = {"terminal": terminal} if kind == BindingPolicy.TERMINAL else {"user": UserFactory()}
    return Binding.objects.create(
        allocator=allocator,
        kind=kind,
        vm=vm,
        released_at=timezone.now() if released else None,
        **fields,
    )


def seat(vm, terminal, *, ended=False) -> DesktopSession:
    """A desktop session on `vm` from `terminal`, open or ended."""
    VM.objects.filter(pk=vm.pk).update(state=VMState.IN_USE, assigned_at=timezone.now())
    return DesktopSession.objects.create(
        user=UserFactory(),
        terminal=terminal,
        vm=vm,
        ended_at=timezone.now() if ended else None,
    )


def target_task(**fields):
    """A reboot task (no credential needed) through the real service."""
    fields.setdefault("action", "reboot")
    fields.setdefault("script", "")
    return make_task(**fields)


def names(task) -> list[str]:
    return sorted(task_target_vms(task).values_list("name", flat=True))


# Allocators


@pytest.fixture
def allocator_estate():
    """Two allocators: `sales` draws from pool sales, `support` from pool support,
    with VMs bound under each, released, idle and held; `expected_sales` names
    the VMs a task targeting `sales` must take."""
    sales_vms = booted_pool("sales", 5)
    support_vms = booted_pool("support", 3)
    other_vms = booted_pool("other", 2)
    sales = AllocatorFactory(name="sales", pools=[sales_vms[0].pool])
    support = AllocatorFactory(name="support", pools=[support_vms[0].pool])

    # Pool sales: one bound under sales, two idle, one bound under support.
    bind(sales_vms[0], sales)
    bind(sales_vms[3], support)
    # Pool support: one bound under sales (its pool is not the allocator's now),
    # one bound under support, one idle.
    bind(support_vms[0], sales)
    bind(support_vms[1], support)
    # Pool other: a desktop whose binding under sales was released (and which is
    # in use under support since), and one whose only binding was released.
    bind(other_vms[0], sales, released=True)
    bind(other_vms[0], support)
    bind(other_vms[1], sales, released=True)
    # In use without a binding (held by another run): not idle, not bound.
    VM.objects.filter(pk=sales_vms[4].pk).update(state=VMState.IN_USE)
    expected = sorted(
        [sales_vms[0].name, sales_vms[1].name, sales_vms[2].name, support_vms[0].name]
    )
    return {
        "sales": sales,
        "support": support,
        "expected_sales": expected,
        "all": {"sales": sales_vms, "support": support_vms, "other": other_vms},
    }


def test_an_allocator_targets_its_bound_vms_and_the_idle_vms_of_its_pools(allocator_estate):
    task = target_task(allocators=[allocator_estate["sales"]])

    assert names(task) == allocator_estate["expected_sales"]


def test_released_bindings_and_other_allocators_vms_are_not_targeted(allocator_estate):
    vms = allocator_estate["all"]
    chosen = set(names(target_task(allocators=[allocator_estate["sales"]])))

    assert vms["sales"][3].name not in chosen  # in its pool, but bound under support
    assert vms["sales"][4].name not in chosen  # in its pool, in use, not idle
    assert vms["support"][1].name not in chosen  # bound under support
    assert vms["support"][2].name not in chosen  # idle, in support's pool only
    assert vms["other"][0].name not in chosen  # released under sales, bound under support
    assert vms["other"][1].name not in chosen  # released binding only


def test_two_allocators_target_the_union_and_a_run_takes_exactly_those(allocator_estate):
    vms = allocator_estate["all"]
    task = target_task(allocators=[allocator_estate["sales"], allocator_estate["support"]])

    expected = sorted(
        [vm.name for vm in vms["sales"][:4]]
        + [vm.name for vm in vms["support"]]
        + [vms["other"][0].name]
    )
    assert names(task) == expected
    run = run_start(task=task, actor="test")
    assert sorted(run.items.values_list("vm_name", flat=True)) == expected


def test_an_allocator_with_nothing_bound_and_no_idle_vm_targets_nothing():
    empty = AllocatorFactory(name="empty", pools=[VMPoolFactory(name="cold")])
    booted_pool("elsewhere", 2)

    assert names(target_task(allocators=[empty])) == []


# Terminal tags


@pytest.fixture
def tag_estate():
    """Terminals tagged `night` and `floor-2`, `night`, `floor-2`, and none; VMs
    bound, in sessions, released and ended at them."""
    vms = booted_pool("agents", 10)
    allocator = AllocatorFactory(name="agents", pools=[vms[0].pool])
    night_floor = TerminalFactory(tags=["night", "floor-2"])
    night = TerminalFactory(tags=["night"])
    floor = TerminalFactory(tags=["floor-2"])
    untagged = TerminalFactory(tags=[])

    bind(vms[0], allocator, terminal=night_floor, kind=BindingPolicy.TERMINAL)  # taken
    seat(vms[1], night)  # taken: an open session, with a user binding
    bind(vms[1], allocator)
    seat(vms[2], night_floor)  # taken: an open session, no binding
    bind(vms[3], allocator, terminal=night, kind=BindingPolicy.TERMINAL, released=True)
    seat(vms[4], night, ended=True)
    bind(vms[5], allocator, terminal=floor, kind=BindingPolicy.TERMINAL)
    seat(vms[6], untagged)
    seat(vms[7], floor)
    # vms[8] and vms[9] stay idle.
    return vms


def test_terminal_tags_target_vms_bound_or_in_session_at_tagged_terminals(tag_estate):
    vms = tag_estate
    task = target_task(target_tags=["night"])

    assert names(task) == sorted([vms[0].name, vms[1].name, vms[2].name])


def test_released_bindings_ended_sessions_and_other_terminals_are_not_targeted(tag_estate):
    vms = tag_estate
    chosen = set(names(target_task(target_tags=["night"])))

    assert vms[3].name not in chosen  # its binding to a night terminal was released
    assert vms[4].name not in chosen  # its session at a night terminal ended
    assert not chosen & {vm.name for vm in vms[5:]}  # other terminals, or idle


def test_any_of_the_tags_matches_and_only_whole_tags(tag_estate):
    vms = tag_estate
    both = target_task(name="both", target_tags=["floor-2", "night"])
    partial = target_task(name="partial", target_tags=["floor", "nigh"])

    assert names(both) == sorted(vm.name for vm in [*vms[0:3], vms[5], vms[7]])
    assert names(partial) == []


def test_targets_of_every_kind_add_up_without_repeats(tag_estate, allocator_estate):
    task = target_task(
        allocators=[allocator_estate["sales"]], vms=[tag_estate[0]], target_tags=["night"]
    )

    expected = allocator_estate["expected_sales"] + [vm.name for vm in tag_estate[0:3]]
    assert names(task) == sorted(expected)


# Saving and validating


def test_tags_are_stripped_and_deduplicated_and_the_targets_audited():
    allocator = AllocatorFactory(name="sales")
    task = target_task(allocators=[allocator], target_tags=[" night ", "night", "floor-2", " "])

    assert task.target_tags == ["night", "floor-2"]
    assert list(task.target_allocators.all()) == [allocator]
    event = AuditEvent.objects.get(action="maintenancetask.create")
    assert event.after["target_allocators"] == ["sales"]
    assert event.after["target_tags"] == ["night", "floor-2"]


@pytest.mark.parametrize(
    "tags, message",
    [
        (["x" * 65], "at most 64 characters"),
        ("night", "as a list of text"),
        ([3], "as a list of text"),
    ],
)
def test_the_service_refuses_bad_tags(tags, message):
    with pytest.raises(ValidationError) as refused:
        target_task(target_tags=tags)
    assert message in " ".join(refused.value.message_dict["target_tags"])
    assert not MaintenanceTask.objects.exists()


def test_a_tag_of_64_characters_is_accepted(tag_estate):
    assert target_task(target_tags=["x" * 64]).target_tags == ["x" * 64]


def test_a_rollout_refuses_allocator_and_tag_targets(warm_pool):
    rollout = {"action": "rebuild", "image": "win11", "pool": warm_pool, "script": ""}
    for targets in ({"allocators": [AllocatorFactory()]}, {"target_tags": ["night"]}):
        with pytest.raises(ValidationError) as refused:
            target_task(**rollout, **targets)
        assert "targets its pool only" in " ".join(refused.value.message_dict["target_pools"])


# The form


def test_the_form_saves_allocator_and_tag_targets_alone(client, staff, warm_pool, sim_credential):
    allocator = AllocatorFactory(name="sales", pools=[warm_pool])
    client.force_login(staff)
    assert "sales" in client.get("/maintenance/tasks/new/").content.decode()

    data = form_data(
        warm_pool,
        sim_credential,
        target_pools=[],
        target_allocators=[allocator.pk],
        target_tags_text="night, floor-2 night",
    )
    response = client.post("/maintenance/tasks/new/", data)

    task = MaintenanceTask.objects.get(name="Patch agents")
    assert response.status_code == 302, response.context["form"].errors
    assert list(task.target_allocators.all()) == [allocator]
    assert task.target_tags == ["night", "floor-2"]
    assert list(task.target_pools.all()) == []

    edit = client.get(f"/maintenance/tasks/{task.pk}/edit/")
    assert edit.context["form"].initial["target_tags_text"] == "night, floor-2"
    detail = client.get(f"/maintenance/tasks/{task.pk}/").content.decode()
    assert "Allocators: sales" in detail and "Terminal tags: night, floor-2" in detail
    listing = client.get("/maintenance/").content.decode()
    assert "1 allocator, 2 terminal tags" in listing


def test_the_form_accepts_tags_as_the_only_target(client, staff, warm_pool, sim_credential):
    client.force_login(staff)
    data = form_data(warm_pool, sim_credential, target_pools=[], target_tags_text="night")
    assert client.post("/maintenance/tasks/new/", data).status_code == 302
    assert MaintenanceTask.objects.get().target_tags == ["night"]


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"target_tags_text": "x" * 65}, "target_tags_text", "at most 64 characters"),
        ({"target_allocators": [987654]}, "target_allocators", "Select a valid choice"),
        ({"target_tags_text": " , "}, "target_pools", "Choose what the task works on"),
    ],
)
def test_the_form_refuses_bad_allocator_and_tag_targets(
    client, staff, warm_pool, sim_credential, overrides, field, message
):
    client.force_login(staff)
    data = form_data(warm_pool, sim_credential, target_pools=[], **overrides)
    response = client.post("/maintenance/tasks/new/", data)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not MaintenanceTask.objects.exists()


def test_the_form_refuses_allocators_on_a_rollout(client, staff, warm_pool, sim_credential):
    allocator = AllocatorFactory(name="sales", pools=[warm_pool])
    client.force_login(staff)
    data = form_data(
        warm_pool,
        sim_credential,
        action="rebuild",
        image="win11",
        pool=warm_pool.pk,
        target_pools=[],
        target_allocators=[allocator.pk],
    )
    response = client.post("/maintenance/tasks/new/", data)
    assert "targets its pool only" in " ".join(response.context["form"].errors["target_pools"])


# The API


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


def test_the_api_sets_and_keeps_allocator_and_tag_targets(api, warm_pool, sim_credential):
    AllocatorFactory(name="sales", pools=[warm_pool])
    body = task_body(target_pools=[], target_allocators=["sales"], target_tags=["night"])
    created = api.post("/api/v1/maintenance-tasks/", body, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["target_allocators"] == ["sales"]
    assert created.json()["target_tags"] == ["night"]
    task_id = created.json()["id"]
    started = api.post(f"/api/v1/maintenance-tasks/{task_id}/start/")
    assert started.json()["counts"]["total"] == 6  # the idle VMs of the allocator's pool

    patched = api.patch(f"/api/v1/maintenance-tasks/{task_id}/", {"cron": ""}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["target_allocators"] == ["sales"]
    cleared = api.patch(
        f"/api/v1/maintenance-tasks/{task_id}/", {"target_allocators": []}, format="json"
    )
    assert cleared.status_code == 200 and cleared.json()["target_tags"] == ["night"]
    emptied = api.patch(f"/api/v1/maintenance-tasks/{task_id}/", {"target_tags": []}, format="json")
    assert emptied.status_code == 400
    assert "Choose what the task works on" in emptied.json()["fields"]["target_pools"][0]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"target_allocators": ["nobody"]}, "target_allocators"),
        ({"target_tags": ["x" * 65]}, "target_tags"),
        ({"target_tags": [""]}, "target_tags"),
        ({"target_tags": "night"}, "target_tags"),
    ],
)
def test_the_api_refuses_bad_allocator_and_tag_targets(
    api, warm_pool, sim_credential, overrides, field
):
    body = task_body(target_pools=[], **overrides)
    response = api.post("/api/v1/maintenance-tasks/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert not MaintenanceTask.objects.exists()


def test_the_api_refuses_allocators_on_a_rollout(api, warm_pool):
    AllocatorFactory(name="sales", pools=[warm_pool])
    body = task_body(
        name="roll",
        action="rebuild",
        image="win11",
        pool="agents",
        target_pools=[],
        target_allocators=["sales"],
        credential=None,
    )
    response = api.post("/api/v1/maintenance-tasks/", body, format="json")
    assert response.status_code == 400
    assert "targets its pool only" in response.json()["fields"]["target_pools"][0]


def test_task_save_keeps_allocators_when_not_given():
    allocator = AllocatorFactory(name="sales")
    task = target_task(allocators=[allocator])
    task_save(task=task, fields={"description": "weekly"}, actor="test")
    assert list(task.target_allocators.all()) == [allocator]
