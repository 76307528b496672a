"""Structures the specific checks do not foresee still get a plain message, never a crash,
and a damaged PEM line is never quoted back (it may run into key material)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from certmgr.core.errors import InputError
from certmgr.core.parse import parse_certificate_input
from tests import certs


def error_of(data: bytes, password: str | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_certificate_input(data, password)
    return caught.value


def test_a_begin_line_missing_a_dash_does_not_echo_the_key_after_it():
    item = certs.issue()
    damaged = item.key_pem().replace(b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN PRIVATE KEY----", 1)
    key_body = b"".join(item.key_pem().splitlines()[1:-1]).decode()

    error = error_of(item.pem + damaged)

    assert error.code == InputError.CORRUPT
    assert error.message == "A '-----BEGIN ...-----' line of the PEM input is malformed."
    assert key_body[:40] not in error.message


def test_a_service_key_whose_domains_is_not_a_list_still_imports():
    item = certs.issue()
    doc = {
        "clientid": "abc",
        "url": "https://t.accounts.ondemand.com",
        "domains": 5,
        "certificate": item.pem.decode(),
    }

    parsed = parse_certificate_input(json.dumps(doc).encode())

    assert parsed.leaf.sha256 == item.fingerprint
    assert parsed.binding.domains == ()


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "http://t.accounts.ondemand.com", "https://" + "x" * 200]
)
def test_a_service_key_with_an_unusable_url_is_refused(url):
    doc = {"clientid": "abc", "url": url, "certificate": certs.issue().pem.decode()}

    error = error_of(json.dumps(doc).encode())

    assert error.code == InputError.CORRUPT
    assert "must be an https URL" in error.message


def test_vcap_services_with_a_certificate_that_is_not_text_is_named_not_crashed():
    item = certs.issue()
    bindings = [
        {"label": "identity", "name": "a", "credentials": {"certificate": item.pem.decode()}},
        {"label": "identity", "name": "b", "credentials": {"certificate": ["not", "text"]}},
    ]

    error = error_of(json.dumps({"identity": bindings}).encode())

    assert error.code == InputError.AMBIGUOUS


def test_a_pkcs7_that_is_not_signed_data_is_corrupt_not_a_crash():
    signed = pkcs7.serialize_certificates([certs.issue().cert], Encoding.DER)
    # Turn the signedData OID (1.2.840.113549.1.7.2) into envelopedData (…7.3).
    enveloped = signed.replace(bytes.fromhex("2a864886f70d010702"), bytes.fromhex("2a864886f70d010703"), 1)

    error = error_of(enveloped)

    assert error.code == InputError.CORRUPT


def test_garbage_base64_inside_a_certificate_block_is_corrupt():
    body = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()
    error = error_of(f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode())

    assert error.code in {InputError.CORRUPT, InputError.TRUNCATED}
