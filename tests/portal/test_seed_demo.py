"""The demo seed gives a working demo: the README's connect succeeds at once."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from allocation.models import Allocator, Terminal
from cloud.models import Host, Region
from pools.models import VM, VMPool

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_the_demo_cloud_and_is_repeatable():
    call_command("seed_demo", "--prewarm")
    call_command("seed_demo")

    assert Region.objects.count() == 2
    assert Host.objects.filter(state="up").count() >= 10
    assert VMPool.objects.values("feature_class").distinct().count() >= 3
    assert Allocator.objects.filter(is_default=True).count() == 1
    assert Terminal.objects.filter(status="enrolled").count() >= 10
    for pool in VMPool.objects.all():
        assert pool.vms.filter(state="ready").count() == pool.target_ready


def test_the_readme_connect_returns_spice_info():
    call_command("seed_demo", "--prewarm")
    response = APIClient().post(
        "/api/thin-client/v1/connect",
        {"username": "alice", "password": "deskops-demo", "terminal": "TC-SH-001"},
        format="json",
    )
    assert response.status_code == 200, response.content
    desktop = response.json()["desktop"]
    assert desktop["protocol"] == "spice" and desktop["port"] and desktop["password"]
    assert VM.objects.get(pk=desktop["id"]).state == "in_use"


def test_demo_users_land_in_their_allocators_pools():
    call_command("seed_demo", "--prewarm")
    client = APIClient()

    def pool_of(username, terminal):
        body = {"username": username, "password": "deskops-demo", "terminal": terminal}
        return client.post("/api/thin-client/v1/connect", body, format="json").json()["desktop"][
            "pool"
        ]

    assert pool_of("erin", "TC-SH-002") == "vip-east"
    assert pool_of("grace", "TC-SH-003") == "supervisors-west"
    assert pool_of("bob", "TC-HF-001") == "agents-west"  # Hefei seat rule
    assert pool_of("carol", "TC-SH-004") == "agents-east"  # default


def test_the_demo_has_one_staff_login_per_role():
    from django.contrib.auth import get_user_model

    from portal.roles import Role, user_role

    call_command("seed_demo")
    users = get_user_model().objects
    roles = {
        name: user_role(users.get(username=name)) for name in ("admin", "olga", "hugo", "vera")
    }
    assert roles == {
        "admin": Role.ADMINISTRATOR,
        "olga": Role.OPERATOR,
        "hugo": Role.HELPDESK,
        "vera": Role.VIEWER,
    }
    assert user_role(users.get(username="alice")) is None  # thin-client users stay out
