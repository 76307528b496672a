"""X509_PROVIDED hands IAS the certificate and nothing else: a private key stored with it never
shows up in binding parameters, in any form, with or without the chain.
"""

from __future__ import annotations

import base64
import json
import re

import pytest
from cryptography.hazmat.primitives import serialization

from certmgr.bindings import parameters as bindings
from certmgr.core.binding import FORMATS, Target
from tests import certs

pytestmark = pytest.mark.django_db

CHUNK = 40
TARGET = Target(instance="ias-prod", app="frontend", key_name="frontend-key")


def windows(text: str, size: int = CHUNK) -> set[str]:
    return {text[i : i + size] for i in range(len(text) - size + 1)}


class KeyTraces:
    """Every way the private key could leak: its PEM label, any 40 characters of its base64, its DER hex.

    A private key holds its public half too, and the certificate rightly carries that: stretches the
    certificates themselves show are no evidence and are left out.
    """

    def __init__(self, item: certs.Issued, key_pem: bytes, shown: tuple[certs.Issued, ...]):
        body = "".join(line for line in key_pem.decode("ascii").splitlines() if not line.startswith("-----"))
        ders = [
            item.key_der(),
            item.key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
        ]
        public_b64 = set().union(*(windows(base64.b64encode(c.der).decode()) for c in shown))
        public_hex = set().union(*(windows(c.der.hex()) | windows(c.der.hex().upper()) for c in shown))
        b64 = windows(body) | set().union(*(windows(base64.b64encode(d).decode()) for d in ders))
        hexes = set().union(*(windows(d.hex()) | windows(d.hex().upper()) for d in ders))
        self.base64, self.hex = b64 - public_b64, hexes - public_hex
        assert len(self.base64) > len(b64) // 2 and len(self.hex) > len(hexes) // 2  # still most of it

    def found_in(self, text: str) -> list[str]:
        """What of the key ``text`` shows, also with its line breaks, \\n escapes and colons removed."""
        compact = re.sub(r"\\n|\\r|\s", "", text)
        hex_compact = compact.replace(":", "")
        found = ["PRIVATE KEY"] if "PRIVATE KEY" in text else []
        found += [w for w in self.base64 if w in text or w in compact]
        found += [w for w in self.hex if w in text or w in hex_compact]
        return found


@pytest.fixture(params=["rsa", "ec"])
def issued(request):
    """(leaf, intermediate, root)."""
    root, inter, ca_leaf = certs.ca_hierarchy()
    if request.param == "rsa":
        return ca_leaf, inter, root
    return certs.issue(key_kind="ec", issuer=inter, key_slot=104, serial=4), inter, root


@pytest.fixture(params=["pkcs8", "traditional"])
def key_format(request):
    return request.param


@pytest.fixture(params=[False, True], ids=["leaf+key", "leaf+key+chain"])
def stored(request, issued, key_format, store):
    """A certificate stored with its private key, and the traces that key would leave."""
    leaf, inter, root = issued
    key_pem = leaf.key_pem(key_format)
    data = leaf.pem + key_pem + (inter.pem + root.pem if request.param else b"")
    cert = store(data, store_keys=True)
    assert cert.has_private_key
    assert bool(cert.chain_pem) is request.param
    return cert, KeyTraces(leaf, key_pem, issued)


def test_the_traces_find_a_key_where_there_is_one(issued, key_format):
    """The detector itself: a key pasted into parameters, JSON-escaped or as hex, is caught."""
    leaf = issued[0]
    key_pem = leaf.key_pem(key_format)
    traces = KeyTraces(leaf, key_pem, issued)
    body = "".join(key_pem.decode("ascii").splitlines()[1:-1])
    narrow = "\n".join(body[i : i + 30] for i in range(0, len(body), 30))  # no 40 in one line

    assert "PRIVATE KEY" in traces.found_in(json.dumps({"key": key_pem.decode("ascii")}))
    assert body[:CHUNK] in traces.found_in(json.dumps({"key": narrow}))
    assert body[:CHUNK] in traces.found_in(narrow.replace("\n", "\r\n  "))
    assert traces.found_in(leaf.key_der().hex(":"))
    numbers = leaf.key.private_numbers()
    secret = numbers.d if hasattr(numbers, "d") else numbers.private_value
    assert traces.found_in(secret.to_bytes((secret.bit_length() + 7) // 8, "big").hex()[:CHUNK])
    assert traces.found_in(leaf.pem.decode("ascii")) == []


@pytest.mark.parametrize("chain", [False, True], ids=["render-leaf", "render-chain"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_no_rendered_form_carries_the_private_key(stored, fmt, chain):
    cert, traces = stored

    text = bindings.rendered(cert, fmt, chain=chain, target=TARGET)

    assert "-----BEGIN CERTIFICATE-----" in text
    assert traces.found_in(text) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_rendered_form_with_the_default_target_carries_the_private_key(stored, fmt):
    cert, traces = stored

    assert traces.found_in(bindings.rendered(cert, fmt)) == []


@pytest.mark.parametrize("chain", [False, True], ids=["leaf", "chain"])
def test_the_parameters_are_the_credential_type_and_the_certificate_only(stored, chain):
    cert, traces = stored

    params = bindings.parameters(cert, chain=chain)

    assert set(params) == {"credential-type", "certificate"}
    assert params["credential-type"] == "X509_PROVIDED"
    assert traces.found_in(json.dumps(params)) == []
    assert traces.found_in(json.dumps(params, indent=2)) == []
    assert params["certificate"].count("-----BEGIN CERTIFICATE-----") == (
        3 if cert.chain_pem and chain else 1
    )
