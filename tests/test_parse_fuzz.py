"""Mutation fuzzing of the parser over every accepted format: whatever the bytes and the password,
the parser returns a result or raises InputError, never anything else, and no case takes long.

Seeded (FUZZ_SEED to explore others), a few thousand cases, run in one child process that the
test kills if a case hangs (tests/parse_child.py). A failing case is written to the test's tmp
directory so it can be replayed with parse_certificate_input.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import random
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests import certs, parse_child
from tests.mutate import Mutator

SEED = int(os.environ.get("FUZZ_SEED", "20260115"))
PASSWORD = "Fuzz-Pass-1"
HANG_SECONDS = 20.0  # a case not answered by then is killed and reported as a hang
ODD_PASSWORDS = ["nul\x00inside", "\ud800", "p" * 3000, "pässwörd", "🔑", "wrong-password"]


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    password: str | None
    kind: str  # which mutations fit: der, pkcs12, pem, json, text
    cases: int


def seeds() -> list[Seed]:
    root, inter, _ = certs.ca_hierarchy()
    ec = certs.issue("fuzz-app (P000042)", key_kind="ec", key_slot=31, serial=0xF00, issuer=inter)
    rsa = certs.issue("fuzz-rsa (P000042)", key_kind="rsa1024", key_slot=32, serial=0xF01)
    chain = ec.pem + inter.pem + root.pem
    p7b = certs.p7b(ec, inter, root)
    one_line = (ec.pem + ec.key_pem()).decode().replace("\n", "\\n").encode()
    service_key = certs.service_key(
        ec, clientid="fuzz-client", url="https://t.accounts.ondemand.com", with_key=True
    )
    vcap = {
        "identity": [
            {"label": "identity", "name": "fuzz", "credentials": json.loads(service_key)["credentials"]}
        ]
    }
    return [
        Seed("pem-certificate", ec.pem, None, "pem", 300),
        Seed("pem-chain", chain, None, "pem", 400),
        Seed("der", ec.der, None, "der", 400),
        Seed("pkcs7-der", p7b, None, "der", 300),
        Seed("pkcs7-pem", _armour("PKCS7", p7b), None, "pem", 150),
        Seed("pkcs12-aes", _p12_aes(ec, (inter, root)), PASSWORD, "pkcs12", 600),
        Seed("pkcs12-aes-20000", certs.p12(ec, PASSWORD.encode(), (inter,)), PASSWORD, "pkcs12", 80),
        Seed("pkcs12-3des", certs.p12_3des(ec, PASSWORD.encode()), PASSWORD, "pkcs12", 300),
        Seed("pkcs12-rc2-40", certs.p12_rc2_40(ec, PASSWORD), PASSWORD, "pkcs12", 300),
        Seed("pkcs12-no-password", certs.p12(ec, None), None, "pkcs12", 150),
        Seed("encrypted-pkcs8", ec.pem + ec.key_pem(password=PASSWORD.encode()), PASSWORD, "pem", 300),
        Seed(
            "encrypted-traditional",
            ec.pem + ec.key_pem("traditional", PASSWORD.encode()),
            PASSWORD,
            "pem",
            150,
        ),
        Seed("encrypted-scrypt", ec.pem + _scrypt_key(ec), PASSWORD, "pem", 50),
        Seed("pkcs1", rsa.pem + rsa.key_pem("traditional"), None, "pem", 80),
        Seed("pkcs8", ec.pem + ec.key_pem(), None, "pem", 250),
        Seed("sec1", ec.pem + ec.key_pem("traditional"), None, "pem", 250),
        Seed("der-pkcs8-key", ec.key_der(), None, "der", 100),
        Seed("service-key", service_key, None, "json", 350),
        Seed("vcap-services", json.dumps(vcap).encode(), None, "json", 250),
        Seed(
            "getting-key",
            b"Getting key fuzz for service instance ias as me...\n\n" + service_key,
            None,
            "json",
            80,
        ),
        Seed("pasted-crlf", (chain + ec.key_pem()).replace(b"\n", b"\r\n"), None, "pem", 120),
        Seed("pasted-one-line", one_line, None, "text", 120),
        Seed("pasted-quoted", b'"' + one_line + b'"', None, "text", 80),
        Seed("pasted-bare-base64", base64.encodebytes(ec.der), None, "text", 120),
    ]


def _armour(label: str, der: bytes) -> bytes:
    return (
        f"-----BEGIN {label}-----\n".encode() + base64.encodebytes(der) + f"-----END {label}-----\n".encode()
    )


def _p12_aes(item: certs.Issued, extra: tuple[certs.Issued, ...]) -> bytes:
    """AES with OpenSSL's 2048 rounds (cryptography's default, 20000, makes each case slower)."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(PASSWORD.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        b"fuzz", item.key, item.cert, [e.cert for e in extra], encryption
    )


