"""Each bad input gets its own InputError code and a message a person can act on.

Messages are shown to users and may be logged: they never carry a password or key material.
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from certmgr.core import der
from certmgr.core.errors import InputError
from certmgr.core.parse import parse_certificate_input
from tests import certs

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "Tr0ub4dor-Pass"


def error_of(data: bytes, password: str | None = None, **kwargs) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_certificate_input(data, password, **kwargs)
    return caught.value


def assert_reveals_nothing(error: InputError, *secrets: str) -> None:
    for text in (error.message, str(error)):
        for secret in (PASSWORD, *secrets):
            assert secret not in text
        assert "-----BEGIN" not in text
        # Key material, certificates and passwords-as-base64 all show as long base64 runs.
        assert not re.search(r"[A-Za-z0-9+/=]{24,}", text), text


@pytest.fixture
def own() -> certs.Issued:
    return certs.issue()


def tiny_png() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


# --- passwords ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda item: certs.p12(item, PASSWORD.encode()),
        lambda item: certs.p12_3des(item, PASSWORD.encode()),
        lambda item: certs.p12_rc2_40(item, PASSWORD),
    ],
    ids=["aes", "3des", "rc2-40"],
)
def test_a_wrong_pkcs12_password_is_named(own, make):
    error = error_of(make(own), "not-the-password")

    assert error.code == InputError.WRONG_PASSWORD
    assert "Wrong password" in error.message
    assert_reveals_nothing(error, "not-the-password")


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
def test_a_wrong_key_password_is_named(own, fmt):
    error = error_of(own.pem + own.key_pem(fmt, password=PASSWORD.encode()), "not-the-password")

    assert error.code == InputError.WRONG_PASSWORD
    assert "Wrong password for the encrypted private key" in error.message
    assert_reveals_nothing(error, "not-the-password")


@pytest.mark.parametrize("password", [None, ""])
def test_a_missing_pkcs12_password_is_asked_for(own, password):
    error = error_of(certs.p12(own, PASSWORD.encode()), password)

    assert error.code == InputError.PASSWORD_REQUIRED
    assert "enter the password" in error.message


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
def test_a_missing_key_password_is_asked_for(own, fmt):
    error = error_of(own.pem + own.key_pem(fmt, password=PASSWORD.encode()))

    assert error.code == InputError.PASSWORD_REQUIRED
    assert "encrypted" in error.message and "password" in error.message


_WITHOUT_LEGACY_PROVIDER = """
import json, sys
from certmgr.core.errors import InputError
from certmgr.core.parse import parse_certificate_input
data = open(sys.argv[1], "rb").read()
try:
    parse_certificate_input(data, sys.argv[2])
    print(json.dumps({"code": "opened", "message": ""}))
except InputError as error:
    print(json.dumps({"code": error.code, "message": error.message}))
