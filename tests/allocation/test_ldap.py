"""Directory logins against a real OpenLDAP server: users found in nested OUs, their
groups mirrored in both group styles, their DN kept for OU rules, and an outage
told apart from a wrong password, both by `directory_authenticate` and by the
thin-client connect call."""

import socket
import subprocess
import threading

import ldap
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import RequestFactory
from rest_framework.test import APIClient

from allocation.directory import DIRECTORY_RETRY_AFTER, DirectoryUnavailable, directory_authenticate
from allocation.matching import dn_in_subtree, normalize_dn
from allocation.models import DesktopSession, DirectoryProfile
from allocation.selectors import allocator_for
from tests.allocation.conftest import GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD
from tests.factories import AllocatorFactory, Desk, TerminalFactory, VMPoolFactory, fill_pool
from tests.helpers import settings_in_fresh_interpreter

pytestmark = [pytest.mark.ldap, pytest.mark.django_db]

CONNECT = "/api/thin-client/v1/connect"
SHANGHAI = f"ou=shanghai,ou=sites,{PEOPLE}"
HEFEI = f"ou=hefei,ou=sites,{PEOPLE}"
User = get_user_model()


@pytest.fixture(autouse=True)
def _no_remembered_failures():
    # Failed-login counts live in the cache; each test starts with none.
    cache.clear()


def login(person, *, password: str | None = None):
    return directory_authenticate(
        None, username=person.uid, password=person.password if password is None else password
    )


def group_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def connect(*, username: str, password: str, terminal):
    body = {"username": username, "password": password, "terminal": terminal.serial}
    return APIClient().post(CONNECT, body, format="json")


# Logging in


@pytest.mark.parametrize("account", ["anonymous search", "search account"])
def test_a_directory_user_logs_in_with_groups_mirrored_and_dn_kept(use_directory, slapd, account):
    if account == "search account":
        use_directory(bind_dn=SERVICE_DN, bind_password=SERVICE_PASSWORD)
    else:
        use_directory()
    person = slapd.people["xyang"]

    user = login(person)

    assert user is not None and user.username == "xyang" and user.is_active
    assert (user.first_name, user.last_name, user.email) == ("Xin", "Yang", "xyang@example.com")
    assert not user.has_usable_password()  # the directory checks passwords, not Django
    assert group_names(user) == {"agents", "vip-agents"}
    profile = DirectoryProfile.objects.get(user=user)
    assert normalize_dn(profile.dn) == normalize_dn(person.dn)


def test_without_a_search_account_group_lookups_run_as_the_user(use_directory, slapd, settings):
    # The test directory shows groups to bound users only. Going back to an
    # anonymous connection after the password check would lose the groups, and
    # django-auth-ldap refuses a login whose groups it cannot mirror.
    use_directory()
    assert settings.AUTH_LDAP_BIND_AS_AUTHENTICATING_USER is True
    assert group_names(login(slapd.people["qzhao"])) == {"agents", "supervisors"}

    settings.AUTH_LDAP_BIND_AS_AUTHENTICATING_USER = False
    assert login(slapd.people["qzhao"]) is None


@pytest.mark.parametrize(
    "uid, password",
    [
        ("wli", "wrong"),
        ("wli", "fwang-Desk-2024"),  # another user's password
        ("nobody", "whatever"),
    ],
)
def test_wrong_credentials_with_a_healthy_directory_are_none(use_directory, uid, password):
    use_directory()
    assert directory_authenticate(None, username=uid, password=password) is None
    assert not DirectoryProfile.objects.exists()
    assert not User.objects.filter(username=uid).exists()


def test_a_deactivated_user_is_refused_even_with_the_right_password(use_directory, slapd):
    use_directory()
    person = slapd.people["tsun"]
    User.objects.filter(pk=login(person).pk).update(is_active=False)
    assert login(person) is None


def test_a_user_in_a_nested_ou_matches_their_site_subtree(use_directory, slapd):
    use_directory()
    shanghai_pool, default_pool = VMPoolFactory(), VMPoolFactory()
    shanghai_rule = AllocatorFactory(ou_subtrees=[SHANGHAI], priority=10, pools=[shanghai_pool])
    AllocatorFactory(is_default=True, pools=[default_pool])
    terminal = TerminalFactory()

    tier2 = login(slapd.people["lhuang"])  # ou=tier2,ou=support,ou=shanghai,…
    dn = DirectoryProfile.objects.get(user=tier2).dn
    assert dn_in_subtree(dn, SHANGHAI)
    assert dn_in_subtree(dn, f"ou=support,{SHANGHAI}")
    assert not dn_in_subtree(dn, HEFEI)
    assert allocator_for(user=tier2, terminal=terminal) == shanghai_rule

    hefei = login(slapd.people["kguo"])
    assert dn_in_subtree(DirectoryProfile.objects.get(user=hefei).dn, HEFEI)
    assert allocator_for(user=hefei, terminal=terminal) != shanghai_rule


