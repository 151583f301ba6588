"""Staff login: roles decide who gets in, repeated failures lock the account and
the address out for a while, and every attempt is in the audit trail with the
address it came from."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command

from portal.models import AuditEvent
from portal.roles import Role, role_for_groups, user_role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_remembered_failures():
    cache.clear()


def login(client, username, password, *, address="10.1.2.3"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_a_user_with_a_role_logs_in_and_the_login_is_audited(client):
    UserFactory(username="olga", role="operator")

    response = login(client, "olga", PASSWORD)

    assert response.status_code == 302 and logged_in(client)
    event = AuditEvent.objects.get(action="login")
    assert (event.actor, event.source_ip, event.after) == ("olga", "10.1.2.3", {"role": "operator"})


def test_a_user_without_a_role_is_refused_with_a_clear_message(client):
    UserFactory(username="alice")  # a thin-client user

    response = login(client, "alice", PASSWORD)

    assert response.status_code == 200 and not logged_in(client)
    assert "has no role on the portal" in response.content.decode()
    assert AuditEvent.objects.filter(action="login.refused", actor="alice").exists()


def test_a_wrong_password_is_refused_and_audited(client):
    UserFactory(username="olga", role="operator")

    response = login(client, "olga", "wrong")

    assert response.status_code == 200 and not logged_in(client)
    assert "correct username and password" in response.content.decode()
    event = AuditEvent.objects.get(action="login.failed")
    assert (event.object_repr, event.source_ip) == ("olga", "10.1.2.3")


def test_five_failures_lock_the_account_even_against_the_right_password(client, settings):
    settings.STAFF_LOGIN_FAILURES_PER_USER = 5
    UserFactory(username="olga", role="operator")
    for _ in range(5):
        login(client, "olga", "wrong")

    response = login(client, "olga", PASSWORD)

    assert not logged_in(client)
    assert "Too many failed logins" in response.content.decode()
    assert AuditEvent.objects.filter(action="login.locked").count() == 1
    # Another account from another address is not affected.
    UserFactory(username="pete", role="viewer")
    assert login(client, "pete", PASSWORD, address="10.9.9.9").status_code == 302


def test_failures_from_one_address_lock_that_address_for_every_name(client, settings):
    settings.STAFF_LOGIN_FAILURES_PER_ADDRESS = 3
    UserFactory(username="olga", role="operator")
    for name in ("a", "b", "c"):
        login(client, name, "guess", address="10.6.6.6")

    assert (
        "Too many failed logins"
        in login(client, "olga", PASSWORD, address="10.6.6.6").content.decode()
    )
    assert login(client, "olga", PASSWORD, address="10.1.1.1").status_code == 302


def test_a_successful_login_clears_the_count_of_its_user(client, settings):
    settings.STAFF_LOGIN_FAILURES_PER_USER = 3
    UserFactory(username="olga", role="operator")
    login(client, "olga", "wrong")
    login(client, "olga", "wrong")
    assert login(client, "olga", PASSWORD).status_code == 302
    client.post("/logout/")
    login(client, "olga", "wrong")
    login(client, "olga", "wrong")
    assert login(client, "olga", PASSWORD).status_code == 302


def test_roles_come_from_groups_and_the_highest_wins(settings):
    settings.PORTAL_ROLE_GROUPS = {
        "viewer": ["noc"],
        "helpdesk": ["service-desk"],
        "operator": ["cloud-ops"],
        "administrator": ["cloud-admins"],
    }
    assert role_for_groups(["agents"]) is None
    assert role_for_groups(["noc"]) == Role.VIEWER
    assert role_for_groups(["noc", "cloud-ops", "service-desk"]) == Role.OPERATOR
    assert user_role(UserFactory(groups=["cloud-admins"])) == Role.ADMINISTRATOR
    assert user_role(UserFactory(is_superuser=True)) == Role.ADMINISTRATOR
    assert user_role(UserFactory(groups=["cloud-ops"], is_active=False)) is None


def test_the_break_glass_command_makes_a_local_administrator(client, capsys):
    call_command("breakglass_admin", "--username", "rescue")

    output = capsys.readouterr().out
    password = output.split("Password (shown once): ")[1].strip()
    user = get_user_model().objects.get(username="rescue")
    assert user.is_superuser and user.check_password(password)
    assert login(client, "rescue", password).status_code == 302
    assert AuditEvent.objects.filter(action="breakglass.create", object_id=str(user.pk)).exists()

    call_command("breakglass_admin", "--username", "rescue")
    assert not get_user_model().objects.get(username="rescue").check_password(password)


def test_the_login_form_needs_its_csrf_token(db):
    from django.test import Client

    UserFactory(username="olga", role="operator")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"username": "olga", "password": PASSWORD})
    assert response.status_code == 403


def test_a_page_form_needs_its_csrf_token(pool):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(UserFactory(role="operator"))
    response = strict.post(f"/pools/{pool.pk}/resume/")
    assert response.status_code == 403
