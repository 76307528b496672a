"""Hostile input gets a named reason at once: no key derivation of 2**31-1 iterations, no
quadratic chain ordering, no RecursionError, no exception of a library, whatever a file claims.

Each case runs in a child process (tests/parse_child.py): a parse stuck in OpenSSL would hold the
GIL, so only a process can be killed. "At once" is not a measured time (speed is the benchmarks'
measure): the input is refused with its named reason before the work it asks for (2**31-1 key
derivations, an 8,192-bit key's validation), or the work is counted (one signature check per
certificate, not one per pair); a parse that does not answer within the harness's hang timeout
(parse_child.run's per_case_seconds, 20 s) is killed and fails its test as a hang.
"""

from __future__ import annotations

import base64
import functools
import json
import random
import subprocess
import tempfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)

from certmgr.core import chain, parse, pkcs12diag
from certmgr.core.der import oid
from certmgr.core.errors import InputError
from certmgr.core.limits import ParseLimits
from certmgr.core.parse import parse_certificate_input
from tests import certs, parse_child
from tests import der_edit as d

PASSWORD = "Tr0ub4dor-Pass"


def refused_at_once(data: bytes, password: str | None = PASSWORD, limits=None) -> parse_child.Outcome:
    [outcome] = parse_child.run([(data, password)], limits=limits)
    assert outcome.kind == "input_error", outcome
    return outcome


def read_at_once(data: bytes, password: str | None = PASSWORD) -> parse_child.Outcome:
    [outcome] = parse_child.run([(data, password)])
    assert outcome.kind == "parsed", outcome
    return outcome


@functools.cache
def bundle() -> bytes:
    """leaf + chain, as cryptography writes it: certificates in a PBES2 part, the key shrouded."""
    root, inter, leaf = certs.ca_hierarchy()
    return certs.p12(leaf, PASSWORD.encode(), (inter, root))


def edited(edit) -> bytes:
    """The bundle after ``edit(auth_safe)``, sealed again with a MAC valid for PASSWORD."""
    pfx, auth_safe = d.authenticated_safe(bundle())
    edit(auth_safe)
    return d.reseal(pfx, auth_safe, PASSWORD.encode())


def key_bag_iterations(auth_safe: d.Node, count: int) -> d.Node:
    key_safe = d.safe_contents(auth_safe[1])
    key_algorithm = key_safe[0][1][0][0]
    d.pbkdf2_iterations(key_algorithm).content = d.integer(count).content
    d.set_data(auth_safe[1], key_safe)
    return key_safe


# --- PKCS#12 key derivations -----------------------------------------------------------------


def test_the_edited_files_carry_a_mac_openssl_accepts():
    """The helper's MAC is the real one: resealed with another MAC count, the file still opens."""
    pfx, auth_safe = d.authenticated_safe(bundle())
    resealed = d.reseal(pfx, auth_safe, PASSWORD.encode(), mac_iterations=4096)

    assert resealed != bundle()
    assert pkcs12.load_pkcs12(resealed, PASSWORD.encode()).key is not None


def test_a_mac_of_2_31_iterations_is_refused_at_once():
    pfx, _ = d.authenticated_safe(bundle())
    pfx[2].children[2] = d.integer(d.INT_MAX)

    outcome = refused_at_once(d.encode(pfx))

    assert outcome.detail == InputError.TOO_COSTLY
    assert "2,147,483,647 key-derivation iterations (the integrity MAC" in outcome.message
    assert "the limit is 2,000,000" in outcome.message


def hostile_key(auth_safe: d.Node) -> None:
    key_bag_iterations(auth_safe, d.INT_MAX)


def hostile_certificates(auth_safe: d.Node) -> None:
    d.pbkdf2_iterations(auth_safe[0][1][0][1][1]).content = d.integer(d.INT_MAX).content


