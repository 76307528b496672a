"""What a PKCS#12 file will make OpenSSL do, read before OpenSSL is asked to open it.

Opening a PKCS#12 file (RFC 7292 §4), OpenSSL verifies the MAC, decrypts every encrypted part and
the first private key it meets, each after a key derivation whose cost the file names: 2**31-1
iterations keep a worker busy for minutes while it holds the GIL. So the parser reads every such
count first and refuses a file that asks for more than its limit. A key inside an encrypted part
is invisible until the part is decrypted, so the parser decrypts those parts itself (pbe.py,
within the same limit) and looks at what they hold before OpenSSL does. Certificates and keys
are counted on the way; the walk's depth and width are bounded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from . import der, pbe
from .der import oid
from .errors import InputError
from .limits import ParseLimits, check_rsa_key

_DATA = oid("1.2.840.113549.1.7.1")
_ENCRYPTED_DATA = oid("1.2.840.113549.1.7.6")
_KEY_BAG = oid("1.2.840.113549.1.12.10.1.1")
_SHROUDED_KEY_BAG = oid("1.2.840.113549.1.12.10.1.2")
_CERT_BAG = oid("1.2.840.113549.1.12.10.1.3")
_SAFE_CONTENTS_BAG = oid("1.2.840.113549.1.12.10.1.6")
_RSA = (oid("1.2.840.113549.1.1.1"), oid("1.2.840.113549.1.1.10"))  # rsaEncryption, RSASSA-PSS
# Bags of bags (safeContentsBag): OpenSSL follows them recursively; tools do not write them at all.
_MAX_NESTING = 4
SUBJECT = "This PKCS#12 file"


@dataclass
class Survey:
    """What a PKCS#12 file asks for, as far as it has been read."""

    limits: ParseLimits
    kdfs: list[tuple[str, pbe.Kdf]] = field(default_factory=list)
    # (the bytes an algorithm identifier is in, the identifier, the ciphertext) of each encrypted part
    encrypted: list[tuple[bytes, der.Element, bytes]] = field(default_factory=list)
    # (kind, the bytes it is in, the bag's value) of each private key
    key_bags: list[tuple[bytes, bytes, der.Element]] = field(default_factory=list)
    certificates: int = 0
    keys: int = 0
    entries: int = 0

    def add_kdf(self, what: str, data: bytes, algorithm: der.Element) -> None:
        kdf = pbe.kdf_of(data, algorithm)
        if kdf is not None:
            self.kdfs.append((what, kdf))
            pbe.check_cost(SUBJECT, self.kdfs, self.limits.max_kdf_iterations)

    def count_bag(self, kind: bytes) -> None:
        self.entries += 1
        self.certificates += kind == _CERT_BAG
        self.keys += kind in (_KEY_BAG, _SHROUDED_KEY_BAG)
        limit = self.limits.max_certificates
        for noun, number in (("certificates", self.certificates), ("private keys", self.keys)):
            if number > limit:
                raise InputError(
                    InputError.TOO_MANY, f"{SUBJECT} holds more than {limit} {noun}; the limit is {limit}."
                )


def survey(data: bytes, limits: ParseLimits) -> Survey:
    """Everything the file asks for that can be read without its password. InputError when that
    is more than ``limits`` allow, or when the structure cannot be followed."""
    found = Survey(limits)
    try:
        _, pfx = der.outer(data)
        if len(pfx) > 2:
            _mac(data, pfx[2], found)
        kind, content = _content_info(data, pfx[1])
        if kind != _DATA:  # OpenSSL opens password-protected files only (RFC 7292 §4: "data")
            raise der.DerError("authSafe is not data")
        width = 2 * limits.max_certificates
        for info in der.expect(data, _inner(data, content), der.SEQUENCE, limit=width):
            _part(data, info, found)
    except der.TooMany:
        raise _too_many(found) from None
    except (der.DerError, IndexError):
        raise InputError(
            InputError.CORRUPT,
            f"{SUBJECT} cannot be read: its structure is not the DER that PKCS#12 tools write.",
        ) from None
    return found


def inspect(found: Survey, password: bytes | None) -> bool:
    """Decrypt each encrypted part with ``password`` and survey the bags inside, within the same
    limits; then look into each private key. False when the password does not open them: then
    OpenSSL is not asked to either."""
    inside = dataclasses.replace(found, kdfs=list(found.kdfs), encrypted=[], key_bags=list(found.key_bags))
    for data, algorithm, ciphertext in found.encrypted:
        plain = pbe.decrypt(data, algorithm, ciphertext, password)
        if plain is None:
            return False
        try:
            _bags(plain, der.read_tlv(plain), inside, 0)
        except der.TooMany:
            raise _too_many(inside) from None
        except (der.DerError, IndexError):
            return False  # decrypted, but not bags: a wrong password that passed the padding check
    return all(_key_fits(kind, data, value, password) for kind, data, value in inside.key_bags)


