"""The guest credential pages: administrators only, a list with filters and CSV
that says whether each secret is set, and secrets that never come back out —
not in the list, the edit page (even with a form error), the CSV, the audit
trail's records nor its pages."""

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from maintenance.crypto import decrypt_secret, encrypt_secret
from maintenance.models import GuestCredential
from maintenance.services import credential_save
from portal.models import AuditEvent
from tests.factories import UserFactory

from .conftest import make_task

pytestmark = pytest.mark.django_db

PASSWORD = "Stored-Pa55word!guest"
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nstored-key-material-never-shown\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
NEW_PASSWORD = "Typed-In-Next-Pa55"
NEW_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\ntyped-key-material\n-----END OPENSSH PRIVATE KEY-----"
)
SECRETS = (PASSWORD, "stored-key-material", NEW_PASSWORD, "typed-key-material")


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="ada", role="administrator"))
    return client


@pytest.fixture
def windows():
    return credential_save(
        credential=None,
        fields={"name": "windows", "transport": "winrm", "username": "Administrator"},
        password=PASSWORD,
        private_key=PRIVATE_KEY,
        actor="ada",
    )


@pytest.fixture
def linux():
    return credential_save(
        credential=None,
        fields={"name": "linux", "transport": "ssh", "username": "root", "port": 2222},
        actor="ada",
    )


def form(credential, **overrides) -> dict:
    data = {
        "name": credential.name,
        "transport": credential.transport,
        "username": credential.username,
        "port": credential.port or "",
        "ssh_host_key": credential.ssh_host_key,
        "winrm_auth": credential.winrm_auth,
        "winrm_https": "on",
        "winrm_verify_tls": "on",
        "package_command": "",
        "password": "",
        "private_key": "",
    }
    data.update(overrides)
    return data


def assert_no_secret(text: str, *ciphertexts: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    for ciphertext in ciphertexts:
        assert ciphertext not in text


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_a_stored_secret_never_comes_back_out(admin_client, windows):
    # Change both secrets through the page, as an administrator would.
    answer = admin_client.post(
        f"/maintenance/credentials/{windows.pk}/",
        form(windows, password=NEW_PASSWORD, private_key=NEW_KEY),
    )
    assert answer.status_code == 302
    windows.refresh_from_db()
    assert decrypt_secret(windows.password_encrypted) == NEW_PASSWORD
    ciphertexts = (windows.password_encrypted, windows.private_key_encrypted)

    listing = admin_client.get("/maintenance/credentials/").content.decode()
    assert "windows" in listing and ">set<" in listing
    assert_no_secret(listing, *ciphertexts)
    exported = b"".join(
        admin_client.get("/maintenance/credentials/?format=csv").streaming_content
    ).decode()
    assert "windows" in exported
    assert_no_secret(exported, *ciphertexts)

    edit = admin_client.get(f"/maintenance/credentials/{windows.pk}/").content.decode()
    assert '<dd id="password-state">set</dd>' in edit
    assert "guestcredential.update" in edit  # its recent events
    assert_no_secret(edit, *ciphertexts)

    # A form sent back with an error does not echo what was typed either.
    refused = admin_client.post(
        f"/maintenance/credentials/{windows.pk}/",
        form(windows, port="99999", password=NEW_PASSWORD, private_key=NEW_KEY),
    )
    assert refused.status_code == 200 and "port" in refused.context["form"].errors
    assert_no_secret(refused.content.decode(), *ciphertexts)

    events = AuditEvent.objects.filter(object_type="maintenance.guestcredential")
    assert {e.action for e in events} == {"guestcredential.create", "guestcredential.update"}
    recorded = " ".join(f"{e.before} {e.after} {e.object_repr}" for e in events)
    assert "secrets_changed" in recorded
    assert_no_secret(recorded, *ciphertexts)
    trail = admin_client.get("/audit/?object_type=maintenance.guestcredential").content.decode()
    assert "guestcredential.update" in trail
    assert_no_secret(trail, *ciphertexts)
    for event in events:
        assert_no_secret(admin_client.get(f"/audit/{event.pk}/").content.decode(), *ciphertexts)


def test_an_empty_secret_field_keeps_the_stored_one(admin_client, windows):
    admin_client.post(f"/maintenance/credentials/{windows.pk}/", form(windows, username="admin2"))
    windows.refresh_from_db()
    assert windows.username == "admin2"
    assert decrypt_secret(windows.password_encrypted) == PASSWORD
    assert decrypt_secret(windows.private_key_encrypted).strip() == PRIVATE_KEY


def test_the_list_filters_searches_sorts_and_exports(admin_client, windows, linux, sim_credential):
    make_task(
        name="uses windows",
        action="package",
        script="",
        package="7zip",
        credential=windows,
        target_hosts=["host-a"],
    )

    def names(query):
        response = admin_client.get(f"/maintenance/credentials/{query}")
        assert response.status_code == 200
        return [row.obj.name for row in response.context["rows"]]

    assert names("") == ["linux", "sim", "windows"]
    assert names("?sort=-name") == ["windows", "sim", "linux"]
    assert names("?transport=ssh") == ["linux"]
    assert names("?password=yes") == ["windows"]
    assert names("?private_key=no") == ["linux", "sim"]
    assert names("?q=ROOT") == ["linux"]
    assert names("?sort=-task_count")[0] == "windows"
    assert names("?transport=telnet&password=perhaps&sort=-ciphertext&page=zz") == [
        "linux",
        "sim",
        "windows",
    ]

    rows = {
        row["Name"]: row
        for row in csv_rows(admin_client.get("/maintenance/credentials/?format=csv"))
    }
    assert rows["windows"]["Password"] == "set" and rows["windows"]["Private key"] == "set"
    assert rows["linux"]["Password"] == "not set" and rows["linux"]["Port"] == "2222"
    assert rows["windows"]["Tasks"] == "1" and rows["linux"]["Tasks"] == "0"

    edit = admin_client.get(f"/maintenance/credentials/{windows.pk}/").content.decode()
    assert "uses windows" in edit  # the tasks that use it


def test_the_list_costs_the_same_queries_for_25_or_200_rows(admin_client):
    secret = encrypt_secret("bulk-secret")
    GuestCredential.objects.bulk_create(
        GuestCredential(name=f"cred-{index:03d}", password_encrypted=secret) for index in range(210)
    )
    counts = []
    for size in (25, 200):
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(f"/maintenance/credentials/?per_page={size}")
        assert len(response.context["rows"]) == size
        assert "bulk-secret" not in response.content.decode()
        counts.append(len(captured))
    assert counts[0] == counts[1]


@pytest.mark.parametrize("role", ["viewer", "helpdesk", "operator"])
def test_only_administrators_read_or_change_credentials(client, windows, role):
    client.force_login(UserFactory(username=f"as-{role}", role=role))
    for url in ("/maintenance/credentials/", f"/maintenance/credentials/{windows.pk}/"):
        assert client.get(url).status_code == 403
        assert client.post(url, form(windows, password="stolen")).status_code == 403
    assert client.post("/maintenance/credentials/new/", {"name": "x"}).status_code == 403
    windows.refresh_from_db()
    assert decrypt_secret(windows.password_encrypted) == PASSWORD
    assert GuestCredential.objects.count() == 1