def hostile_key_inside_encrypted_part(auth_safe: d.Node) -> None:
    """The key bag moved into an encrypted part, where only decrypting shows its count."""
    key_safe = key_bag_iterations(auth_safe, d.INT_MAX)
    auth_safe.children[1] = d.encrypted_part(key_safe, PASSWORD.encode())


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (hostile_key, "a private key, PBKDF2: 2,147,483,647"),
        (hostile_certificates, "an encrypted part, PBKDF2: 2,147,483,647"),
        (hostile_key_inside_encrypted_part, "a private key, PBKDF2: 2,147,483,647"),
    ],
    ids=["shrouded-key", "encrypted-certificates", "key-inside-encrypted-part"],
)
def test_pbkdf2_of_2_31_iterations_behind_a_valid_mac_is_refused_at_once(edit, what):
    hostile = edited(edit)
    assert pkcs12diag.mac_matches(hostile, PASSWORD.encode()) is True  # OpenSSL would go on to decrypt

    outcome = refused_at_once(hostile)

    assert outcome.detail == InputError.TOO_COSTLY
    assert what in outcome.message and "the limit is 2,000,000" in outcome.message


def test_a_key_inside_an_encrypted_part_is_read():
    moved = edited(lambda auth_safe: auth_safe.children.__setitem__(
        1, d.encrypted_part(d.safe_contents(auth_safe[1]), PASSWORD.encode())
    ))  # fmt: skip

    parsed = parse_certificate_input(moved, PASSWORD)

    assert parsed.has_private_key and len(parsed.chain) == 3


def test_the_limit_counts_every_derivation_of_a_file_and_allows_exactly_the_limit():
    total = 2048 + 20000 + 20000  # MAC, encrypted certificates, shrouded key, as cryptography writes them

    assert parse_certificate_input(
        bundle(), PASSWORD, limits=ParseLimits(max_kdf_iterations=total)
    ).has_private_key
    with pytest.raises(InputError) as caught:
        parse_certificate_input(bundle(), PASSWORD, limits=ParseLimits(max_kdf_iterations=total - 1))

    assert caught.value.code == InputError.TOO_COSTLY
    assert f"asks for {total:,} key-derivation iterations" in caught.value.message


def test_legacy_encryption_is_decrypted_and_bounded_too():
    own = certs.issue()
    for legacy in (certs.p12_3des(own, PASSWORD.encode()), certs.p12_rc2_40(own, PASSWORD)):
        assert parse_certificate_input(legacy, PASSWORD).has_private_key
    pfx, auth_safe = d.authenticated_safe(certs.p12_rc2_40(own, PASSWORD))
    auth_safe[0][1][0][1][1][1].children[1] = d.integer(1_000_000)  # the RC2-40 part's count

    outcome = refused_at_once(d.reseal(pfx, auth_safe, PASSWORD.encode()))

    assert outcome.detail == InputError.TOO_COSTLY
    assert "legacy encryption (RC2, 1,000,000 iterations" in outcome.message


# --- encrypted PEM keys --------------------------------------------------------------------------


def encrypted_key_pem(item: certs.Issued, edit) -> bytes:
    pem = item.key_pem(password=PASSWORD.encode())
    epki = d.decode(base64.b64decode(b"".join(pem.splitlines()[1:-1])))
    edit(epki[0])
    body = base64.encodebytes(d.encode(epki))
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + body + b"-----END ENCRYPTED PRIVATE KEY-----\n"


def test_an_encrypted_key_asking_for_2_31_pbkdf2_iterations_is_refused_at_once():
    item = certs.issue()

    def hostile(algorithm: d.Node) -> None:
        d.pbkdf2_iterations(algorithm).content = d.integer(d.INT_MAX).content

    outcome = refused_at_once(item.pem + encrypted_key_pem(item, hostile))

    assert outcome.detail == InputError.TOO_COSTLY
    assert "The encrypted private key asks for 2,147,483,647 key-derivation iterations" in outcome.message


def test_an_encrypted_key_whose_key_derivation_cannot_be_bounded_is_refused():
    item = certs.issue()

    def unknown(algorithm: d.Node) -> None:
        algorithm[1][0][0].content = oid("1.2.3.4.5")  # PBES2's keyDerivationFunc: not PBKDF2, not scrypt

    with pytest.raises(InputError) as caught:
        parse_certificate_input(item.pem + encrypted_key_pem(item, unknown), PASSWORD)

    assert caught.value.code == InputError.UNSUPPORTED_KEY
    assert "a key derivation other than PBKDF2 and scrypt" in caught.value.message


