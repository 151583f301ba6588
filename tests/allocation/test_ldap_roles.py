"""Staff roles from the directory: a real slapd's groups, mirrored at login, map
to portal roles through `PORTAL_*_GROUPS`; the portal's login page lets in the
directory's IT staff and keeps out agents; while the directory is down the local
break-glass administrator still logs in and directory accounts get a clear
answer rather than "wrong password"."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from portal.roles import Role, user_role

pytestmark = [pytest.mark.ldap, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _roles_from_directory_groups(settings):
    cache.clear()
    settings.PORTAL_ROLE_GROUPS = {
        "viewer": [],
        "helpdesk": ["supervisors"],
        "operator": ["it-staff"],
        "administrator": [],
    }


def portal_login(client, person, password=None):
    return client.post(
        "/login/",
        {"username": person.uid, "password": person.password if password is None else password},
    )


def test_it_staff_from_the_directory_log_in_as_operators(client, use_directory, slapd):
    use_directory()
    response = portal_login(client, slapd.people["bluo"])

    assert response.status_code == 302, response.content.decode()[:400]
    user = get_user_model().objects.get(username="bluo")
    assert user_role(user) == Role.OPERATOR
    assert client.get("/pools/").status_code == 200
    assert client.get("/allocators/new/").status_code == 200  # reading the form
    assert client.post("/scheduling/", {}).status_code == 403  # administrators only


def test_a_member_of_two_mapped_groups_gets_the_higher_role(client, use_directory, slapd):
    use_directory()
    assert portal_login(client, slapd.people["szheng"]).status_code == 302
    assert user_role(get_user_model().objects.get(username="szheng")) == Role.OPERATOR


def test_a_supervisor_is_help_desk_and_an_agent_is_kept_out(client, use_directory, slapd):
    use_directory()
    assert portal_login(client, slapd.people["ghu"]).status_code == 302
    assert client.get("/helpdesk/").status_code == 200
    assert client.get("/faults/").status_code == 403
    client.post("/logout/")

    refused = portal_login(client, slapd.people["wli"])
    assert refused.status_code == 200
    assert "has no role on the portal" in refused.content.decode()


def test_during_an_outage_breakglass_logs_in_and_directory_users_are_told_why(
    client, use_directory, directory_stopped, slapd
):
    use_directory()
    get_user_model().objects.create_superuser("breakglass", password="local-only-9k2")

    answer = portal_login(client, slapd.people["bluo"])
    assert answer.status_code == 200
    assert "directory is not answering" in answer.content.decode()

    response = client.post("/login/", {"username": "breakglass", "password": "local-only-9k2"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
