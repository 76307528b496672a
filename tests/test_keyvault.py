"""Private keys at rest: Fernet tokens under a list of keys, the first one current."""

from __future__ import annotations

import pytest

from certmgr.core.keyvault import KeyVault, VaultError, generate_key

PLAINTEXT = b"0\x82\x04\xbd pkcs8 private key bytes"


def test_it_round_trips():
    vault = KeyVault([generate_key()])

    token = vault.encrypt(PLAINTEXT)

    assert PLAINTEXT not in token
    assert vault.decrypt(token) == PLAINTEXT


def test_it_accepts_keys_with_surrounding_whitespace():
    """Keys come from an environment variable, often with a trailing newline."""
    key = generate_key()

    token = KeyVault([key]).encrypt(PLAINTEXT)

    assert KeyVault([f"  {key}\n"]).decrypt(token) == PLAINTEXT


def test_it_decrypts_old_tokens_after_a_new_key_is_put_first():
    old, new = generate_key(), generate_key()
    token = KeyVault([old]).encrypt(PLAINTEXT)

    assert KeyVault([new, old]).decrypt(token) == PLAINTEXT


def test_it_encrypts_with_the_first_key():
    old, new = generate_key(), generate_key()

    token = KeyVault([new, old]).encrypt(PLAINTEXT)

    assert KeyVault([new]).decrypt(token) == PLAINTEXT
    with pytest.raises(VaultError):
        KeyVault([old]).decrypt(token)


def test_rotate_re_encrypts_so_that_the_old_key_can_be_dropped():
    old, new = generate_key(), generate_key()
    token = KeyVault([old]).encrypt(PLAINTEXT)

    rotated = KeyVault([new, old]).rotate(token)

    assert KeyVault([new]).decrypt(rotated) == PLAINTEXT
    with pytest.raises(VaultError):
        KeyVault([new]).decrypt(token)


def test_a_bad_key_names_its_position_but_not_its_value():
    bad = "not-a-fernet-key-but-a-password-Hunter2"

    with pytest.raises(VaultError) as caught:
        KeyVault([generate_key(), bad])

    message = str(caught.value)
    assert "#2" in message
    assert "CERTMGR_ENCRYPTION_KEYS" in message
    assert bad not in message
    assert "Hunter2" not in message


def test_no_key_at_all_is_a_vault_error():
    with pytest.raises(VaultError, match="No encryption key"):
        KeyVault([])


def test_a_token_from_an_unknown_key_is_a_vault_error():
    token = KeyVault([generate_key()]).encrypt(PLAINTEXT)
    key = generate_key()

    with pytest.raises(VaultError) as caught:
        KeyVault([key]).decrypt(token)

    assert "cannot be decrypted" in str(caught.value)
    assert key not in str(caught.value)


def test_rotating_a_token_from_an_unknown_key_is_a_vault_error():
    token = KeyVault([generate_key()]).encrypt(PLAINTEXT)

    with pytest.raises(VaultError, match="cannot be decrypted"):
        KeyVault([generate_key()]).rotate(token)


def test_a_damaged_token_is_a_vault_error():
    vault = KeyVault([generate_key()])
    token = bytearray(vault.encrypt(PLAINTEXT))
    token[-5] ^= 0x01

    with pytest.raises(VaultError):
        vault.decrypt(bytes(token))