def scrypt_key(item: certs.Issued) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp, "k.pem")
        key.write_bytes(item.key_pem())
        done = subprocess.run(
            ["openssl", "pkcs8", "-topk8", "-scrypt", "-in", str(key), "-passout", f"pass:{PASSWORD}"],
            check=True,
            capture_output=True,
        )
    return done.stdout


@pytest.mark.parametrize(
    ("n", "r", "p", "expected"),
    [
        (2**16, 8, 1, "64 MiB of memory"),  # scrypt's memory: 128·r·(N + p) bytes
        (2, 1, 2**30, "2,147,483,648 key-derivation iterations"),  # and its work: N·r·p
    ],
    ids=["memory", "work"],
)
def test_an_scrypt_key_beyond_the_bounds_is_refused_at_once(n, r, p, expected):
    item = certs.issue(key_kind="ec")
    pem = scrypt_key(item)
    assert parse_certificate_input(item.pem + pem, PASSWORD).has_private_key  # as openssl writes it

    epki = d.decode(base64.b64decode(b"".join(pem.splitlines()[1:-1])))
    fields = epki[0][1][0][1]  # scrypt-params: salt, N, r, p
    fields.children[1:4] = [d.integer(n), d.integer(r), d.integer(p)]
    body = base64.encodebytes(d.encode(epki))
    hostile = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + body + b"-----END ENCRYPTED PRIVATE KEY-----\n"

    outcome = refused_at_once(item.pem + hostile)

    assert outcome.detail == InputError.TOO_COSTLY
    assert expected in outcome.message


def test_only_the_first_key_is_read():
    item = certs.issue()
    other = certs.issue("other", key_slot=9, serial=0x9000)

    def hostile(algorithm: d.Node) -> None:
        d.pbkdf2_iterations(algorithm).content = d.integer(d.INT_MAX).content

    text = (
        item.pem + item.key_pem() + encrypted_key_pem(other, hostile) + b"-----BEGIN PRIVATE KEY-----\nAAAA\n"
    )
    text += b"-----END PRIVATE KEY-----\n"

    parsed = parse_certificate_input(text, PASSWORD)

    assert parsed.private_key_der == item.key_der()
    assert "The input holds 3 private keys; only the first was read." in parsed.warnings


# --- large RSA keys: validated on loading, primality tests included ------------------------------


def rsa_key_of(bits: int) -> rsa.RSAPrivateKey:
    """An RSA key of ``bits`` whose primes are odd numbers, not primes: made at once, and a test
    that let the parser validate it would not wait for minutes either."""
    rng = random.Random(bits)
    p, q = (rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1 for _ in range(2))  # n: exactly bits
    d = rng.getrandbits(bits - 8) | 1
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(65537, p * q)
    )
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def test_an_rsa_key_over_4096_bits_is_refused_before_its_validation():
    item = certs.issue()
    big = rsa_key_of(8192).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())

    outcome = refused_at_once(item.pem + big, None)

    assert outcome.detail == InputError.TOO_COSTLY
    assert "is an RSA key of 8192 bits; the portal reads RSA keys of up to 4096 bits" in outcome.message


def test_an_rsa_key_with_a_prime_larger_than_its_modulus_is_refused_before_its_validation():
    """A 20,000-bit prime would take minutes of primality tests; p·q = n bounds both primes."""
    item = certs.issue()
    key = d.decode(item.key.private_bytes(Encoding.DER, PrivateFormat.TraditionalOpenSSL, NoEncryption()))
    key.children[4] = d.integer(random.Random(1).getrandbits(20_000) | 1)  # RSAPrivateKey.prime1
    pem = (
        b"-----BEGIN RSA PRIVATE KEY-----\n"
        + base64.encodebytes(d.encode(key))
        + b"-----END RSA PRIVATE KEY-----\n"
    )

    outcome = refused_at_once(item.pem + pem, None)

    assert outcome.detail == InputError.CORRUPT
    assert "is not a valid RSA key: its primes are not its modulus's" in outcome.message


def test_an_rsa_key_over_4096_bits_inside_a_pkcs12_file_is_refused_before_opening():
    item = certs.issue()
    p12 = pkcs12.serialize_key_and_certificates(
        b"big", rsa_key_of(8192), None, [item.cert], BestAvailableEncryption(PASSWORD.encode())
    )

    outcome = refused_at_once(p12)

    assert outcome.detail == InputError.TOO_COSTLY
    assert "The PKCS#12 file's private key is an RSA key of 8192 bits" in outcome.message


