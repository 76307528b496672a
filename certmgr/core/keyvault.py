"""Private keys at rest: Fernet tokens under a list of keys, the first one current.

MultiFernet decrypts with any listed key and encrypts with the first, so rotation is: put a
new key in front, re-encrypt (``manage.py rotate_encryption_keys``), then drop the old one.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    """Configuration or token problem. Never carries key material."""


class KeyVault:
    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise VaultError("No encryption key configured (CERTMGR_ENCRYPTION_KEYS is empty).")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip()))
            except (ValueError, TypeError):
                raise VaultError(
                    f"Encryption key #{position} in CERTMGR_ENCRYPTION_KEYS is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)."
                ) from None
        self._fernet = MultiFernet(fernets)

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._fernet.encrypt(plaintext)

    def decrypt(self, token: bytes, max_age: int | None = None) -> bytes:
        """``max_age`` seconds: older tokens are refused (for short-lived stashes)."""
        return self._open(lambda: self._fernet.decrypt(bytes(token), ttl=max_age))

    def rotate(self, token: bytes) -> bytes:
        return self._open(lambda: self._fernet.rotate(bytes(token)))

    @staticmethod
    def _open(action) -> bytes:
        try:
            return action()
        except InvalidToken:
            raise VaultError(
                "A stored private key cannot be decrypted with any configured encryption key (or it expired)."
            ) from None


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")
