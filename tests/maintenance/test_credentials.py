"""Guest credentials: encrypted in the database, never shown back (pages, API,
audit trail), the key required in production and rotatable."""

import pytest
from rest_framework.test import APIClient

from maintenance.crypto import CredentialDecryptError, decrypt_secret, encrypt_secret
from maintenance.executors import SSHExecutor, WinRMExecutor, executor_for
from maintenance.models import GuestCredential
from maintenance.services import credential_save
from portal.models import AuditEvent
from tests.helpers import settings_in_fresh_interpreter

pytestmark = pytest.mark.django_db

PASSWORD = "Winter-2026!guest"
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-but-secret\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


@pytest.fixture
def credential():
    return credential_save(
        credential=None,
        fields={"name": "windows", "transport": "winrm", "username": "Administrator"},
        password=PASSWORD,
        private_key=PRIVATE_KEY,
        actor="operator",
    )


def test_the_database_holds_ciphertext_not_the_secret(credential):
    stored = GuestCredential.objects.values("password_encrypted", "private_key_encrypted").get()
    assert stored["password_encrypted"] and PASSWORD not in stored["password_encrypted"]
    assert "not-a-real-key" not in stored["private_key_encrypted"]
    assert decrypt_secret(stored["password_encrypted"]) == PASSWORD
    # Fernet tokens differ each time: equal secrets do not show as equal ciphertexts.
    assert encrypt_secret(PASSWORD) != encrypt_secret(PASSWORD)


def test_the_executor_gets_the_decrypted_secret(credential):
    executor = executor_for(credential)
    assert isinstance(executor, WinRMExecutor) and executor.password == PASSWORD
    credential_save(
        credential=credential, fields={"transport": "ssh", "port": 2222}, actor="operator"
    )
    ssh = executor_for(GuestCredential.objects.get())
    assert isinstance(ssh, SSHExecutor) and ssh.password == PASSWORD and ssh.port == 2222


def test_an_empty_secret_keeps_the_stored_one_and_clear_removes_it(credential):
    credential_save(credential=credential, fields={"username": "admin2"}, actor="operator")
    credential.refresh_from_db()
    assert decrypt_secret(credential.password_encrypted) == PASSWORD
    credential_save(credential=credential, fields={"clear_password": True}, actor="operator")
    credential.refresh_from_db()
    assert not credential.password_set and credential.private_key_set


def test_the_audit_trail_never_holds_a_secret(credential):
    credential_save(credential=credential, fields={}, password="Next-password-1", actor="operator")
    events = AuditEvent.objects.filter(object_type="maintenance.guestcredential")
    assert [e.action for e in events.order_by("id")] == [
        "guestcredential.create",
        "guestcredential.update",
    ]
    text = " ".join(str(e.before) + str(e.after) for e in events)
    assert PASSWORD not in text and "Next-password-1" not in text and "not-a-real-key" not in text
    assert "secrets_changed" in text


def test_pages_say_set_and_never_render_the_secret(client, staff, credential):
    client.force_login(staff)
    for url in ("/maintenance/credentials/", f"/maintenance/credentials/{credential.pk}/"):
        page = client.get(url).content.decode()
        assert "set" in page
        assert PASSWORD not in page and "not-a-real-key" not in page
        assert credential.password_encrypted not in page


def test_the_page_saves_a_new_secret_encrypted(client, staff):
    client.force_login(staff)
    response = client.post(
        "/maintenance/credentials/new/",
        {
            "name": "linux",
            "transport": "ssh",
            "username": "root",
            "winrm_auth": "ntlm",
            "password": "typed-in-secret",
        },
    )
    assert response.status_code == 302
    saved = GuestCredential.objects.get(name="linux")
    assert decrypt_secret(saved.password_encrypted) == "typed-in-secret"
    page = client.get(f"/maintenance/credentials/{saved.pk}/").content.decode()
    assert "typed-in-secret" not in page
    assert '<dd id="password-state">set</dd>' in page


def test_the_api_takes_secrets_but_only_says_whether_they_are_set(staff):
    api = APIClient()
    api.force_authenticate(staff)
    created = api.post(
        "/api/v1/guest-credentials/",
        {"name": "api-cred", "transport": "ssh", "username": "ops", "password": "api-secret-1"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["password_set"] is True and body["private_key_set"] is False
    assert "password" not in body and "api-secret-1" not in created.content.decode()
    listed = api.get("/api/v1/guest-credentials/").content.decode()
    assert "api-secret-1" not in listed and "password_encrypted" not in listed


def test_another_key_cannot_decrypt_but_an_old_key_listed_can(settings, credential):
    stored = GuestCredential.objects.get().password_encrypted
    settings.DESKOPS_CREDENTIALS_KEY = "a-completely-different-key-of-enough-length"
    with pytest.raises(CredentialDecryptError):
        decrypt_secret(stored)
    settings.DESKOPS_CREDENTIALS_OLD_KEYS = ["insecure-development-credentials-key-do-not-use"]
    assert decrypt_secret(stored) == PASSWORD


def test_production_refuses_to_start_without_the_credentials_key(tmp_path):
    env = {
        "DESKOPS_VAR_DIR": str(tmp_path),
        "DESKOPS_PRODUCTION": "true",
        "DJANGO_SECRET_KEY": "k" * 50,
        "DJANGO_ALLOWED_HOSTS": "deskops.example.com",
    }
    refused = settings_in_fresh_interpreter("s.DESKOPS_CREDENTIALS_KEY", **env)
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "DESKOPS_CREDENTIALS_KEY" in refused.stderr
    started = settings_in_fresh_interpreter(
        "s.DESKOPS_CREDENTIALS_KEY", DESKOPS_CREDENTIALS_KEY="p" * 40, **env
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "p" * 40
