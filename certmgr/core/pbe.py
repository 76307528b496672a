"""Password-based encryption as PKCS#12 files and encrypted PKCS#8 keys use it: what a key
derivation costs, read from its parameters, and decrypting one encrypted part of a PKCS#12 file.

RFC 8018 (PBES1, PBES2, PBKDF2), RFC 7914 §7 (scrypt), RFC 9579 (PBMAC1), RFC 7292 Appendix B-C
(the PKCS#12 key derivation and its PBE schemes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from . import der, rc2
from .der import oid
from .errors import InputError

# What the parser runs itself in plain Python is slower than OpenSSL: the PKCS#12 key derivation
# (~0.5 µs an iteration) and RC2 (~45 µs a block). Both are bounded far below the general limit.
PYTHON_KDF_MAX_ITERATIONS = 200_000
PYTHON_RC2_MAX_BYTES = 64 * 1024
# scrypt needs 128·r·(N + p) bytes; OpenSSL's own default ceiling for password-based encryption.
SCRYPT_MAX_MEMORY = 32 * 1024 * 1024

_PBES2 = oid("1.2.840.113549.1.5.13")
_PBKDF2 = oid("1.2.840.113549.1.5.12")
_PBMAC1 = oid("1.2.840.113549.1.5.14")
_SCRYPT = oid("1.3.6.1.4.1.11591.4.11")
# PKCS#5 v1.5 PBES1 (MD2/MD5/SHA-1 with DES/RC2): only their cost is read, they are not decrypted.
_PBES1 = {oid(f"1.2.840.113549.1.5.{n}") for n in (1, 3, 4, 6, 10, 11)}
# RFC 7292 Appendix C, pkcs-12PbeIds: cipher and key length in bytes.
_PKCS12_PBE = {
    oid("1.2.840.113549.1.12.1.1"): ("RC4", 16),
    oid("1.2.840.113549.1.12.1.2"): ("RC4", 5),
    oid("1.2.840.113549.1.12.1.3"): ("3DES", 24),
    oid("1.2.840.113549.1.12.1.4"): ("3DES", 16),
    oid("1.2.840.113549.1.12.1.5"): ("RC2", 16),
    oid("1.2.840.113549.1.12.1.6"): ("RC2", 5),
}
_PRF: dict[bytes, type[hashes.HashAlgorithm]] = {
    oid("1.2.840.113549.2.7"): hashes.SHA1,
    oid("1.2.840.113549.2.8"): hashes.SHA224,
    oid("1.2.840.113549.2.9"): hashes.SHA256,
    oid("1.2.840.113549.2.10"): hashes.SHA384,
    oid("1.2.840.113549.2.11"): hashes.SHA512,
    oid("1.2.840.113549.2.12"): hashes.SHA512_224,
    oid("1.2.840.113549.2.13"): hashes.SHA512_256,
}
_PBES2_CIPHERS = {
    oid("2.16.840.1.101.3.4.1.2"): ("AES", 16),
    oid("2.16.840.1.101.3.4.1.22"): ("AES", 24),
    oid("2.16.840.1.101.3.4.1.42"): ("AES", 32),
    oid("1.2.840.113549.3.7"): ("3DES", 24),
}


@dataclass(frozen=True)
class Kdf:
    name: str  # for messages: "PBKDF2", "scrypt N=16384 r=8 p=1"
    cost: int  # iterations; N·r·p for scrypt
    memory: int = 0  # bytes, for scrypt


class Unsupported(der.DerError):
    """A password-based scheme whose cost cannot be read; refused, as OpenSSL might still run it."""


def kdf_of(data: bytes, algorithm: der.Element) -> Kdf | None:
    """The key derivation an AlgorithmIdentifier asks for; None if it is not password-based."""
    try:
        scheme, params = _algorithm(data, algorithm)
        if scheme in _PKCS12_PBE or scheme in _PBES1:
            fields = der.expect(data, params, der.SEQUENCE)
            return Kdf("PKCS#12 KDF" if scheme in _PKCS12_PBE else "PBKDF1", der.count(data, fields[1]))
        if scheme in (_PBES2, _PBMAC1):
            return _kdf(data, der.expect(data, params, der.SEQUENCE)[0])
        return None
    except IndexError:  # a SEQUENCE with fewer fields than the scheme has
        raise der.DerError("missing field") from None


def _kdf(data: bytes, algorithm: der.Element) -> Kdf:
    scheme, params = _algorithm(data, algorithm)
    fields = der.expect(data, params, der.SEQUENCE)
    if scheme == _PBKDF2:
        return Kdf("PBKDF2", der.count(data, fields[1]))
    if scheme == _SCRYPT:
        n, r, p = (der.count(data, field) for field in fields[1:4])
        return Kdf(f"scrypt N={n} r={r} p={p}", n * r * p, 128 * r * (n + p))
    raise Unsupported("a key-derivation function other than PBKDF2 and scrypt")


def _algorithm(data: bytes, algorithm: der.Element) -> tuple[bytes, der.Element | None]:
    kids = der.expect(data, algorithm, der.SEQUENCE)
    return der.content(data, kids[0] if kids else None, der.OID), (kids[1] if len(kids) > 1 else None)


def check_cost(subject: str, kdfs: list[tuple[str, Kdf]], limit: int) -> None:
    """InputError if ``kdfs`` (what for, which derivation) together cost more than ``limit``."""
    total = sum(kdf.cost for _, kdf in kdfs)
    if total > limit:
        largest = sorted(kdfs, key=lambda item: -item[1].cost)[:3]
        parts = "; ".join(f"{what}, {kdf.name}: {kdf.cost:,}" for what, kdf in largest)
        raise InputError(
            InputError.TOO_COSTLY,
            f"{subject} asks for {total:,} key-derivation iterations ({parts}); the limit is {limit:,}. "
            "Common tools use a few thousand: export it again with the defaults.",
        )
    for what, kdf in kdfs:
        if kdf.memory > SCRYPT_MAX_MEMORY:
            raise InputError(
                InputError.TOO_COSTLY,
                f"{subject} asks for {kdf.memory // 2**20:,} MiB of memory for {what} ({kdf.name}); "
                f"the limit is {SCRYPT_MAX_MEMORY // 2**20} MiB.",
            )


def check_key_cost(epki: bytes, limit: int) -> None:
    """EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData }: bound the key
    derivation it names (PBKDF2 iterations, scrypt's N·r·p) before cryptography runs it."""
    try:
        kdf = kdf_of(epki, der.outer(epki)[1][0])
    except Unsupported:
        raise InputError(
            InputError.UNSUPPORTED_KEY,
            "The private key is encrypted with a key derivation other than PBKDF2 and scrypt: "
            "export it again (openssl pkcs8 -topk8 -v2 aes-256-cbc).",
        ) from None
    except (der.DerError, IndexError):
        raise InputError(
            InputError.CORRUPT, "The PEM block 'ENCRYPTED PRIVATE KEY' is not a readable private key."
        ) from None
    check_cost("The encrypted private key", [("its encryption", kdf)] if kdf else [], limit)


# --- decrypting a PKCS#12 part ----------------------------------------------------------------


def decrypt(data: bytes, algorithm: der.Element, ciphertext: bytes, password: bytes | None) -> bytes | None:
    """The plaintext of an encrypted part of a PKCS#12 file, or None when ``password`` does not
    open it or the scheme is not one read here. The caller has bounded its cost (check_cost)."""
    try:
        scheme, params = _algorithm(data, algorithm)
        if scheme in _PKCS12_PBE:
            return _pkcs12_pbe(data, scheme, params, ciphertext, password)
        if scheme == _PBES2:
            return _pbes2(data, params, ciphertext, password or b"")
        return None
    except InputError:
        raise
    # Bad padding or key length, a malformed field, an unknown cipher, or one this OpenSSL lacks:
    # whatever the reason, OpenSSL is not asked to open the part with this password either.
    except (ValueError, IndexError, KeyError, UnsupportedAlgorithm):
        return None


def _pkcs12_pbe(data: bytes, scheme: bytes, params, ciphertext: bytes, password: bytes | None) -> bytes:
    cipher, key_size = _PKCS12_PBE[scheme]
    fields = der.expect(data, params, der.SEQUENCE)
    salt, iterations = der.content(data, fields[0], der.OCTET_STRING), der.count(data, fields[1])
    if iterations > PYTHON_KDF_MAX_ITERATIONS or (cipher == "RC2" and len(ciphertext) > PYTHON_RC2_MAX_BYTES):
        raise InputError(
            InputError.TOO_COSTLY,
            f"This PKCS#12 file uses legacy encryption ({cipher}, {iterations:,} iterations, "
            f"{len(ciphertext):,} bytes) beyond what the portal checks: at most "
            f"{PYTHON_KDF_MAX_ITERATIONS:,} iterations and, for RC2, {PYTHON_RC2_MAX_BYTES // 1024} KiB. "
            "Export it again with AES (openssl pkcs12 -export without -legacy).",
        )
    secret = bmp_password(password)
    key = pkcs12_kdf("sha1", 1, secret, salt, iterations, key_size)
    if cipher == "RC4":
        return Cipher(ARC4(key), None).decryptor().update(ciphertext)
    iv = pkcs12_kdf("sha1", 2, secret, salt, iterations, 8)
    if cipher == "RC2":
        return _unpad(rc2.decrypt_cbc(key, key_size * 8, iv, ciphertext), 8)
    return _unpad(_cbc(TripleDES(key), iv, ciphertext), 8)


def _pbes2(data: bytes, params, ciphertext: bytes, password: bytes) -> bytes:
    kdf, scheme = der.expect(data, params, der.SEQUENCE)[:2]
    cipher_oid, cipher_params = _algorithm(data, scheme)
    cipher, key_size = _PBES2_CIPHERS[cipher_oid]
    iv = der.content(data, cipher_params, der.OCTET_STRING)
    key = _derive(data, kdf, password, key_size)
    algorithm = algorithms.AES(key) if cipher == "AES" else TripleDES(key)
    return _unpad(_cbc(algorithm, iv, ciphertext), algorithm.block_size // 8)


def _derive(data: bytes, kdf: der.Element, password: bytes, size: int) -> bytes:
    scheme, params = _algorithm(data, kdf)
    fields = der.expect(data, params, der.SEQUENCE)
    salt = der.content(data, fields[0], der.OCTET_STRING)
    if scheme == _SCRYPT:
        n, r, p = (der.count(data, field) for field in fields[1:4])
        return Scrypt(salt, size, n, r, p).derive(password)
    if scheme != _PBKDF2:
        raise ValueError("unknown key-derivation function")
    rest = fields[2:]
    if rest and rest[0][0] == der.INTEGER:  # keyLength, optional; OpenSSL insists it fits the cipher
        if der.count(data, rest[0]) != size:
            raise ValueError("PBKDF2 key length does not fit the cipher")
        rest = rest[1:]
    prf = _PRF[_algorithm(data, rest[0])[0]] if rest else hashes.SHA1
    return PBKDF2HMAC(prf(), size, salt, der.count(data, fields[1])).derive(password)


def _cbc(algorithm, iv: bytes, ciphertext: bytes) -> bytes:
    decryptor = Cipher(algorithm, modes.CBC(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _unpad(padded: bytes, block: int) -> bytes:
    pad = padded[-1] if padded else 0
    if not 1 <= pad <= block or padded[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad padding: a wrong password, most likely")
    return padded[:-pad]


# --- RFC 7292 Appendix B ----------------------------------------------------------------------


def bmp_password(password: bytes | None) -> bytes:
    # A NULL password is an empty byte string; an empty one is just the two-byte terminator.
    if password is None:
        return b""
    return password.decode("utf-8").encode("utf-16-be") + b"\x00\x00"


def pkcs12_kdf(
    hash_name: str, purpose: int, password: bytes, salt: bytes, iterations: int, size: int
) -> bytes:
    """RFC 7292 Appendix B.2; ``purpose`` is the ID byte: 1 key, 2 IV, 3 MAC key."""
    new = getattr(hashlib, hash_name)
    digest_size, block = new().digest_size, new().block_size
    diversifier = bytes([purpose]) * block

    def fill(value: bytes) -> bytes:
        if not value:
            return b""
        length = block * ((len(value) + block - 1) // block)
        return (value * (length // len(value) + 1))[:length]

    material = bytearray(fill(salt) + fill(password))
    out = b""
    while len(out) < size:
        a = new(diversifier + bytes(material)).digest()
        for _ in range(iterations - 1):
            a = new(a).digest()
        out += a
        b = int.from_bytes((a * (block // digest_size + 1))[:block], "big")
        for j in range(0, len(material), block):
            chunk = int.from_bytes(material[j : j + block], "big")
            material[j : j + block] = ((chunk + b + 1) % (1 << (block * 8))).to_bytes(block, "big")
    return out[:size]
