"""Guest credentials: saved with their secrets encrypted, audited without them."""

from django.db import transaction

from portal.services import audit_record

from ..crypto import encrypt_secret
from ..models import GuestCredential

# Plain fields an audit record may show; the secrets only ever appear as set/not set.
CREDENTIAL_FIELDS = (
    "name",
    "transport",
    "username",
    "port",
    "ssh_host_key",
    "winrm_auth",
    "winrm_https",
    "winrm_verify_tls",
    "package_command",
)


def _snapshot(credential: GuestCredential) -> dict:
    data = {name: getattr(credential, name) for name in CREDENTIAL_FIELDS}
    data["password"] = "set" if credential.password_set else "not set"
    data["private_key"] = "set" if credential.private_key_set else "not set"
    return data


@transaction.atomic
def credential_save(
    *,
    credential: GuestCredential | None,
    fields: dict,
    password: str | None = None,
    private_key: str | None = None,
    actor: str,
    request_id: str = "",
) -> GuestCredential:
    """Create or change a credential. A secret given as `None` (or an empty
    string) keeps the stored one; `clear_password` / `clear_private_key` in
    `fields` remove it. The audit record says which secret changed, never what it
    is."""
    fields = dict(fields)
    clear_password = fields.pop("clear_password", False)
    clear_private_key = fields.pop("clear_private_key", False)
    created = credential is None
    if created:
        credential = GuestCredential()
        before = None
    else:
        credential = GuestCredential.objects.select_for_update().get(pk=credential.pk)
        before = _snapshot(credential)
    for name, value in fields.items():
        if name in CREDENTIAL_FIELDS:
            setattr(credential, name, value)
    secrets_changed = []
    if clear_password:
        credential.password_encrypted = ""
        secrets_changed.append("password")
    elif password:
        credential.password_encrypted = encrypt_secret(password)
        secrets_changed.append("password")
    if clear_private_key:
        credential.private_key_encrypted = ""
        secrets_changed.append("private_key")
    elif private_key:
        credential.private_key_encrypted = encrypt_secret(private_key.strip() + "\n")
        secrets_changed.append("private_key")
    credential.full_clean()
    credential.save()
    after = _snapshot(credential)
    if created:
        audit_record(
            action="guestcredential.create",
            obj=credential,
            actor=actor,
            after=after,
            request_id=request_id,
        )
    else:
        changed = [k for k in after if before[k] != after[k]] + [
            f"{name} (new value)" for name in secrets_changed if before[name] == after[name]
        ]
        if changed:
            audit_record(
                action="guestcredential.update",
                obj=credential,
                actor=actor,
                before={k: before[k] for k in after if before[k] != after[k]},
                after={
                    **{k: after[k] for k in after if before[k] != after[k]},
                    "secrets_changed": secrets_changed,
                },
                request_id=request_id,
            )
    return credential
