"""Every form a team may have a certificate in gives the same facts: fingerprint, expiry, subject.

The parser is Django-free and does not read the clock; certificates come from tests/certs.py.
"""

from __future__ import annotations

import base64
import itertools
import json

import pytest
from cryptography.hazmat.primitives import hashes

from certmgr.core.parse import ParsedInput, parse_certificate_input
from tests import certs

LEAF_SUBJECT = "CN=frontend-app (P000042),O=Example Corp,C=DE"
INTER_SUBJECT = "CN=Example Client CA,O=Example Corp,C=DE"
ROOT_SUBJECT = "CN=Example Root CA,O=Example Corp,C=DE"
TENANT = "https://mytenant.accounts.ondemand.com"
CLIENT_ID = "5fd2be25-0e09-4321-8817-4a7b11a2ace2"
DOMAINS = ["accounts.ondemand.com", "accounts.cloud.sap"]


def sha256(item: certs.Issued) -> str:
    return item.cert.fingerprint(hashes.SHA256()).hex()


def assert_leaf(parsed: ParsedInput, item: certs.Issued, subject: str = LEAF_SUBJECT) -> None:
    assert parsed.leaf.sha256 == sha256(item)
    assert parsed.leaf.not_after == certs.EXPIRES
    assert parsed.leaf.subject == subject
    assert parsed.chain[0] == parsed.leaf


def assert_chain(parsed: ParsedInput, *items: certs.Issued) -> None:
    assert [c.sha256 for c in parsed.chain] == [sha256(i) for i in items]
    for child, parent in itertools.pairwise(parsed.chain):
        assert child.issuer == parent.subject


@pytest.fixture
def own() -> certs.Issued:
    """A self-signed client certificate, as IAS 'Generate Certificate' or a team makes one."""
    return certs.issue()


@pytest.fixture
def hierarchy() -> tuple[certs.Issued, certs.Issued, certs.Issued]:
    return certs.ca_hierarchy()


# --- PEM, DER, PKCS#7 ---------------------------------------------------------------------


def test_a_pem_certificate_is_read(own):
    parsed = parse_certificate_input(own.pem)

    assert_leaf(parsed, own)
    assert parsed.format == "pem"
    assert len(parsed.chain) == 1
    assert not parsed.has_private_key
    assert parsed.private_key_der is None
    assert parsed.warnings == ()


@pytest.mark.parametrize(
    "variant",
    [
        lambda pem: pem.replace(b"\n", b"\r\n"),  # CRLF
        lambda pem: b"subject=CN=frontend-app\n" + pem,  # text before it, as openssl x509 -text writes
        lambda pem: pem.replace(b"\n", b"\\n"),  # one line with literal \n
    ],
    ids=["crlf", "text-before", "escaped"],
)
def test_a_lone_pem_certificate_gives_the_same_facts_as_any_other_spelling_of_it(own, variant):
    """A lone PEM certificate is read by cryptography's PEM reader directly (the common file, fast);
    every other spelling goes through the general path: both give equal facts."""
    lone = parse_certificate_input(own.pem)
    other = parse_certificate_input(variant(own.pem))

    assert_leaf(lone, own)
    assert lone == other


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_pem_chain_in_any_order_comes_out_leaf_first(hierarchy, order):
    shuffled = b"".join(hierarchy[i].pem for i in order)

    parsed = parse_certificate_input(shuffled)

    root, inter, leaf = hierarchy
    assert_leaf(parsed, leaf)
    assert_chain(parsed, leaf, inter, root)
    assert [c.subject for c in parsed.chain] == [LEAF_SUBJECT, INTER_SUBJECT, ROOT_SUBJECT]
    assert parsed.warnings == ()


def test_a_missing_intermediate_is_reported(hierarchy):
    root, _, leaf = hierarchy

    parsed = parse_certificate_input(root.pem + leaf.pem)

    assert_leaf(parsed, leaf)
    assert_chain(parsed, leaf)
    assert any(w.startswith("Missing intermediate") and INTER_SUBJECT in w for w in parsed.warnings), (
        parsed.warnings
    )


