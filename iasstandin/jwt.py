"""RS256 JWTs (RFC 7515/7519) with cryptography's primitives only.

Written here on purpose instead of using PyJWT: the portal uses PyJWT, and the stand-in is the
checker's counterpart, so a misuse of the library must not be able to hide on both sides.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .pki import b64url

ALG = "RS256"
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class InvalidToken(Exception):
    """The token is not acceptable; ``reason`` says why in words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def b64url_decode(text: str) -> bytes:
    # Strict: the lenient decoders silently skip characters outside the alphabet.
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidToken("malformed token")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed token") from exc


def _json_part(data: dict) -> str:
    return b64url(json.dumps(data, separators=(",", ":")).encode("utf-8"))


def encode(claims: dict, key: rsa.RSAPrivateKey, kid: str) -> str:
    header = {"alg": ALG, "kid": kid, "typ": "JWT"}
    signing_input = f"{_json_part(header)}.{_json_part(claims)}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def _load_part(text: str) -> dict:
    try:
        value = json.loads(b64url_decode(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(value, dict):
        raise InvalidToken("malformed token")
    return value


def unverified_header(token: str) -> dict:
    return _load_part(token.split(".", 1)[0])


def decode(token: str, keys: dict[str, rsa.RSAPublicKey]) -> dict:
    """The claims of ``token`` once its RS256 signature verifies with the key its kid names.

    Only the signature is checked here; what the claims must say is the caller's business.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token")
    header, claims = _load_part(parts[0]), _load_part(parts[1])
    if header.get("alg") != ALG:
        # Never let the token choose its algorithm ("none", HS256 with the public key, ...).
        raise InvalidToken(f"unsupported algorithm {header.get('alg')!r}")
    key = keys.get(header.get("kid"))
    if key is None:
        raise InvalidToken(f"unknown key id {header.get('kid')!r}")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    try:
        key.verify(b64url_decode(parts[2]), signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise InvalidToken("invalid signature") from exc
    return claims


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def jwk(public_key: rsa.RSAPublicKey, kid: str) -> dict:
    """The public key as a JWK (RFC 7517/7518 §6.3.1): n and e big-endian, base64url."""
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": ALG,
        "n": _uint(numbers.n),
        "e": _uint(numbers.e),
    }


def bearer_claims(authorization: str, keys, issuer: str) -> dict:
    """The verified claims of an ``Authorization: Bearer`` token from ``issuer``; the caller
    judges its lifetime and purpose. Raises InvalidToken."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("missing bearer token")
    claims = decode(token.strip(), keys)
    if issuer_of(claims) != issuer:
        raise InvalidToken(f"wrong issuer {claims.get('iss')!r}")
    return claims


def issuer_of(claims: dict) -> str | None:
    """The tenant a token names, read as SAP's libraries read it: ``ias_iss`` if present (custom
    domains), else ``iss``; ``https://`` added to an issuer without a scheme."""
    issuer = claims.get("ias_iss") or claims.get("iss")
    if not isinstance(issuer, str):
        return None
    return issuer if issuer.startswith("https://") else "https://" + issuer