"""


def parse_without_legacy_provider(tmp_path, data: bytes, password: str) -> dict:
    """cryptography reads CRYPTOGRAPHY_OPENSSL_NO_LEGACY once, when it loads OpenSSL."""
    path = tmp_path / "old.p12"
    path.write_bytes(data)
    env = {**os.environ, "CRYPTOGRAPHY_OPENSSL_NO_LEGACY": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_LEGACY_PROVIDER, str(path), password],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_legacy_pkcs12_with_the_right_password_says_legacy_not_wrong_password(tmp_path, own):
    result = parse_without_legacy_provider(tmp_path, certs.p12_rc2_40(own, PASSWORD), PASSWORD)

    assert result["code"] == InputError.LEGACY_PKCS12
    assert "password is right" in result["message"]
    assert "RC2-40" in result["message"]
    assert "-legacy" in result["message"]
    assert PASSWORD not in result["message"]


def test_a_legacy_pkcs12_with_a_wrong_password_says_wrong_password(tmp_path, own):
    result = parse_without_legacy_provider(tmp_path, certs.p12_rc2_40(own, PASSWORD), "guess")

    assert result["code"] == InputError.WRONG_PASSWORD
    assert "Wrong password" in result["message"]


# --- damaged input ------------------------------------------------------------------------


def test_a_pem_without_its_end_line_is_truncated(own):
    cut = own.pem[: own.pem.index(b"-----END")]

    error = error_of(cut)

    assert error.code == InputError.TRUNCATED
    assert "'-----END CERTIFICATE-----' line is missing" in error.message


def test_a_chain_whose_first_pem_lacks_its_end_line_is_truncated():
    root, inter, leaf = certs.ca_hierarchy()
    cut = leaf.pem[: leaf.pem.index(b"-----END")]

    error = error_of(cut + inter.pem + root.pem)

    assert error.code == InputError.TRUNCATED
    assert "CERTIFICATE" in error.message and "truncated" in error.message


def test_a_pem_body_with_lines_missing_is_truncated(own):
    lines = own.pem.splitlines(keepends=True)
    shortened = b"".join(lines[:-6] + lines[-1:])

    error = error_of(shortened)

    assert error.code == InputError.TRUNCATED
    assert "PEM certificate is truncated" in error.message


@pytest.mark.parametrize(
    "make",
    [
        lambda item: item.der[:-100],
        lambda item: item.der[:3],
        lambda item: certs.p12(item, PASSWORD.encode())[:-300],
    ],
    ids=["der", "der-header", "pkcs12"],
)
def test_a_cut_off_binary_file_is_truncated(own, make):
    error = error_of(make(own), PASSWORD)

    assert error.code == InputError.TRUNCATED
    assert "truncated" in error.message


def test_a_pem_with_bad_base64_is_corrupt(own):
    lines = own.pem.splitlines(keepends=True)
    lines[3] = b"*" + lines[3][1:]

    error = error_of(b"".join(lines))

    assert error.code == InputError.CORRUPT
    assert "not valid base64" in error.message


def test_a_der_file_with_a_broken_structure_is_corrupt(own):
    broken = own.der[:4] + b"\x31" + own.der[5:]  # tbsCertificate is no longer a SEQUENCE

    error = error_of(broken)

    assert error.code == InputError.CORRUPT
    assert "cannot be decoded as X.509" in error.message


def test_a_pem_key_with_a_broken_body_is_corrupt(own):
    key = own.key_pem("traditional").replace(b"MII", b"AAA", 1)

    error = error_of(own.pem + key)

    assert error.code == InputError.CORRUPT
    assert "not a readable private key" in error.message
    assert_reveals_nothing(error)


# --- keys and certificates that do not belong together ----------------------------------


def test_a_key_that_does_not_match_the_certificate_is_refused(own):
    stranger = certs.issue("someone-else", key_slot=7, serial=0x7000)

    error = error_of(own.pem + stranger.key_pem())

    assert error.code == InputError.KEY_MISMATCH
    assert "does not match" in error.message
    assert_reveals_nothing(error)


@pytest.mark.parametrize(
    "make",
    [
        lambda item: item.key_pem("pkcs8"),
        lambda item: item.key_pem("traditional"),
        lambda item: item.key_der(),
        lambda item: certs.issue(key_kind="ec").key_pem("traditional"),
    ],
    ids=["pem-pkcs8", "pem-pkcs1", "der-pkcs8", "pem-sec1"],
)
def test_a_key_without_a_certificate_asks_for_the_certificate(own, make):
    error = error_of(make(own))

    assert error.code == InputError.KEY_WITHOUT_CERTIFICATE
    assert "no certificate" in error.message
    assert_reveals_nothing(error)


def test_two_unrelated_leaf_certificates_are_ambiguous():
    first = certs.issue("frontend-app (P000042)", key_slot=1, serial=0x2000)
    second = certs.issue("backend-app (P000043)", key_slot=2, serial=0x2001)

    error = error_of(first.pem + second.pem)

    assert error.code == InputError.AMBIGUOUS
    assert "2 unrelated certificates" in error.message
    assert "backend-app (P000043)" in error.message


# --- size and emptiness ---------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \r\n\t  \n"], ids=["empty", "whitespace"])
def test_empty_input_is_named(data):
    error = error_of(data)

    assert error.code == InputError.EMPTY
    assert "empty" in error.message


def test_input_over_one_mebibyte_is_too_large_by_default(own):
    padded = own.pem + b" " * (1024 * 1024 - len(own.pem))
    assert parse_certificate_input(padded).leaf.sha256 == own.fingerprint

    error = error_of(padded + b" ")

    assert error.code == InputError.TOO_LARGE
    assert "the limit is 1.0 MiB" in error.message


def test_a_custom_size_limit_is_applied(own):
    error = error_of(own.pem, max_bytes=512)

    assert error.code == InputError.TOO_LARGE
    assert "the limit is 512 bytes" in error.message


# --- not a certificate at all ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b"Hello team, the certificate is attached.",
        b"0F:3A:9C:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11",  # its fingerprint instead
        b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQc=\n-----END PUBLIC KEY-----\n",
    ],
    ids=["prose", "fingerprint", "public-key"],
)
def test_plain_text_is_not_a_certificate(text):
    error = error_of(text)

    assert error.code == InputError.NOT_A_CERTIFICATE
    assert "no certificate" in error.message or "not a certificate" in error.message


def test_random_binary_is_not_a_certificate():
    for seed in range(100):
        blob = random.Random(seed).randbytes(256)
        if blob[0] == der.SEQUENCE:
            continue  # could be a DER file cut short: 'truncated' is a fair reading
        error = error_of(blob)
        assert error.code == InputError.NOT_A_CERTIFICATE, (seed, error.message)


@pytest.mark.parametrize("size", [67, 33, 300], ids=["whole", "header-only", "padded"])
def test_a_png_is_not_a_certificate(size):
    png = tiny_png().ljust(size, b"\x00")[:size]

    error = error_of(png)

    assert error.code == InputError.NOT_A_CERTIFICATE
    assert "not PEM text, DER, PKCS#7 or PKCS#12" in error.message


def test_json_that_is_not_a_service_key_is_not_a_certificate():
    error = error_of(json.dumps({"name": "frontend", "instances": 2}).encode())

    assert error.code == InputError.NOT_A_CERTIFICATE
    assert "not a service key" in error.message


def test_a_secret_service_key_has_no_certificate():
    key = {
        "clientid": "5fd2be25-0e09-4321-8817-4a7b11a2ace2",
        "clientsecret": "Gx7-very-secret-client-secret-value",
        "url": "https://mytenant.accounts.ondemand.com",
        "credential-type": "SECRET",
    }

    error = error_of(json.dumps({"credentials": key}).encode())

    assert error.code == InputError.NO_CERTIFICATE_IN_BINDING
    assert "credential-type SECRET" in error.message
    assert_reveals_nothing(error, key["clientsecret"])


def test_invalid_json_is_corrupt():
    error = error_of(b'{"clientid": "abc", "certificate": "-----BEGIN')

    assert error.code == InputError.CORRUPT
    assert "not valid JSON" in error.message
    assert "line 1" in error.message


def test_vcap_services_with_two_different_identity_certificates_is_ambiguous():
    def binding(name: str, item: certs.Issued) -> dict:
        credentials = {"clientid": name, "certificate": item.pem.decode()}
        return {"label": "identity", "name": name, "credentials": credentials}

    first = certs.issue("frontend-app (P000042)", key_slot=1, serial=0x2000)
    second = certs.issue("backend-app (P000043)", key_slot=2, serial=0x2001)
    vcap = {"identity": [binding("frontend-ias", first), binding("backend-ias", second)]}

    error = error_of(json.dumps(vcap).encode())

    assert error.code == InputError.AMBIGUOUS
    assert "'frontend-ias'" in error.message and "'backend-ias'" in error.message


# --- nothing secret in any message --------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "password"),
    [
        (lambda item: certs.p12(item, PASSWORD.encode()), "Wrong-" + PASSWORD),
        (lambda item: certs.p12(item, ("Wrong-" + PASSWORD).encode()), PASSWORD),
        (lambda item: item.pem + item.key_pem("pkcs8", b"Wrong-" + PASSWORD.encode()), PASSWORD),
        (lambda item: item.pem + item.key_pem("traditional", b"x" + PASSWORD.encode()), PASSWORD),
        (lambda item: item.key_pem("traditional"), PASSWORD),
        (lambda item: item.key_der(), PASSWORD),
        (lambda item: item.key_pem()[:-40], PASSWORD),
        (lambda item: item.pem + certs.issue(key_kind="ec").key_pem(), PASSWORD),
    ],
    ids=[
        "p12-wrong",
        "p12-wrong-2",
        "pkcs8-wrong",
        "traditional-wrong",
        "key-only",
        "der-key-only",
        "key-truncated",
        "mismatch",
    ],
)
def test_no_error_message_reveals_the_password_or_key_material(own, make, password):
    data = make(own)

    error = error_of(data, password)

    assert_reveals_nothing(error, password, "Wrong-" + PASSWORD)
    if error.code not in (InputError.TRUNCATED, InputError.CORRUPT):  # these name the PEM block
        assert "PRIVATE KEY" not in error.message


def test_it_names_a_key_type_ias_does_not_use():
    item = certs.issue("ed25519-client", key_kind="ed25519")

    with pytest.raises(InputError) as caught:
        parse_certificate_input(item.pem + item.key_pem())

    assert caught.value.code == InputError.UNSUPPORTED_KEY
    assert "IAS client certificates use RSA or EC keys" in caught.value.message
