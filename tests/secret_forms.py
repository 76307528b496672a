"""The shapes a secret takes where it could leak: a dump, a raw database file, a log line, a page.

A private key is looked for by its private scalar (RSA's d, EC's private value), which sits
verbatim in every unencrypted encoding of the key, as raw bytes, hex and base64 (both alphabets,
at each of the three byte alignments base64 can start at, so the key is found inside a larger
base64 blob too), and as the lines of its PEM forms that carry the scalar. Nothing public is
looked for: the certificate shows the public numbers, and an encoding's header is the same for
every key. Base64 and hex are matched by short windows taken at three places, so a MIME body's
or a PEM's line breaks cannot hide every window. A secret string (a webhook URL's path, an HMAC secret, a client
secret, a password) is looked for as itself, URL-encoded, JSON-escaped, hex and base64.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

# Any private key in PEM armour, whoever's: "-----BEGIN PRIVATE KEY-----", "...RSA PRIVATE KEY-----".
PEM_ARMOUR = b"PRIVATE KEY-----"

Needles = dict[str, bytes]


def windows(data: bytes, size: int) -> list[bytes]:
    """Start, middle and end windows of ``data`` (all of it when it is that short)."""
    if len(data) <= size:
        return [data]
    middle = (len(data) - size) // 2
    return [data[:size], data[middle : middle + size], data[-size:]]


def base64_forms(raw: bytes, size: int) -> Needles:
    """Windows of ``raw``'s base64 at the three alignments, standard and URL-safe alphabets."""
    found: Needles = {}
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + raw)
        inner = encoded[4:-4]  # the edges depend on the neighbouring bytes and the padding
        for alphabet, text in (
            ("base64", inner),
            ("base64url", inner.replace(b"+", b"-").replace(b"/", b"_")),
        ):
            for n, window in enumerate(windows(text, size)):
                found[f"{alphabet} @{shift} #{n}"] = window
    return found


def raw_forms(name: str, raw: bytes) -> Needles:
    """``raw`` as bytes, hex (both cases) and base64."""
    found = {f"{name} bytes #{n}": w for n, w in enumerate(windows(raw, 24))}
    for n, window in enumerate(windows(raw.hex().encode(), 48)):
        found[f"{name} hex #{n}"] = window
        found[f"{name} HEX #{n}"] = window.upper()
    found.update({f"{name} {form}": w for form, w in base64_forms(raw, 24).items()})
    return found


def private_scalar(key) -> bytes:
    """RSA's d or EC's private value, big-endian: verbatim inside every unencrypted encoding of the
    key (PKCS#8, PKCS#1, SEC1, an unencrypted PKCS#12), and nothing public is part of it."""
    numbers = key.private_numbers()
    if isinstance(key, rsa.RSAPrivateKey):
        value = numbers.d
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        value = numbers.private_value
    else:
        raise TypeError(f"no scalar form for {type(key).__name__}")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def pem_lines(key, scalar: bytes) -> Needles:
    """The PEM body lines (PKCS#8 and traditional) that carry part of the scalar: the others hold
    only the header and public numbers, which the certificate shows too."""
    found = {}
    for name, fmt in (
        ("PKCS#8", serialization.PrivateFormat.PKCS8),
        ("traditional", serialization.PrivateFormat.TraditionalOpenSSL),
    ):
        der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        start = der.index(scalar)
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        for n, line in enumerate(pem.splitlines()[1:-1]):
            if n * 48 < start + len(scalar) and start < (n + 1) * 48:  # a line is 48 bytes of DER
                found[f"{name} PEM line {n}"] = line
    return found


def key_forms(key) -> Needles:
    """Every needle for one private key (RSA or EC)."""
    scalar = private_scalar(key)
    return {**pem_lines(key, scalar), **raw_forms("private scalar", scalar)}


def text_forms(text: str) -> Needles:
    """Every needle for one secret string (at least 16 characters, so its windows stay unique)."""
    raw = text.encode("utf-8")
    found = {
        "text": raw,
        "URL-encoded": quote(text, safe="").encode("ascii"),
        "form-encoded": quote_plus(text).encode("ascii"),
        "JSON-escaped": json.dumps(text)[1:-1].encode("ascii"),
        "JSON-escaped slashes": json.dumps(text)[1:-1].replace("/", "\\/").encode("ascii"),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
    }
    found.update(base64_forms(raw, 12))
    return found


def leaks(haystack: bytes, secrets: dict[str, Needles], *, spared: frozenset[str] = frozenset()) -> list[str]:
    """'<secret>: <form>' for each form of each secret (but those ``spared``) found in ``haystack``."""
    return [
        f"{name}: {form}"
        for name, needles in secrets.items()
        if name not in spared
        for form, needle in needles.items()
        if needle in haystack
    ]
