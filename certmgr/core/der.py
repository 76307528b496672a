"""Just enough DER reading to tell formats apart and to look inside PKCS#12 files.

cryptography parses the real thing; this module only looks at the structure so that a truncated
file, a PKCS#7 bundle and a PKCS#12 archive each get their own message, and so that what a file
asks OpenSSL to do can be bounded before OpenSSL does it. Every loop here is bounded by the input's
length or by a ``limit`` the caller gives.
"""

from __future__ import annotations

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
CONTEXT_0 = 0xA0  # [0] EXPLICIT (constructed)
CONTEXT_0_PRIMITIVE = 0x80  # [0] IMPLICIT OCTET STRING

Element = tuple[int, int, int]  # tag, start of content, end of content


class DerError(ValueError):
    pass


class Truncated(DerError):
    pass


class TooMany(DerError):
    """More elements than the caller's limit: a count to report, not a malformed structure."""


def read_tlv(data: bytes, offset: int = 0) -> Element:
    """Return (tag, start of content, end of content) of the element at ``offset``."""
    if offset + 2 > len(data):
        raise Truncated("element header cut off")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        # No structure this module reads uses tag numbers above 30; reading the next byte as a
        # length would misread one, so it is refused rather than guessed at.
        raise DerError("high tag number form")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError("indefinite length (BER) is not DER")
    else:
        count = first & 0x7F
        if count > 4:
            raise DerError("length field too long")
        if pos + count > len(data):
            raise Truncated("length field cut off")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise Truncated("content shorter than its declared length")
    return tag, pos, pos + length


def children(data: bytes, start: int, end: int, limit: int | None = None) -> list[Element]:
    """The elements between ``start`` and ``end``; DerError when there are more than ``limit``."""
    out: list[Element] = []
    pos = start
    while pos < end:
        if limit is not None and len(out) == limit:
            raise TooMany(f"more than {limit} elements")
        tag, cstart, cend = read_tlv(data, pos)
        if cend > end:
            raise DerError("element runs past its parent")
        out.append((tag, cstart, cend))
        pos = cend
    return out


def outer(data: bytes) -> tuple[int, list[Element]]:
    """Tag of the outermost element and its direct children (for SEQUENCEs)."""
    tag, start, end = read_tlv(data)
    if tag != SEQUENCE:
        return tag, []
    # Every format told apart here has at most 9 top-level elements (a PKCS#1 RSA key).
    return tag, children(data, start, end, limit=16)


def integer(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big", signed=True)


def expect(data: bytes, element: Element | None, tag: int, limit: int = 16) -> list[Element]:
    """The children of ``element``, which must be a constructed element with ``tag``."""
    if element is None or element[0] != tag:
        raise DerError(f"expected tag {tag:#04x}, found {_tag_of(element)}")
    return children(data, element[1], element[2], limit)


def content(data: bytes, element: Element | None, tag: int) -> bytes:
    """The content octets of a primitive ``element`` with ``tag``."""
    if element is None or element[0] != tag:
        raise DerError(f"expected tag {tag:#04x}, found {_tag_of(element)}")
    return data[element[1] : element[2]]


def _tag_of(element: Element | None) -> str:
    return "nothing" if element is None else f"{element[0]:#04x}"


def count(data: bytes, element: Element | None) -> int:
    """A non-negative INTEGER such as an iteration count. Anything above 2**63 reads as 2**63."""
    value = content(data, element, INTEGER)
    if not value or value[0] & 0x80:
        raise DerError("not a positive integer")
    value = value.lstrip(b"\x00")
    return 2**63 if len(value) > 8 else int.from_bytes(value, "big")


def single(data: bytes, element: Element | None, tag: int = CONTEXT_0) -> Element:
    """The one element inside ``element``, an explicit tag such as [0] EXPLICIT."""
    if element is None or element[0] != tag:
        raise DerError(f"expected tag {tag:#04x}")
    inner = children(data, element[1], element[2], limit=1)
    if not inner:
        raise DerError("empty explicit tag")
    return inner[0]


def oid(dotted: str) -> bytes:
    """The content octets of an OBJECT IDENTIFIER, for comparing with what a file holds."""
    first, second, *rest = (int(part) for part in dotted.split("."))
    out = bytearray([first * 40 + second])
    for number in rest:
        chunk = [number & 0x7F]
        while number := number >> 7:
            chunk.append(0x80 | (number & 0x7F))
        out += bytes(reversed(chunk))
    return bytes(out)
