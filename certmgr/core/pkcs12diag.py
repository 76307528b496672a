"""Why did a PKCS#12 file not open: wrong password, or legacy encryption OpenSSL refuses?

OpenSSL 3 reports both the same way ("Invalid password or PKCS12 data"). The integrity MAC of
the file (RFC 7292 §4, key derived as in Appendix B) depends only on the password and on
hash functions every OpenSSL has, so checking it ourselves tells the two cases apart.
"""

from __future__ import annotations

import hashlib
import hmac

from . import der, pbe
from .errors import InputError

# DER of the hash OIDs that appear in MacData, and of the PKCS#12 PBE schemes that
# OpenSSL 3 keeps in its "legacy" provider (RFC 7292 Appendix C).
_MAC_HASHES = {
    bytes.fromhex("2b0e03021a"): "sha1",
    bytes.fromhex("608648016503040201"): "sha256",
    bytes.fromhex("608648016503040202"): "sha384",
    bytes.fromhex("608648016503040203"): "sha512",
}
_LEGACY_PBE = {
    bytes.fromhex("060a2a864886f70d010c0101"): "RC4-128",
    bytes.fromhex("060a2a864886f70d010c0102"): "RC4-40",
    bytes.fromhex("060a2a864886f70d010c0105"): "RC2-128",
    bytes.fromhex("060a2a864886f70d010c0106"): "RC2-40",
}


def looks_like_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData OPTIONAL }."""
    try:
        tag, kids = der.outer(data)
    except der.DerError:
        return False
    return (
        tag == der.SEQUENCE
        and len(kids) >= 2
        and kids[0][0] == der.INTEGER
        and der.integer(data, kids[0][1], kids[0][2]) == 3
        and kids[1][0] == der.SEQUENCE
    )


def legacy_algorithms(data: bytes) -> list[str]:
    # 3DES is legacy too, but OpenSSL 3 still reads it by default: only RC2/RC4 get refused.
    return [name for oid, name in _LEGACY_PBE.items() if oid in data]


def mac_matches(data: bytes, password: bytes | None) -> bool | None:
    """True/False when the MAC says the password is right/wrong; None when it cannot tell."""
    try:
        _, kids = der.outer(data)
        if len(kids) < 3:
            return None
        auth_safe = der.children(data, kids[1][1], kids[1][2])
        wrapped = der.children(data, auth_safe[1][1], auth_safe[1][2])
        _, content_start, content_end = wrapped[0]
        mac_data = der.children(data, kids[2][1], kids[2][2])
        digest_info = der.children(data, mac_data[0][1], mac_data[0][2])
        alg = der.children(data, digest_info[0][1], digest_info[0][2])
        hash_name = _MAC_HASHES.get(data[alg[0][1] : alg[0][2]])
        expected = data[digest_info[1][1] : digest_info[1][2]]
        salt = data[mac_data[1][1] : mac_data[1][2]]
        iterations = der.integer(data, *mac_data[2][1:]) if len(mac_data) > 2 else 1
    except (der.DerError, IndexError):
        return None
    # The KDF runs in Python: a file claiming millions of iterations must not stall the portal.
    if hash_name is None or not 0 < iterations <= pbe.PYTHON_KDF_MAX_ITERATIONS:
        return None
    size = hashlib.new(hash_name).digest_size
    key = pbe.pkcs12_kdf(hash_name, 3, pbe.bmp_password(password), salt, iterations, size)
    actual = hmac.new(key, data[content_start:content_end], hash_name).digest()
    return hmac.compare_digest(actual, expected)


def failure(data: bytes, candidates: list[bytes | None]) -> InputError:
    """Why the file did not open with any of ``candidates``, as the error to show."""
    verdicts = [mac_matches(data, secret) for secret in candidates]
    legacy = legacy_algorithms(data)
    if True in verdicts:
        if legacy:
            return InputError(
                InputError.LEGACY_PKCS12,
                f"The password is right, but this PKCS#12 file uses legacy encryption "
                f"({', '.join(legacy)}) that this system's OpenSSL cannot read. Re-export it "
                "with AES: openssl pkcs12 -legacy -in old.p12 -nodes | "
                "openssl pkcs12 -export -out new.p12",
            )
        return InputError(
            InputError.CORRUPT, "The password is right, but the PKCS#12 content cannot be decoded."
        )
    if False in verdicts:
        if candidates == [None, b""]:
            return InputError(
                InputError.PASSWORD_REQUIRED,
                "This PKCS#12 file is password-protected: enter the password chosen when it was generated.",
            )
        return InputError(InputError.WRONG_PASSWORD, "Wrong password for this PKCS#12 file.")
    return InputError(
        InputError.WRONG_PASSWORD,
        "The PKCS#12 file could not be opened: the password is wrong or the file is damaged"
        + (f" (it also uses legacy encryption: {', '.join(legacy)})." if legacy else "."),
    )