def test_the_dn_follows_the_user_to_a_new_ou(use_directory, slapd, directory_edit):
    use_directory()
    person = slapd.people["pzhou"]
    user = login(person)
    moved = f"uid=pzhou,ou=sales,{HEFEI}"
    directory_edit(
        f"dn: {person.dn}\nchangetype: modrdn\nnewrdn: uid=pzhou\ndeleteoldrdn: 1\n"
        f"newsuperior: ou=sales,{HEFEI}\n",
        undo=f"dn: {moved}\nchangetype: modrdn\nnewrdn: uid=pzhou\ndeleteoldrdn: 1\n"
        f"newsuperior: ou=sales,{SHANGHAI}\n",
    )

    assert login(person) == user
    profile = DirectoryProfile.objects.get(user=user)
    assert normalize_dn(profile.dn) == normalize_dn(moved)
    assert DirectoryProfile.objects.count() == 1


# Group styles


def test_users_carry_a_memberof_attribute_kept_by_the_server(slapd):
    connection = ldap.initialize(slapd.ldap_uri)
    connection.simple_bind_s(SERVICE_DN, SERVICE_PASSWORD)
    person = slapd.people["szheng"]
    [(_, attributes)] = connection.search_s(person.dn, ldap.SCOPE_BASE, attrlist=["memberOf"])
    assert {normalize_dn(v.decode()) for v in attributes["memberOf"]} == {
        f"cn=it-staff,{GROUPS}",
        f"cn=supervisors,{GROUPS}",
    }


@pytest.mark.parametrize("uid", ["xyang", "szheng", "ghu", "rlin", "dliang"])
def test_group_of_names_and_member_of_give_the_same_groups(use_directory, slapd, uid):
    person = slapd.people[uid]
    found = {}
    for style, group_base in [
        ("groupOfNames", GROUPS),
        ("memberOf", GROUPS),
        ("memberOf", ""),  # Active Directory style: every group the entry lists
    ]:
        use_directory(group_type=style, group_search_base=group_base)
        found[style, group_base] = group_names(login(person))

    assert all(groups == set(person.groups) for groups in found.values()), found


def test_member_of_groups_outside_the_group_base_are_not_mirrored(use_directory, slapd):
    use_directory(group_type="memberOf", group_search_base=f"ou=elsewhere,{GROUPS}")
    assert group_names(login(slapd.people["xyang"])) == set()


@pytest.mark.parametrize("style", ["groupOfNames", "memberOf"])
def test_a_change_in_the_directory_reaches_django_at_the_next_login(
    use_directory, slapd, directory_edit, style
):
    use_directory(group_type=style)
    person = slapd.people["nxu"]
    user = login(person)
    assert group_names(user) == {"agents"}

    directory_edit(
        f"dn: cn=supervisors,{GROUPS}\nchangetype: modify\nadd: member\nmember: {person.dn}\n",
        undo=f"dn: cn=supervisors,{GROUPS}\nchangetype: modify\ndelete: member\n"
        f"member: {person.dn}\n",
    )
    assert group_names(login(person)) == {"agents", "supervisors"}

    directory_edit(
        f"dn: cn=agents,{GROUPS}\nchangetype: modify\ndelete: member\nmember: {person.dn}\n",
        undo=f"dn: cn=agents,{GROUPS}\nchangetype: modify\nadd: member\nmember: {person.dn}\n",
    )
    assert group_names(login(person)) == {"supervisors"}


def test_groups_are_left_alone_without_a_group_search_base(use_directory, slapd):
    # groupOfNames needs to know where to search; without a base, group
    # memberships stay as operators set them in Django.
    use_directory(group_search_base="")
    person = slapd.people["wli"]
    user = login(person)
    user.groups.create(name="set-by-hand")
    assert group_names(login(person)) == {"set-by-hand"}


# TLS


