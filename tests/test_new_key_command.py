"""`manage.py new_key`: a pending key for the application, its CSR on stdout (or in a file)."""

from __future__ import annotations

import io

import pytest
import time_machine
from cryptography import x509
from django.core.management import CommandError, call_command

from certmgr.core import csr
from certmgr.models import AuditEvent, PendingKey
from tests import certs

pytestmark = pytest.mark.django_db
SUBJECT = "CN=frontend-app (P000042),O=Example Corp,C=DE"


@pytest.fixture(autouse=True)
def _mid_life():
    with time_machine.travel(certs.MID_LIFE, tick=False):
        yield


def new_key(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("new_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_prints_the_csr_and_keeps_the_key_pending(frontend_app):
    out, err = new_key("--app", "frontend", "--subject", SUBJECT, "--key-type", "ec-p256")

    request = x509.load_pem_x509_csr(out.encode())
    pending = PendingKey.objects.get()
    assert out == pending.csr_pem and out.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert request.subject.rfc4514_string() == SUBJECT
    assert csr.public_key_sha256(request.public_key()) == pending.public_key_sha256
    assert pending.key_type == "ec-p256" and pending.application == frontend_app
    assert "PRIVATE KEY" not in out + err
    assert err.strip() == (
        f"Pending key #{pending.pk} (EC P-256) for frontend: upload or import the signed certificate before "
        "2026-07-01 12:00 UTC; it is stored with this key."
    )
    event = AuditEvent.objects.get(action="key_generated")
    assert (event.actor_label, event.application) == ("manage.py new_key", frontend_app)


def test_the_default_key_is_rsa_2048(frontend_app):
    out, _ = new_key("--app", "frontend", "--subject", SUBJECT)

    assert x509.load_pem_x509_csr(out.encode()).public_key().key_size == 2048


def test_out_writes_the_csr_to_the_file_and_nothing_to_stdout(frontend_app, tmp_path):
    target = tmp_path / "frontend.csr"

    out, err = new_key(
        "--app", "frontend", "--subject", SUBJECT, "--key-type", "ec-p256", "--out", str(target)
    )

    assert out == ""
    assert target.read_text() == PendingKey.objects.get().csr_pem
    assert f"CSR written to {target}." in err


def test_an_unwritable_out_file_discards_the_key(frontend_app, tmp_path):
    with pytest.raises(
        CommandError, match="Cannot write .*: No such file or directory; the key was discarded."
    ):
        new_key(
            "--app",
            "frontend",
            "--subject",
            SUBJECT,
            "--key-type",
            "ec-p256",
            "--out",
            str(tmp_path / "no/x"),
        )

    assert not PendingKey.objects.exists()
    assert AuditEvent.objects.filter(action="key_discarded").count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "nope", "--subject", SUBJECT], "No application 'nope'."),
        (["--app", "frontend", "--subject", "O=Example"], "The subject has no common name"),
        (["--app", "frontend", "--subject", "CN=a\x07"], "The subject contains control characters."),
    ],
)
def test_bad_input_is_refused_with_its_reason(frontend_app, args, message):
    with pytest.raises(CommandError, match=message):
        new_key(*args)

    assert not PendingKey.objects.exists()


def test_an_unknown_key_type_is_refused_by_the_parser(frontend_app):
    with pytest.raises(CommandError, match="invalid choice: 'dsa-1024'"):
        new_key("--app", "frontend", "--subject", SUBJECT, "--key-type", "dsa-1024")
