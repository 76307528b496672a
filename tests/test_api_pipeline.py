"""The README's pipeline example, run as written (a separate Python process with requests) against
the portal on a live server and the local IAS stand-in: upload staged → parameters → health check
of the staged certificate → promote."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from certmgr.models import AuditEvent, Certificate, HealthCheckRun
from tests import certs
from tests.apiclient import make_token

README = Path(__file__).resolve().parents[1] / "README.md"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("mid_life")]


def readme_pipeline() -> str:
    """The README's Python block of its "Automation API" section."""
    section = README.read_text().split("## Automation API", 1)[1].split("\n## ", 1)[0]
    [script] = re.findall(r"```python\n(.*?)```", section, re.S)
    return script


def run_pipeline(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    script = tmp_path / "rotate.py"
    script.write_text(readme_pipeline())
    clean = {"PATH": os.environ["PATH"], "NO_PROXY": "*", **env}  # nothing but loopback, no proxy
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def successor(checked_app, ias, tmp_path):
    """The renewed certificate as IAS's "Generate Certificate" gives it: a .p12 with a password.
    IAS knows it: the new service key was created with its parameters (step 2 of the script)."""
    renewed = certs.issue("frontend-app (P000042)", key_slot=4, serial=0x4343)
    ias.register(checked_app.client_id, renewed.pem)
    (tmp_path / "renewed.p12").write_bytes(certs.p12(renewed, b"p12-pass-77"))
    return renewed


def test_the_readme_pipeline_rotates_an_application_against_the_stand_in(
    live_server, checked_app, successor, client_cert, owner, tmp_path
):
    token = make_token(owner, write=True, apps=[checked_app])

    result = run_pipeline(
        tmp_path,
        PORTAL_URL=live_server.url,
        CERTMGR_API_TOKEN=token,
        APP=checked_app.slug,
        P12_FILE=str(tmp_path / "renewed.p12"),
        P12_PASSWORD="p12-pass-77",
    )

    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.startswith(successor.fingerprint[:16]) and "is active" in result.stdout
    lifecycles = dict(checked_app.certificates.values_list("fingerprint", "lifecycle"))
    assert lifecycles == {successor.fingerprint: "active", client_cert.fingerprint: "retired"}
    new = Certificate.objects.get(fingerprint=successor.fingerprint)
    assert new.has_private_key
    params = json.loads((tmp_path / "binding.json").read_text())
    assert params["credential-type"] == "X509_PROVIDED"
    assert params["certificate"].replace("\n", "") in successor.pem.decode().replace("\n", "")
    [run] = HealthCheckRun.objects.filter(certificate=new)
    assert run.ok and run.claims["cnf"] == {"x5t#S256": new.x5t_s256}
    writes = AuditEvent.objects.filter(action=AuditEvent.Action.API_WRITE).order_by("pk")
    assert [e.detail.split(" → ")[1] for e in writes] == ["201", "201", "200"]
    assert {e.actor for e in writes} == {owner}


def test_the_pipeline_stops_with_the_reason_when_the_certificate_is_refused(
    live_server, checked_app, owner, tmp_path
):
    token = make_token(owner, write=True, apps=[checked_app])
    (tmp_path / "renewed.p12").write_bytes(certs.p12(certs.issue(key_slot=4, serial=0x4344), b"right"))

    result = run_pipeline(
        tmp_path,
        PORTAL_URL=live_server.url,
        CERTMGR_API_TOKEN=token,
        APP=checked_app.slug,
        P12_FILE=str(tmp_path / "renewed.p12"),
        P12_PASSWORD="wrong",
    )

    assert result.returncode == 1
    assert result.stderr.startswith("POST certificates/: 400 wrong_password: ")
    assert checked_app.certificates.count() == 1