def test_a_der_certificate_is_read(own):
    """.cer, .crt and .der files are the same bytes: the DER encoding."""
    parsed = parse_certificate_input(own.der)

    assert_leaf(parsed, own)
    assert parsed.format == "der"
    assert not parsed.has_private_key


def test_a_bare_base64_body_is_read_like_der(own):
    """IAS 'Insert' accepts the base64 body without the BEGIN/END lines; so do we."""
    parsed = parse_certificate_input(base64.encodebytes(own.der))

    assert_leaf(parsed, own)
    assert parsed.format == "der"


def test_a_pkcs7_bundle_is_read_leaf_first(hierarchy):
    root, inter, leaf = hierarchy

    parsed = parse_certificate_input(certs.p7b(root, leaf, inter))

    assert_leaf(parsed, leaf)
    assert parsed.format == "pkcs7"
    assert_chain(parsed, leaf, inter, root)
    assert not parsed.has_private_key


# --- PKCS#12 ------------------------------------------------------------------------------


def test_a_pkcs12_with_aes_is_read_with_its_key_and_chain(hierarchy):
    root, inter, leaf = hierarchy

    parsed = parse_certificate_input(certs.p12(leaf, b"Secret-1", (root, inter)), "Secret-1")

    assert_leaf(parsed, leaf)
    assert parsed.format == "pkcs12"
    assert_chain(parsed, leaf, inter, root)
    assert parsed.has_private_key
    assert parsed.private_key_der == leaf.key_der()


def test_a_pkcs12_with_3des_is_read(own):
    parsed = parse_certificate_input(certs.p12_3des(own, b"Secret-1"), "Secret-1")

    assert_leaf(parsed, own)
    assert parsed.format == "pkcs12"
    assert parsed.private_key_der == own.key_der()


def test_a_pkcs12_with_rc2_40_is_read(own):
    parsed = parse_certificate_input(certs.p12_rc2_40(own, "Secret-1"), "Secret-1")

    assert_leaf(parsed, own)
    assert parsed.format == "pkcs12"
    assert parsed.private_key_der == own.key_der()


@pytest.mark.parametrize("password", [None, ""])
def test_a_pkcs12_without_a_password_opens_without_one(own, password):
    parsed = parse_certificate_input(certs.p12(own, None), password)

    assert_leaf(parsed, own)
    assert parsed.format == "pkcs12"
    assert parsed.private_key_der == own.key_der()


@pytest.mark.parametrize("password", [None, ""])
def test_a_pkcs12_with_an_empty_password_opens_without_one(own, password):
    """`openssl pkcs12 -export -passout pass:` writes an empty, not an absent, password."""
    parsed = parse_certificate_input(certs.p12_rc2_40(own, ""), password)

    assert_leaf(parsed, own)
    assert parsed.has_private_key


# --- private keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_kind", "fmt", "label"),
    [
        ("rsa", "pkcs8", "-----BEGIN PRIVATE KEY-----"),
        ("rsa", "traditional", "-----BEGIN RSA PRIVATE KEY-----"),
        ("ec", "pkcs8", "-----BEGIN PRIVATE KEY-----"),
        ("ec", "traditional", "-----BEGIN EC PRIVATE KEY-----"),
    ],
)
def test_a_certificate_with_its_key_is_read_whatever_the_key_format(key_kind, fmt, label):
    item = certs.issue(key_kind=key_kind)
    key_pem = item.key_pem(fmt)
    assert key_pem.startswith(label.encode())

    parsed = parse_certificate_input(item.pem + key_pem)

    assert_leaf(parsed, item)
    assert parsed.format == "pem"
    assert parsed.has_private_key
    assert parsed.private_key_der == item.key_der()