# --- nesting, versions, passwords ----------------------------------------------------------------


@pytest.mark.parametrize(
    "document",
    [
        '{"credentials": ' * 1000 + "{}" + "}" * 1000,
        '{"identity": [{"label": "identity", "credentials": ' + "[" * 1000 + "]" * 1000 + "}]}",
    ],
    ids=["service-key", "vcap-services"],
)
def test_json_nested_1000_deep_is_refused_at_once(document):
    assert len(document) < 20_000

    outcome = refused_at_once(document.encode(), None)

    assert outcome.detail == InputError.TOO_COMPLEX
    assert "nested more than 32 levels deep" in outcome.message


def version_127(item: certs.Issued) -> d.Node:
    cert = d.decode(item.der)
    cert[0][0].children[0] = d.integer(127)  # tbsCertificate.version [0] EXPLICIT INTEGER
    return cert


@pytest.mark.parametrize("form", ["der", "pem", "pkcs7"])
def test_a_certificate_of_version_127_is_named(form):
    item = certs.issue()
    cert = version_127(item)
    if form == "der":
        data = d.encode(cert)
    elif form == "pem":
        data = (
            b"-----BEGIN CERTIFICATE-----\n"
            + base64.encodebytes(d.encode(cert))
            + b"-----END CERTIFICATE-----\n"
        )
    else:
        p7 = d.decode(certs.p7b(item))
        p7[1][0].children[3].children[0] = cert  # SignedData.certificates [0]
        data = d.encode(p7)

    outcome = refused_at_once(data, None)

    assert outcome.detail == InputError.CORRUPT
    assert "has version field 127" in outcome.message


@pytest.mark.parametrize("password", ["Sec\x00ret", "\ud800"], ids=["nul", "lone-surrogate"])
def test_a_password_no_file_can_have_is_named(password):
    with pytest.raises(InputError) as caught:
        parse_certificate_input(bundle(), password)

    assert caught.value.code == InputError.WRONG_PASSWORD
    assert "NUL" in caught.value.message or "not valid text" in caught.value.message


def test_a_nul_in_a_pkcs12_password_is_refused_at_once():
    outcome = refused_at_once(bundle(), "Sec\x00ret")

    assert outcome.detail == InputError.WRONG_PASSWORD
    assert "NUL character" in outcome.message


def rust_panic() -> type[BaseException]:
    try:
        pkcs12.load_pkcs12(bundle(), b"nul\x00inside")
    except BaseException as exc:  # noqa: BLE001 (the panic type cannot be imported, only caught)
        return type(exc)
    raise AssertionError("cryptography accepted a NUL in a password")


@pytest.mark.parametrize(
    "make",
    [
        lambda: rust_panic()("a panic in Rust"),
        lambda: RecursionError("maximum recursion depth exceeded"),
        lambda: x509.InvalidVersion("bad version", 127),
        lambda: UnsupportedAlgorithm("no such algorithm"),
        lambda: OverflowError("int too large"),
        lambda: TypeError("unexpected type"),
    ],
    ids=["panic", "recursion", "invalid-version", "unsupported-algorithm", "overflow", "type"],
)
def test_whatever_a_library_raises_becomes_the_parsers_own_error(monkeypatch, make):
    def raising(*args, **kwargs):
        raise make()

    monkeypatch.setattr(parse.pkcs12, "load_pkcs12", raising)

    with pytest.raises(InputError) as caught:
        parse_certificate_input(bundle(), PASSWORD)

    assert caught.value.code in (InputError.CORRUPT, InputError.TOO_COMPLEX)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_is_not_taken_for_bad_input(monkeypatch, interrupt):
    def raising(*args, **kwargs):
        raise interrupt()

    monkeypatch.setattr(parse.pkcs12, "load_pkcs12", raising)

    with pytest.raises(interrupt):
        parse_certificate_input(bundle(), PASSWORD)


# --- many certificates -------------------------------------------------------------------------