def test_start_tls_with_the_servers_ca(use_directory, slapd):
    use_directory(start_tls=True, ca_cert_file=slapd.cafile)
    assert login(slapd.people["bluo"]).username == "bluo"


def test_start_tls_with_an_unknown_ca_is_an_unavailable_directory(use_directory, slapd):
    use_directory(start_tls=True)  # the test CA is in no trust store
    with pytest.raises(DirectoryUnavailable):
        login(slapd.people["bluo"])


# The directory is down


@pytest.mark.parametrize(
    "uid, password",
    [("wli", None), ("wli", "wrong"), ("nobody", "whatever")],
    ids=["right password", "wrong password", "unknown user"],
)
def test_a_stopped_directory_is_unavailable_not_a_wrong_password(
    use_directory, slapd, directory_stopped, uid, password
):
    use_directory()
    person = slapd.people.get(uid)
    with pytest.raises(DirectoryUnavailable) as raised:
        directory_authenticate(
            None,
            username=uid,
            password=password if password is not None else person.password,
        )
    error = raised.value
    assert (error.status_code, error.code) == (503, "directory_unavailable")
    assert error.retry_after == DIRECTORY_RETRY_AFTER
    assert "directory" in error.detail


def test_a_hung_directory_is_unavailable_after_the_timeout(use_directory, slapd, directory_hung):
    use_directory(timeout=1.0)
    with pytest.raises(DirectoryUnavailable):
        login(slapd.people["wli"])


def test_a_second_server_serves_when_the_first_is_down(use_directory, slapd):
    use_directory(server_uri=f"ldap://127.0.0.1:{closed_port()}/ {slapd.ldap_uri}")
    assert login(slapd.people["jliu"]).username == "jliu"


def test_logins_work_again_once_the_directory_is_back(use_directory, slapd):
    use_directory()
    desk = Desk.build()
    person = slapd.people["mzhang"]

    slapd.stop_serving()
    try:
        with pytest.raises(DirectoryUnavailable):
            login(person)
    finally:
        slapd.serve_again()

    assert login(person).username == "mzhang"
    response = connect(username=person.uid, password=person.password, terminal=desk.terminal)
    assert response.status_code == 200, response.content


def test_a_local_superuser_logs_in_while_the_directory_is_down(use_directory, directory_stopped):
    use_directory()
    admin = User.objects.create_superuser("breakglass", password="local-only-9k2")

    assert directory_authenticate(None, username="breakglass", password="local-only-9k2") == admin
    assert not DirectoryProfile.objects.exists()
    # The password of a local account cannot be told wrong either: the name might
    # belong to the directory.
    with pytest.raises(DirectoryUnavailable):
        directory_authenticate(None, username="breakglass", password="wrong")