@pytest.mark.parametrize(
    ("key_kind", "fmt", "marker"),
    [
        ("rsa", "pkcs8", "-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        ("rsa", "traditional", "Proc-Type: 4,ENCRYPTED"),
        ("ec", "pkcs8", "-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        ("ec", "traditional", "Proc-Type: 4,ENCRYPTED"),
    ],
)
def test_an_encrypted_key_is_read_with_its_password(key_kind, fmt, marker):
    item = certs.issue(key_kind=key_kind)
    key_pem = item.key_pem(fmt, password=b"Key-Pass-7")
    assert marker.encode() in key_pem

    parsed = parse_certificate_input(item.pem + key_pem, "Key-Pass-7")

    assert_leaf(parsed, item)
    assert parsed.private_key_der == item.key_der()


def test_the_key_may_come_before_the_certificate(own):
    parsed = parse_certificate_input(own.key_pem("traditional") + b"\n" + own.pem)

    assert_leaf(parsed, own)
    assert parsed.private_key_der == own.key_der()


@pytest.mark.parametrize(
    ("key_kind", "algorithm", "size", "curve"),
    [
        ("rsa", "RSA", 2048, ""),
        ("ec", "EC", 256, "secp256r1"),
        ("ec384", "EC", 384, "secp384r1"),
    ],
)
def test_rsa_and_ec_certificates_are_read(key_kind, algorithm, size, curve):
    item = certs.issue(key_kind=key_kind)

    parsed = parse_certificate_input(item.pem)

    assert_leaf(parsed, item)
    assert (parsed.leaf.key_algorithm, parsed.leaf.key_size, parsed.leaf.key_curve) == (
        algorithm,
        size,
        curve,
    )


def test_the_key_picks_the_leaf_among_unrelated_certificates():
    """Without the key two unrelated certificates are ambiguous; the key says which one."""
    other = certs.issue("backend-app (P000043)", key_slot=1, serial=0x2000)
    mine = certs.issue("frontend-app (P000042)", key_slot=2, serial=0x2001)

    parsed = parse_certificate_input(other.pem + mine.pem + mine.key_pem())

    assert_leaf(parsed, mine)
    assert_chain(parsed, mine)
    assert parsed.private_key_der == mine.key_der()
    assert any("backend-app (P000043)" in w and "ignored" in w for w in parsed.warnings)


def test_the_key_picks_the_leaf_even_when_it_comes_last_in_a_chain(hierarchy):
    root, inter, leaf = hierarchy

    parsed = parse_certificate_input(inter.pem + root.pem + leaf.pem + leaf.key_pem())

    assert_chain(parsed, leaf, inter, root)
    assert parsed.private_key_der == leaf.key_der()


# --- what copying does to text -------------------------------------------------------------


def test_crlf_line_ends_are_read(hierarchy):
    root, inter, leaf = hierarchy
    text = (leaf.pem + inter.pem + leaf.key_pem("traditional")).replace(b"\n", b"\r\n")

    parsed = parse_certificate_input(text)

    assert_chain(parsed, leaf, inter)
    assert parsed.private_key_der == leaf.key_der()


def test_surrounding_whitespace_is_ignored(own):
    parsed = parse_certificate_input(b"\n\n  \t" + own.pem + b"\n   \n\t")

    assert_leaf(parsed, own)


def test_one_line_with_literal_backslash_n_is_read(own):
    """As copied out of a JSON document, or made with sed ':a;N;$!ba;s/\\n/\\\\n/g'."""
    one_line = own.pem.replace(b"\n", b"\\n")
    assert b"\n" not in one_line

    parsed = parse_certificate_input(one_line)

    assert_leaf(parsed, own)


def test_a_quoted_json_string_value_is_read(own):
    quoted = json.dumps(own.pem.decode()).encode()
    assert quoted.startswith(b'"-----BEGIN CERTIFICATE-----\\n')

    parsed = parse_certificate_input(quoted)

    assert_leaf(parsed, own)


def test_a_quoted_base64_body_is_read(own):
    quoted = json.dumps(base64.b64encode(own.der).decode()).encode()

    parsed = parse_certificate_input(quoted)

    assert_leaf(parsed, own)


# --- service keys and VCAP_SERVICES ---------------------------------------------------------


def identity_credentials(certificate: bytes, **extra) -> dict:
    return {
        "clientid": CLIENT_ID,
        "credential-type": "X509_PROVIDED",
        "certificate": certificate.decode(),
        "url": TENANT,
        "domain": DOMAINS[0],
        "domains": DOMAINS,
        "app_tid": "2c1a9b4e-7d3f-4e2a-9b8c-1d2e3f4a5b6c",
        **extra,
    }


def test_a_service_key_with_certificate_and_key_is_read(hierarchy):
    """X509_GENERATED: leaf + intermediate in 'certificate', an RSA PRIVATE KEY in 'key'."""
    _, inter, leaf = hierarchy
    creds = identity_credentials(
        leaf.pem + inter.pem,
        key=leaf.key_pem("traditional").decode(),
        certificate_expires_at="2027-01-15T09:00:00Z",
        **{"credential-type": "X509_GENERATED"},
    )

    parsed = parse_certificate_input(json.dumps(creds, indent=2).encode())

    assert_leaf(parsed, leaf)
    assert parsed.format == "service-key"
    assert_chain(parsed, leaf, inter)
    assert parsed.private_key_der == leaf.key_der()
    assert parsed.binding.client_id == CLIENT_ID
    assert parsed.binding.tenant_url == TENANT
    assert parsed.binding.domains == tuple(DOMAINS)
    assert parsed.binding.credential_type == "X509_GENERATED"
    assert parsed.warnings == ()


def test_a_service_key_without_a_key_is_read(own):
    parsed = parse_certificate_input(json.dumps(identity_credentials(own.pem)).encode())

    assert_leaf(parsed, own)
    assert parsed.format == "service-key"
    assert not parsed.has_private_key
    assert parsed.binding.client_id == CLIENT_ID


def test_a_stated_expiry_that_disagrees_with_the_certificate_is_a_warning(own):
    creds = identity_credentials(own.pem, certificate_expires_at="2027-02-15T09:00:00Z")

    parsed = parse_certificate_input(json.dumps(creds).encode())

    assert_leaf(parsed, own)
    assert any("2027-02-15T09:00:00Z" in w for w in parsed.warnings), parsed.warnings


def test_cf_service_key_output_with_its_status_line_is_read(own):
    """cf v8 prints a status line, a blank line, then {"credentials": {...}}."""
    document = certs.service_key(own, clientid=CLIENT_ID, url=TENANT, domains=tuple(DOMAINS))
    status = b"Getting key frontend-key for service instance frontend-ias as admin@example.com...\n\n"

    parsed = parse_certificate_input(status + document + b"\n")

    assert_leaf(parsed, own)
    assert parsed.format == "service-key"
    assert parsed.binding.client_id == CLIENT_ID
    assert parsed.binding.tenant_url == TENANT
    assert parsed.binding.domains == tuple(DOMAINS)
    assert parsed.warnings == ()


def test_a_whole_vcap_services_document_is_read(own, hierarchy):
    """Other services' certificates (the database's sslrootcert) are not the client certificate."""
    database_ca = hierarchy[0]
    vcap = {
        "identity": [
            {
                "label": "identity",
                "plan": "application",
                "name": "cert-portal-ias",
                "instance_name": "cert-portal-ias",
                "tags": ["ias"],
                "credentials": identity_credentials(own.pem),
            }
        ],
        "postgresql-db": [
            {
                "label": "postgresql-db",
                "plan": "standard",
                "name": "cert-portal-db",
                "credentials": {"hostname": "db.example", "sslrootcert": database_ca.pem.decode()},
            }
        ],
        "user-provided": [
            {"label": "user-provided", "name": "cert-portal-smtp", "credentials": {"host": "smtp"}}
        ],
    }

    parsed = parse_certificate_input(json.dumps(vcap).encode())

    assert_leaf(parsed, own)
    assert_chain(parsed, own)
    assert parsed.format == "vcap-services"
    assert parsed.binding.name == "cert-portal-ias"
    assert parsed.binding.client_id == CLIENT_ID
    assert parsed.binding.tenant_url == TENANT
    assert parsed.binding.domains == tuple(DOMAINS)
    assert not parsed.has_private_key