@functools.cache
def _one_subject_pool() -> tuple[certs.Issued, ...]:
    return tuple(
        certs.issue("same-name", key_kind="ec", key_slot=1000 + i, serial=i + 1, eku=(), org="O")
        for i in range(2500)
    )


def one_subject(count: int) -> tuple[certs.Issued, ...]:
    """Self-signed certificates that all claim one name, each with a key of its own."""
    return _one_subject_pool()[:count]


def test_2500_self_signed_certificates_of_one_subject_are_refused_at_once():
    p7b = certs.p7b(*one_subject(2500))
    pem = b"".join(item.pem for item in one_subject(2500))
    assert len(p7b) < 1024 * 1024  # within the default upload limit; the PEM is 1.2 MiB

    for data, max_bytes in ((p7b, None), (pem, 2 * 1024 * 1024)):
        [outcome] = parse_child.run([(data, None)], max_bytes=max_bytes)

        assert outcome.kind == "input_error", outcome
        assert outcome.detail == InputError.TOO_MANY
        assert "The input holds 2500 certificates; the limit is 100." in outcome.message


def test_ordering_2500_certificates_of_one_subject_checks_each_once():
    """Were the limit raised: one signature check each, not one per pair (the old way: minutes)."""
    items = one_subject(2500)
    checks = []
    real = chain.issued

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain, "issued", lambda child, issuer: checks.append(1) or real(child, issuer))
        with pytest.raises(InputError) as caught:
            chain.order_chain([item.cert for item in items])

    assert caught.value.code == InputError.AMBIGUOUS
    assert "2500 unrelated certificates ('CN=same-name" in caught.value.message
    assert "and 2495 more" in caught.value.message
    assert len(checks) == 2500


def test_100_certificates_of_one_subject_are_read_at_once_with_the_key_that_picks_one():
    items = one_subject(100)
    chosen = items[57]

    outcome = read_at_once(b"".join(item.pem for item in items) + chosen.key_pem(), None)

    assert outcome.message == "1 certificates"
    parsed = parse_certificate_input(b"".join(item.pem for item in items) + chosen.key_pem())
    assert parsed.leaf.sha256 == chosen.fingerprint
    assert any("ignored" in w and "and 94 more" in w for w in parsed.warnings)


def test_100_certificates_naming_one_issuer_that_signed_none_are_refused_at_once():
    """All are named 'same-name' and issued by 'same-name', signed by a key none of them holds:
    each could be the issuer of each, and no signature says so."""
    absent = certs.issue("same-name", key_kind="ec", key_slot=999, serial=999)
    items = [
        certs.issue("same-name", key_kind="ec", key_slot=1000 + i, serial=5000 + i, issuer=absent)
        for i in range(100)
    ]

    outcome = parse_child.run([(b"".join(item.pem for item in items), None)])[0]

    assert outcome.kind == "input_error", outcome
    assert outcome.detail in (InputError.TOO_COMPLEX, InputError.AMBIGUOUS)


def test_101_certificates_or_keys_are_refused():
    items = one_subject(101)
    for text, noun in (
        (b"".join(item.pem for item in items), "101 certificates"),
        (items[0].pem + b"".join(item.key_pem() for item in items), "101 private keys"),
    ):
        with pytest.raises(InputError) as caught:
            parse_certificate_input(text)
        assert caught.value.code == InputError.TOO_MANY
        assert f"The input holds {noun}; the limit is 100." in caught.value.message


def test_a_pkcs12_with_more_certificates_than_the_limit_is_refused_before_opening():
    items = one_subject(5)
    p12 = certs.p12(items[0], PASSWORD.encode(), items[1:])

    with pytest.raises(InputError) as caught:
        parse_certificate_input(p12, PASSWORD, limits=ParseLimits(max_certificates=4))

    assert caught.value.code == InputError.TOO_MANY
    assert "This PKCS#12 file holds more than 4 certificates" in caught.value.message


def test_a_service_key_with_a_json_of_many_certificates_counts_them_too():
    pem = b"".join(item.pem for item in one_subject(101)).decode()

    with pytest.raises(InputError) as caught:
        parse_certificate_input(json.dumps({"clientid": "x", "certificate": pem}).encode())

    assert caught.value.code == InputError.TOO_MANY
