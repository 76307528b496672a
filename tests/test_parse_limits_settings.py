"""CERTMGR_MAX_KDF_ITERATIONS and CERTMGR_MAX_CERTS_PER_INPUT reach the parser from the upload
page, the confirm step and import_certs (its worker processes too); nonsense stops startup."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse

from certmgr.models import Certificate
from tests import certs
from tests.test_upload_flow import P12_PASSWORD, preview, text_of

ROOT = Path(__file__).resolve().parent.parent
# What cryptography's PKCS#12 export asks for: MAC 2048, certificates 20000, key 20000.
BUNDLE_ITERATIONS = 2048 + 20000 + 20000


@pytest.fixture
def otto(client, owner, frontend_app):
    with time_machine.travel(certs.MID_LIFE, tick=False):
        client.force_login(owner)
        yield client


def bundle() -> bytes:
    root, inter, leaf = certs.ca_hierarchy()
    return certs.p12(leaf, P12_PASSWORD.encode(), (inter, root))


def test_the_upload_page_names_a_file_beyond_the_configured_kdf_limit(otto, frontend_app, settings):
    settings.CERTMGR_MAX_KDF_ITERATIONS = BUNDLE_ITERATIONS - 1

    response = preview(otto, frontend_app, file=("leaf.p12", bundle()), password=P12_PASSWORD)

    assert response.status_code == 200
    assert f"asks for {BUNDLE_ITERATIONS:,} key-derivation iterations" in text_of(response)
    assert f"the limit is {BUNDLE_ITERATIONS - 1:,}" in text_of(response)


def test_a_file_within_the_configured_limits_is_shown_and_saved(otto, frontend_app, settings):
    settings.CERTMGR_MAX_KDF_ITERATIONS = BUNDLE_ITERATIONS
    settings.CERTMGR_MAX_CERTS_PER_INPUT = 3

    shown = preview(otto, frontend_app, file=("leaf.p12", bundle()), password=P12_PASSWORD)
    saved = otto.post(reverse("upload"), {"step": "confirm", "token": shown.context["token"]})

    assert saved.status_code == 302
    assert Certificate.objects.count() == 1


def test_the_upload_page_names_a_chain_beyond_the_configured_certificate_limit(otto, frontend_app, settings):
    settings.CERTMGR_MAX_CERTS_PER_INPUT = 2
    root, inter, leaf = certs.ca_hierarchy()

    response = preview(otto, frontend_app, text=(leaf.pem + inter.pem + root.pem).decode())

    assert response.status_code == 200
    assert "The input holds 3 certificates; the limit is 2." in text_of(response)


@pytest.mark.django_db
@pytest.mark.parametrize("jobs", [0, 1], ids=["here", "worker-process"])
def test_import_certs_applies_the_configured_limits(tmp_path, frontend_app, settings, jobs):
    settings.CERTMGR_MAX_CERTS_PER_INPUT = 2
    root, inter, leaf = certs.ca_hierarchy()
    chain = tmp_path / "chain.pem"
    chain.write_bytes(leaf.pem + inter.pem + root.pem)
    out = io.StringIO()

    with time_machine.travel(certs.MID_LIFE, tick=False), pytest.raises(SystemExit):
        call_command("import_certs", "--app", "frontend", "--jobs", str(jobs), str(chain), stdout=out)

    assert out.getvalue().strip() == (
        f"FAILED  {chain}: The input holds 3 certificates; the limit is 2. "
        "A certificate with its chain is a handful."
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("CERTMGR_MAX_KDF_ITERATIONS", "5", "CERTMGR_MAX_KDF_ITERATIONS=5: use at least 10000"),
        ("CERTMGR_MAX_CERTS_PER_INPUT", "0", "CERTMGR_MAX_CERTS_PER_INPUT=0: use at least 1"),
        ("CERTMGR_MAX_CERTS_PER_INPUT", "many", "CERTMGR_MAX_CERTS_PER_INPUT='many' is not a whole number"),
    ],
)
def test_a_nonsensical_limit_stops_startup(name, value, expected):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTMGR_MAX_")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert expected in result.stderr
