"""Seeded mutations of certificate inputs, for the parser's fuzz test.

Byte-level damage reaches the format detection; DER-tree edits (lengths kept consistent, OCTET
STRINGs that hold DER opened up) reach cryptography and OpenSSL; PKCS#12 files are sealed again
with a valid MAC, so edits get past the integrity check, and an encrypted part is decrypted,
edited and encrypted again; PEM bodies and JSON values are edited in place.
"""

from __future__ import annotations

import base64
import json
import random
import re

from certmgr.core import pbe, pkcs12walk
from certmgr.core.der import oid
from certmgr.core.limits import DEFAULT_LIMITS
from tests import der_edit as d

# Iteration counts and versions: the edges of C and Rust integers, and costs that would stall OpenSSL.
INTERESTING_INTS = [
    0,
    1,
    -1,
    2,
    127,
    128,
    255,
    2**16,
    2**24,
    2**31 - 1,
    2**31 - 1,
    2**32,
    2**63,
    10**40,
    1_999_999,
]
INTERESTING_BYTES = [
    0x00,
    0x01,
    0x02,
    0x04,
    0x05,
    0x06,
    0x1F,
    0x30,
    0x31,
    0x7F,
    0x80,
    0x81,
    0x82,
    0x84,
    0xA0,
    0xFF,
]
TAGS = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x17, 0x18, 0x1E, 0x30, 0x31, 0x80, 0xA0, 0xA3]
OIDS = [
    oid(dotted)
    for dotted in (
        "1.2.840.113549.1.5.13",  # PBES2
        "1.2.840.113549.1.5.12",  # PBKDF2
        "1.2.840.113549.1.5.14",  # PBMAC1
        "1.3.6.1.4.1.11591.4.11",  # scrypt
        "1.2.840.113549.1.12.1.3",  # pbeWithSHAAnd3-KeyTripleDES-CBC
        "1.2.840.113549.1.12.1.6",  # pbeWithSHAAnd40BitRC2-CBC
        "1.2.840.113549.1.5.3",  # pbeWithMD5AndDES-CBC
        "1.2.840.113549.1.7.1",  # data
        "1.2.840.113549.1.7.2",  # signedData
        "1.2.840.113549.1.7.6",  # encryptedData
        "1.2.840.113549.1.12.10.1.2",  # pkcs8ShroudedKeyBag
        "1.2.840.113549.1.12.10.1.3",  # certBag
        "1.2.840.113549.1.12.10.1.6",  # safeContentsBag
        "1.2.840.113549.1.1.1",  # rsaEncryption
        "1.2.840.10045.2.1",  # ecPublicKey
        "1.3.101.112",  # Ed25519
        "2.16.840.1.101.3.4.1.42",  # aes256-CBC
        "1.2.3.4.5",
    )
]
# What the test's own DER decoder raises on what a mutation made (deep nesting included).
_UNDECODABLE = (IndexError, AssertionError, ValueError, KeyError, RecursionError)
_ENCRYPTED_DATA = oid("1.2.840.113549.1.7.6")
_PEM = re.compile(rb"(-----BEGIN ([A-Z0-9 ]+)-----\r?\n)(.*?)(-----END \2-----)", re.DOTALL)


