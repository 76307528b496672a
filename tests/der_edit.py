"""Hand-written DER edits for hostile inputs: decode into a tree, change a field, encode again
(lengths recomputed), and re-seal a PKCS#12 file with a valid MAC after its content changed.

Hostile files are built from tests/certs.py output in the test itself; none is stored.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from certmgr.core import pbe
from certmgr.core.der import oid

SEQUENCE, INTEGER, OCTET_STRING, OID = 0x30, 0x02, 0x04, 0x06
INT_MAX = 2**31 - 1
_MAC_HASHES = {oid("1.3.14.3.2.26"): "sha1", oid("2.16.840.1.101.3.4.2.1"): "sha256"}


@dataclass
class Node:
    tag: int
    content: bytes = b""  # primitive elements
    children: list[Node] = field(default_factory=list)  # constructed elements
    wrapped: bool = False  # an OCTET STRING whose content is the DER of children[0]
    raw: bytes | None = None  # emitted as it is, tag and length included

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def __getitem__(self, index: int) -> Node:
        return self.children[index]


def decode(data: bytes) -> Node:
    node, end = _decode_at(data, 0)
    assert end == len(data), "trailing bytes"
    return node


def _decode_at(data: bytes, pos: int) -> tuple[Node, int]:
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        count = first & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    else:
        length = first
    end = pos + length
    node = Node(tag)
    if node.constructed:
        while pos < end:
            child, pos = _decode_at(data, pos)
            node.children.append(child)
    else:
        node.content = data[pos:end]
    return node, end


def encode(node: Node) -> bytes:
    if node.raw is not None:
        return node.raw
    if node.wrapped:
        body = encode(node.children[0])
    elif node.constructed:
        body = b"".join(encode(child) for child in node.children)
    else:
        body = node.content
    return bytes([node.tag]) + length(len(body)) + body


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def integer(value: int) -> Node:
    return Node(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


# --- PKCS#12 ------------------------------------------------------------------------------------


def authenticated_safe(p12: bytes) -> tuple[Node, Node]:
    """(the PFX, its AuthenticatedSafe: a SEQUENCE of ContentInfo)."""
    pfx = decode(p12)
    return pfx, decode(pfx[1][1][0].content)


def safe_contents(content_info: Node) -> Node:
    """The SafeContents of a ContentInfo of type data."""
    return decode(content_info[1][0].content)


def set_data(content_info: Node, safe: Node) -> None:
    content_info[1][0].content = encode(safe)


def pbkdf2_iterations(algorithm: Node) -> Node:
    """The iterationCount INTEGER of a PBES2 AlgorithmIdentifier."""
    return algorithm[1][0][1][1]


def reseal(pfx: Node, auth_safe: Node, password: bytes, mac_iterations: int | None = None) -> bytes:
    """The PFX with ``auth_safe`` as its content and a MAC that is valid for ``password``."""
    pfx[1][1][0].content = encode(auth_safe)
    mac_data = pfx[2]
    if mac_iterations is not None:
        mac_data.children[2] = integer(mac_iterations)
    hash_name = _MAC_HASHES[mac_data[0][0][0].content]
    salt, iterations = mac_data[1].content, int.from_bytes(mac_data[2].content, "big")
    key = _mac_key(hash_name, password, salt, iterations)
    mac_data[0][1].content = hmac.new(key, pfx[1][1][0].content, hash_name).digest()
    return encode(pfx)


@functools.lru_cache(maxsize=64)  # the fuzz test reseals thousands of files with a few salts
def _mac_key(hash_name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
    size = hashlib.new(hash_name).digest_size
    return pbe.pkcs12_kdf(hash_name, 3, pbe.bmp_password(password), salt, iterations, size)


def encrypted_part(safe: Node, password: bytes, iterations: int = 2048, salt_and_iv: bytes = b"") -> Node:
    """A ContentInfo of type encryptedData holding ``safe``: PBES2, PBKDF2-SHA256, AES-256-CBC."""
    salt_and_iv = salt_and_iv or os.urandom(32)
    salt, iv = salt_and_iv[:16], salt_and_iv[16:32]
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(password)
    plain = encode(safe)
    pad = 16 - len(plain) % 16
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()

    def alg(dotted: str, *params: Node) -> Node:
        return Node(SEQUENCE, children=[Node(OID, oid(dotted)), *params])

    pbkdf2 = Node(
        SEQUENCE, children=[Node(OCTET_STRING, salt), integer(iterations), alg("1.2.840.113549.2.9")]
    )
    pbes2 = Node(
        SEQUENCE,
        children=[
            alg("1.2.840.113549.1.5.12", pbkdf2),
            alg("2.16.840.1.101.3.4.1.42", Node(OCTET_STRING, iv)),
        ],
    )
    info = Node(
        SEQUENCE,
        children=[
            Node(OID, oid("1.2.840.113549.1.7.1")),
            alg("1.2.840.113549.1.5.13", pbes2),
            Node(0x80, ciphertext),
        ],
    )
    encrypted_data = Node(SEQUENCE, children=[integer(0), info])
    return Node(
        SEQUENCE, children=[Node(OID, oid("1.2.840.113549.1.7.6")), Node(0xA0, children=[encrypted_data])]
    )