def _scrypt_key(item: certs.Issued) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp, "k.pem")
        key.write_bytes(item.key_pem())
        done = subprocess.run(
            ["openssl", "pkcs8", "-topk8", "-scrypt", "-scrypt_N", "1024", "-in", str(key),
             "-passout", f"pass:{PASSWORD}"],
            check=True, capture_output=True,
        )  # fmt: skip
    return done.stdout


def mutant(mutator: Mutator, seed: Seed) -> bytes:
    rng = mutator.rng
    if rng.random() < 0.15 or seed.kind == "text":
        return mutator.damage(seed.data) if rng.random() < 0.7 else mutator.pem(seed.data)
    if seed.kind == "pkcs12":
        return mutator.pkcs12(seed.data, seed.password or "")
    if seed.kind == "json":
        head, brace, rest = seed.data.partition(b"{")
        return head + mutator.json(brace + rest)
    return mutator.der(seed.data) if seed.kind == "der" else mutator.pem(seed.data)


def password_for(rng: random.Random, seed: Seed) -> str | None:
    roll = rng.random()
    if roll < 0.85:
        return seed.password
    if roll < 0.92:
        return rng.choice([None, ""])
    return rng.choice(ODD_PASSWORDS)


def build_cases() -> tuple[list[tuple[bytes, str | None]], list[str]]:
    rng = random.Random(SEED)
    mutator = Mutator(rng)
    cases, labels = [], []
    for seed in seeds():
        cases.append((seed.data, seed.password))  # the seed itself must be read
        labels.append(f"{seed.name} (unchanged)")
        for number in range(seed.cases):
            cases.append((mutant(mutator, seed), password_for(rng, seed)))
            labels.append(f"{seed.name} #{number}")
    return cases, labels


def test_every_mutant_is_read_or_refused_by_name(tmp_path):
    cases, labels = build_cases()

    outcomes = parse_child.run(cases, per_case_seconds=HANG_SECONDS)

    bad = [
        (label, case, outcome)
        for label, case, outcome in zip(labels, cases, outcomes, strict=False)
        if outcome.kind not in ("parsed", "input_error")
    ]
    for number, (_, case, _) in enumerate(bad):
        (tmp_path / f"case-{number}.pickle").write_bytes(pickle.dumps(case))
    report = "\n".join(f"{label}: {outcome}" for label, _, outcome in bad[:20])
    assert not bad, f"{len(bad)} of {len(cases)} cases (seed {SEED}, inputs in {tmp_path}):\n{report}"
    assert len(outcomes) == len(cases)
    # Every seed is read as it is, but the key alone (which asks for its certificate).
    unchanged = [
        (label, outcome) for label, outcome in zip(labels, outcomes, strict=True) if "(unchanged)" in label
    ]
    assert all(outcome.kind == "parsed" for label, outcome in unchanged if "key (" not in label), unchanged
    # Not vacuous: the mutants reach many of the parser's refusals, and some are still read.
    codes = Counter(outcome.detail for outcome in outcomes if outcome.kind == "input_error")
    assert len(codes) >= 8, codes
    assert sum(outcome.kind == "parsed" for outcome in outcomes) > len(cases) // 20