def _key_fits(kind: bytes, data: bytes, value: der.Element, password: bytes | None) -> bool:
    """cryptography validates an RSA key as it loads it, at a cost that grows fast with its size
    (limits.check_rsa_key): the key is decrypted here first to read that size."""
    try:
        if kind == _SHROUDED_KEY_BAG:  # EncryptedPrivateKeyInfo ::= SEQUENCE { algorithm, data }
            fields = der.expect(data, value, der.SEQUENCE)
            ciphertext = der.content(data, fields[1], der.OCTET_STRING)
            data = pbe.decrypt(data, fields[0], ciphertext, password) or b""
            value = der.read_tlv(data)
        # PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING, ... }
        fields = der.expect(data, value, der.SEQUENCE)
        if der.content(data, der.expect(data, fields[1], der.SEQUENCE)[0], der.OID) in _RSA:
            rsa_key = _inner(data, fields[2])  # RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, ... }
            n, _, _, p, q = (der.integer(data, *f[1:]) for f in der.expect(data, rsa_key, der.SEQUENCE)[1:6])
            check_rsa_key("The PKCS#12 file's private key", n, p, q)
    except InputError:
        raise
    except (der.DerError, IndexError, ValueError):
        return False  # not a key this password opens, or none OpenSSL could load either
    return True


def _mac(data: bytes, mac_data: der.Element, found: Survey) -> None:
    # MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
    fields = der.expect(data, mac_data, der.SEQUENCE)
    algorithm = der.expect(data, fields[0], der.SEQUENCE)[0]
    if pbe.kdf_of(data, algorithm) is not None:  # PBMAC1 (RFC 9579) names PBKDF2 and its count
        found.add_kdf("the integrity MAC", data, algorithm)
        return
    iterations = der.count(data, fields[2]) if len(fields) > 2 else 1
    found.kdfs.append(("the integrity MAC", pbe.Kdf("PKCS#12 KDF", iterations)))
    pbe.check_cost(SUBJECT, found.kdfs, found.limits.max_kdf_iterations)


def _part(data: bytes, info: der.Element, found: Survey) -> None:
    """One ContentInfo of the AuthenticatedSafe; OpenSSL skips kinds other than these two."""
    kind, content = _content_info(data, info)
    if kind == _DATA:
        _bags(data, _inner(data, content), found, 0)
    elif kind == _ENCRYPTED_DATA:
        # EncryptedData ::= SEQUENCE { version, EncryptedContentInfo ::= SEQUENCE {
        #   contentType, contentEncryptionAlgorithm, encryptedContent [0] IMPLICIT OPTIONAL } }
        encrypted_info = der.expect(data, der.expect(data, content, der.SEQUENCE)[1], der.SEQUENCE)
        found.add_kdf("an encrypted part", data, encrypted_info[1])
        if len(encrypted_info) > 2:
            ciphertext = der.content(data, encrypted_info[2], der.CONTEXT_0_PRIMITIVE)
            found.encrypted.append((data, encrypted_info[1], ciphertext))


def _bags(data: bytes, safe_contents: der.Element, found: Survey, depth: int) -> None:
    # SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT, bagAttributes SET OPTIONAL }
    if depth > _MAX_NESTING:
        raise InputError(
            InputError.TOO_COMPLEX, f"{SUBJECT} nests its entries more than {_MAX_NESTING} levels deep."
        )
    room = max(0, 2 * found.limits.max_certificates - found.entries)
    for bag in der.expect(data, safe_contents, der.SEQUENCE, limit=room):
        fields = der.expect(data, bag, der.SEQUENCE)
        kind = der.content(data, fields[0], der.OID)
        found.count_bag(kind)
        value = der.single(data, fields[1])
        if kind in (_KEY_BAG, _SHROUDED_KEY_BAG):
            found.key_bags.append((kind, data, value))
        if kind == _SHROUDED_KEY_BAG:  # EncryptedPrivateKeyInfo ::= SEQUENCE { algorithm, data }
            found.add_kdf("a private key", data, der.expect(data, value, der.SEQUENCE)[0])
        elif kind == _SAFE_CONTENTS_BAG:
            _bags(data, value, found, depth + 1)


def _content_info(data: bytes, info: der.Element) -> tuple[bytes, der.Element]:
    # ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
    fields = der.expect(data, info, der.SEQUENCE)
    return der.content(data, fields[0], der.OID), der.single(data, fields[1])


def _inner(data: bytes, octets: der.Element) -> der.Element:
    """The DER element an OCTET STRING holds (the content of a "data" ContentInfo)."""
    if octets[0] != der.OCTET_STRING:
        raise der.DerError("expected an OCTET STRING")  # BER's constructed form included
    inner = der.read_tlv(data, octets[1])
    if inner[2] > octets[2]:
        raise der.DerError("element runs past its OCTET STRING")
    return inner


def _too_many(found: Survey) -> InputError:
    width = 2 * found.limits.max_certificates
    return InputError(
        InputError.TOO_MANY, f"{SUBJECT} holds more than {width} entries; the limit is {width}."
    )
