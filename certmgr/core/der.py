"""Just enough DER reading to tell formats apart and to diagnose PKCS#12 files.

cryptography parses the real thing; this module only looks at the outer structure so that
a truncated file, a PKCS#7 bundle and a PKCS#12 archive each get their own message.
"""

from __future__ import annotations

SEQUENCE = 0x30
INTEGER = 0x02
OID = 0x06


class DerError(ValueError):
    pass


class Truncated(DerError):
    pass


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, int, int]:
    """Return (tag, start of content, end of content) of the element at ``offset``."""
    if offset + 2 > len(data):
        raise Truncated("element header cut off")
    tag = data[offset]
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


def children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    pos = start
    while pos < end:
        tag, cstart, cend = read_tlv(data, pos)
        out.append((tag, cstart, cend))
        pos = cend
    return out


def outer(data: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """Tag of the outermost element and its direct children (for SEQUENCEs)."""
    tag, start, end = read_tlv(data)
    if tag != SEQUENCE:
        return tag, []
    return tag, children(data, start, end)


def integer(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big", signed=True)
