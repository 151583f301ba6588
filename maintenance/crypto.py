"""Encryption of guest credentials at rest.

Fernet (AES in CBC mode with an HMAC) from `cryptography`; its key is derived with
HKDF from the `DESKOPS_CREDENTIALS_KEY` setting, so the setting may be any long
random string rather than a Fernet key in its exact format. Older keys listed in
`DESKOPS_CREDENTIALS_OLD_KEYS` still decrypt, which lets an operator rotate the key
without losing the stored credentials."""

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Binds derived keys to this use, so the same setting could never decrypt
# anything encrypted for another purpose.
_KEY_PURPOSE = b"deskops guest credentials v1"


class CredentialDecryptError(Exception):
    """The stored secret cannot be decrypted with any configured key (the key was
    changed without listing the old one in DESKOPS_CREDENTIALS_OLD_KEYS)."""


def _fernet_for(secret: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_PURPOSE).derive(
        secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _cipher() -> MultiFernet:
    keys = [settings.DESKOPS_CREDENTIALS_KEY, *settings.DESKOPS_CREDENTIALS_OLD_KEYS]
    return MultiFernet([_fernet_for(key) for key in keys if key])


def encrypt_secret(plaintext: str) -> str:
    """The ciphertext to store; an empty secret stays empty ("not set")."""
    if not plaintext:
        return ""
    return _cipher().encrypt(plaintext.encode()).decode("ascii")


def decrypt_secret(ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _cipher().decrypt(ciphertext.encode("ascii")).decode()
    except InvalidToken as exc:
        raise CredentialDecryptError(
            "A stored guest credential cannot be decrypted with DESKOPS_CREDENTIALS_KEY."
        ) from exc