class Mutator:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self._plaintexts: dict[tuple[bytes, str], bytes | None] = {}

    # --- bytes ----------------------------------------------------------------------------------

    def damage(self, data: bytes) -> bytes:
        """Flip bits, set a byte, cut, delete, repeat or insert: the format no longer quite holds."""
        rng, data = self.rng, bytearray(data)
        if not data:
            return bytes(rng.randbytes(rng.randint(1, 64)))
        pos = rng.randrange(len(data))
        kind = rng.randrange(6)
        if kind == 0:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[pos] = rng.choice(INTERESTING_BYTES)
        elif kind == 2:
            del data[pos:]
        elif kind == 3:
            del data[pos : pos + rng.randint(1, 64)]
        elif kind == 4:
            data[pos:pos] = data[pos : pos + rng.randint(1, 256)] * rng.randint(1, 4)
        else:
            data[pos:pos] = rng.randbytes(rng.randint(1, 32))
        return bytes(data)

    # --- DER ------------------------------------------------------------------------------------

    def der(self, data: bytes) -> bytes:
        try:
            tree = d.decode(data)
        except _UNDECODABLE:
            return self.damage(data)
        nodes = list(_walk(tree))
        integers = [node for node in nodes if node.tag == d.INTEGER]
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            # Integers (iteration counts, versions, sizes) are where a file asks for work: favoured.
            pool = integers if integers and self.rng.random() < 0.3 else nodes
            self.edit(self.rng.choice(pool))
        return d.encode(tree)

    def edit(self, node: d.Node) -> None:
        rng = self.rng
        kind = rng.randrange(8)
        if node.tag == d.INTEGER and kind < 3:
            value = rng.choice(INTERESTING_INTS)
            node.content = (
                d.integer(value).content if rng.random() < 0.8 else rng.randbytes(rng.randint(0, 12))
            )
        elif node.tag == d.OID and kind < 3:
            node.content = rng.choice(OIDS)
        elif kind == 3:
            self._retag(node, rng.choice(TAGS))
        elif kind == 4 and node.children and not node.wrapped:
            self._reshape(node.children)
        elif kind == 5:
            depth = rng.choice((3, 40, 200, 2000))
            raw = d.encode(node)
            for _ in range(depth):  # built as bytes: a tree this deep would overflow the encoder here
                raw = bytes([0x30]) + d.length(len(raw)) + raw
            node.raw = raw
        elif not node.constructed and not node.wrapped:
            node.content = rng.choice(
                (b"", node.content[: len(node.content) // 2], rng.randbytes(rng.randint(1, 40)))
            )
        else:
            node.raw = self.damage(d.encode(node))

    def _retag(self, node: d.Node, tag: int) -> None:
        if node.constructed and not tag & 0x20:
            node.content, node.children = b"".join(d.encode(child) for child in node.children), []
        elif not node.constructed and tag & 0x20:
            node.children, node.content, node.wrapped = [d.Node(d.OCTET_STRING, node.content)], b"", False
        node.tag = tag

    def _reshape(self, children: list[d.Node]) -> None:
        rng, i = self.rng, self.rng.randrange(len(children))
        choice = rng.randrange(4)
        if choice == 0:
            del children[i]
        elif choice == 1:
            children.insert(i, children[i])
        elif choice == 2:
            j = rng.randrange(len(children))
            children[i], children[j] = children[j], children[i]
        else:
            children.insert(
                i, rng.choice((d.Node(0x05), d.integer(2**31 - 1), d.Node(0x30), d.Node(0x04, b"\x00")))
            )

    # --- PKCS#12 --------------------------------------------------------------------------------

    def pkcs12(self, data: bytes, password: str) -> bytes:
        """A DER edit, or an edit inside the first encrypted part; then a MAC valid for ``password``."""
        mutated = self._inside_encrypted_part(data, password) if self.rng.random() < 0.3 else None
        mutated = mutated or self.der(data)
        if self.rng.random() < 0.2:
            return mutated  # the MAC no longer matches
        try:
            pfx, auth_safe = d.authenticated_safe(mutated)
            if not 0 < int.from_bytes(pfx[2][2].content, "big", signed=True) <= 10_000:
                return mutated  # the MAC count was edited: computing a MAC for it here could take hours
            return d.reseal(pfx, auth_safe, password.encode())
        except _UNDECODABLE:
            return mutated

    def _inside_encrypted_part(self, data: bytes, password: str) -> bytes | None:
        if (data, password) not in self._plaintexts:
            found = pkcs12walk.survey(data, DEFAULT_LIMITS)
            plain = pbe.decrypt(*found.encrypted[0], password.encode()) if found.encrypted else None
            self._plaintexts[data, password] = plain
        plain = self._plaintexts[data, password]
        if not plain:
            return None
        try:
            mutated = d.decode(self.der(plain))
        except _UNDECODABLE:
            return None
        pfx, auth_safe = d.authenticated_safe(data)
        encrypted = [i for i, info in enumerate(auth_safe.children) if info[0].content == _ENCRYPTED_DATA]
        part = d.encrypted_part(mutated, password.encode(), salt_and_iv=self.rng.randbytes(32))
        auth_safe.children[encrypted[0]] = part
        return d.reseal(pfx, auth_safe, password.encode())

    # --- text -----------------------------------------------------------------------------------

    def pem(self, text: bytes) -> bytes:
        """Edit the DER inside one PEM block, or the block's lines."""
        blocks = list(_PEM.finditer(text))
        if not blocks or self.rng.random() < 0.25:
            return self._lines(text)
        block = self.rng.choice(blocks)
        try:
            der = base64.b64decode(b"".join(block.group(3).split()), validate=True)
        except ValueError:
            return self.damage(text)
        body = base64.encodebytes(self.der(der) if self.rng.random() < 0.8 else self.damage(der))
        return text[: block.start(3)] + body + text[block.end(3) :]

    def _lines(self, text: bytes) -> bytes:
        rng, lines = self.rng, text.split(b"\n")
        i = rng.randrange(len(lines))
        choice = rng.randrange(5)
        if choice == 0:
            del lines[i]
        elif choice == 1:
            lines.insert(i, lines[i])
        elif choice == 2:
            lines[i] = re.sub(
                rb"(BEGIN|END) [A-Z0-9 ]+", lambda m: m.group(1) + b" " + rng.choice(_LABELS), lines[i]
            )
        elif choice == 3:
            lines.insert(
                i, b"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n"
            )
        else:
            return self.damage(text)
        return b"\n".join(lines)

    def json(self, text: bytes) -> bytes:
        """Replace one value of a JSON document (or damage its text)."""
        try:
            document = json.loads(text)
        except ValueError:
            return self.damage(text)
        slots = list(_slots(document))
        if not slots or self.rng.random() < 0.2:
            return self.damage(text)
        container, key = self.rng.choice(slots)
        value = container[key]
        if isinstance(value, str) and "-----BEGIN" in value and self.rng.random() < 0.6:
            container[key] = self.pem(value.encode()).decode("utf-8", "replace")
            return json.dumps(document).encode()
        replacement = self.rng.choice(
            [None, 0, -1, 1e308, True, "", "x" * 5000, [], {}, "@@NEST@@", ["a"] * 50]
        )
        container[key] = replacement
        dumped = json.dumps(document)
        depth = self.rng.choice((10, 40, 1000))
        return dumped.replace('"@@NEST@@"', "[" * depth + "]" * depth).encode()


_LABELS = [
    b"CERTIFICATE",
    b"PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
    b"PKCS7",
]


def _walk(node: d.Node):
    """Every node, OCTET STRINGs that hold DER opened up (a PKCS#12 file is DER inside DER)."""
    yield node
    if not node.constructed and node.tag == d.OCTET_STRING and node.content[:1] == b"\x30":
        try:
            inner = d.decode(node.content)
        except _UNDECODABLE:
            return
        node.wrapped, node.children = True, [inner]
    for child in node.children:
        yield from _walk(child)


def _slots(value):
    """(container, key) of every value inside a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield value, key
            yield from _slots(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value, index
            yield from _slots(item)