@pytest.mark.django_db(transaction=True)
def test_concurrent_logins_never_see_each_others_directory_errors(use_directory, slapd, settings):
    # One thread logs in against a server that is down, the other gives wrong
    # passwords to a healthy one: the second must always hear "wrong password".
    use_directory()
    settings.AUTHENTICATION_BACKENDS = ["django_auth_ldap.backend.LDAPBackend"]  # no database
    dead_uri = f"ldap://127.0.0.1:{closed_port()}/"
    settings.AUTH_LDAP_SERVER_URI = lambda request: dead_uri if request.down else slapd.ldap_uri
    rounds = 40
    barrier = threading.Barrier(2)
    outcomes: dict[bool, list[str]] = {True: [], False: []}

    def run(*, down: bool) -> None:
        request = RequestFactory().post(CONNECT)
        request.down = down
        for _ in range(rounds):
            barrier.wait(timeout=10)
            try:
                user = directory_authenticate(request, username="wli", password="wrong")
                outcomes[down].append("none" if user is None else "user")
            except DirectoryUnavailable:
                outcomes[down].append("unavailable")

    threads = [threading.Thread(target=run, kwargs={"down": down}) for down in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes[True] == ["unavailable"] * rounds
    assert outcomes[False] == ["none"] * rounds


# Through the thin-client connect call


def test_connect_gives_a_directory_user_a_desktop(use_directory, slapd):
    use_directory()
    desk = Desk.build()
    person = slapd.people["ychen"]

    response = connect(username=person.uid, password=person.password, terminal=desk.terminal)

    assert response.status_code == 200, response.content
    session = DesktopSession.objects.get(pk=response.json()["session"])
    assert session.user.username == "ychen"
    assert group_names(session.user) == {"agents"}


def test_connect_with_a_wrong_directory_password_is_401(use_directory, slapd):
    use_directory()
    desk = Desk.build()

    response = connect(username="ychen", password="wrong", terminal=desk.terminal)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_credentials"


def test_connect_while_the_directory_is_down_is_503(use_directory, slapd, directory_stopped):
    use_directory()
    desk = Desk.build()
    person = slapd.people["ychen"]

    response = connect(username=person.uid, password=person.password, terminal=desk.terminal)

    assert response.status_code == 503, response.content
    assert response.json()["error"] == "directory_unavailable"
    assert response["Retry-After"] == str(DIRECTORY_RETRY_AFTER)


def test_connect_as_a_local_superuser_while_the_directory_is_down(use_directory, directory_stopped):
    use_directory()
    desk = Desk.build()
    User.objects.create_superuser("breakglass", password="local-only-9k2")

    response = connect(username="breakglass", password="local-only-9k2", terminal=desk.terminal)

    assert response.status_code == 200, response.content


def test_connect_routes_by_the_users_site_ou(use_directory, slapd):
    use_directory()
    desk = Desk.build()  # its default allocator serves everyone else
    shanghai_pool = VMPoolFactory()
    fill_pool(shanghai_pool, 2)
    AllocatorFactory(ou_subtrees=[SHANGHAI], priority=10, pools=[shanghai_pool])

    pools = {}
    for uid in ("xyang", "nxu"):
        person = slapd.people[uid]
        response = connect(username=uid, password=person.password, terminal=desk.terminal)
        assert response.status_code == 200, response.content
        pools[uid] = response.json()["desktop"]["pool"]

    assert pools == {"xyang": shanghai_pool.name, "nxu": desk.pool.name}


# Configuration from the environment


def load_ldap_settings(**env) -> subprocess.CompletedProcess:
    return settings_in_fresh_interpreter(
        "s.AUTHENTICATION_BACKENDS[0], type(s.AUTH_LDAP_GROUP_TYPE).__name__, "
        "s.AUTH_LDAP_GROUP_SEARCH.base_dn, s.AUTH_LDAP_USER_SEARCH.filterstr, "
        "s.AUTH_LDAP_USER_SEARCH.attrlist, s.AUTH_LDAP_BIND_AS_AUTHENTICATING_USER, "
        "s.AUTH_LDAP_START_TLS, s.AUTH_LDAP_CONNECTION_OPTIONS[ldap.OPT_X_TLS_CACERTFILE], "
        "s.AUTH_LDAP_CONNECTION_OPTIONS[ldap.OPT_TIMEOUT]",
        imports="import ldap",
        **env,
    )


def test_active_directory_settings_from_the_environment():
    result = load_ldap_settings(
        AUTH_LDAP_SERVER_URI="ldap://dc1.corp.example.com",
        AUTH_LDAP_USER_SEARCH_BASE="OU=Staff,DC=corp,DC=example,DC=com",
        AUTH_LDAP_USER_FILTER="(sAMAccountName=%(user)s)",
        AUTH_LDAP_GROUP_TYPE="memberOf",
        AUTH_LDAP_GROUP_SEARCH_BASE="OU=DeskOps,OU=Groups,DC=corp,DC=example,DC=com",
        AUTH_LDAP_BIND_DN="CN=svc-deskops,OU=Service,DC=corp,DC=example,DC=com",
        AUTH_LDAP_BIND_PASSWORD="secret",
        AUTH_LDAP_START_TLS="true",
        AUTH_LDAP_CA_CERT_FILE="/etc/ssl/corp-ca.pem",
        AUTH_LDAP_TIMEOUT="3",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django_auth_ldap.backend.LDAPBackend",
        "MemberOfGroupType",
        "OU=DeskOps,OU=Groups,DC=corp,DC=example,DC=com",
        "(sAMAccountName=%(user)s)",
        "['*',",
        "'memberOf']",
        "False",
        "True",
        "/etc/ssl/corp-ca.pem",
        "3.0",
    ]


def test_an_unknown_group_type_stops_the_start():
    result = load_ldap_settings(
        AUTH_LDAP_SERVER_URI="ldap://ldap.example.com",
        AUTH_LDAP_USER_SEARCH_BASE=PEOPLE,
        AUTH_LDAP_GROUP_TYPE="posixGroup",
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "AUTH_LDAP_GROUP_TYPE" in result.stderr
