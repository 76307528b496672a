"""`manage.py healthcheck` and `manage.py run_health_checks`, including two processes at once."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from certmgr.models import Application, HealthCheckRun
from tests import certs

pytestmark = pytest.mark.django_db
BASE_DIR = Path(__file__).resolve().parent.parent


def healthcheck(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("healthcheck", *args, stdout=out)
    except SystemExit as exit:
        return exit.code, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.usefixtures("mid_life")
def test_healthcheck_json_for_a_healthy_application(checked_app):
    status, out = healthcheck("frontend", "--json")

    result = json.loads(out)
    assert status == 0
    assert result["ok"] is True and result["application"] == "frontend"
    assert [step["name"] for step in result["steps"]] == ["discovery", "token", "token_validation", "backend"]
    for step in result["steps"]:
        assert set(step) == {"name", "ok", "duration_ms", "status", "diagnosis", "warnings"}
        assert step["ok"] is True and step["duration_ms"] > 0 and step["warnings"] == []
    assert HealthCheckRun.objects.get().trigger == HealthCheckRun.Trigger.COMMAND


@pytest.mark.usefixtures("mid_life")
def test_healthcheck_json_lists_the_steps_after_a_failure_as_not_run_and_exits_1(checked_app, ias):
    ias.unregister(checked_app.client_id)

    status, out = healthcheck("frontend", "--json")

    steps = json.loads(out)["steps"]
    assert status == 1 and json.loads(out)["ok"] is False
    assert [(s["name"], s["ok"]) for s in steps] == [
        ("discovery", True),
        ("token", False),
        ("token_validation", None),
        ("backend", None),
    ]
    assert steps[1]["status"] == 401 and "invalid_client" in steps[1]["diagnosis"]
    assert [s["diagnosis"] for s in steps[2:]] == ["not run", "not run"]
    assert [s["duration_ms"] for s in steps[2:]] == [None, None]


@pytest.mark.usefixtures("mid_life")
def test_healthcheck_prints_one_line_per_step_and_the_verdict(checked_app, ias):
    ias.faults.backend_status = 503

    status, out = healthcheck("frontend")

    lines = out.splitlines()
    assert status == 1
    assert lines[0].startswith("ok   discovery") and lines[2].startswith("ok   token_validation")
    assert lines[3].startswith("FAIL backend") and "HTTP 503" in lines[3]
    assert lines[-1] == "frontend: FAILED at backend"


def test_healthcheck_names_an_unknown_application():
    with pytest.raises(CommandError, match="No application with the slug 'nope'"):
        call_command("healthcheck", "nope")


def test_healthcheck_of_an_application_without_a_key_says_why(frontend_app):
    status, out = healthcheck("frontend", "--json")
    assert status == 1
    assert json.loads(out) == {
        "ok": False,
        "application": "frontend",
        "certificate": None,
        "steps": [],
        "error": "No active certificate with a stored private key: upload the certificate with its key.",
    }


@pytest.mark.usefixtures("mid_life")
def test_run_health_checks_checks_what_is_due_once(checked_app):
    out = io.StringIO()
    call_command("run_health_checks", "--json", "--workers", "1", stdout=out)
    call_command("run_health_checks", "--json", "--workers", "1", stdout=out)

    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert [(r["application"], r["ok"]) for r in first] == [("frontend", True)]
    assert second == []


# --- several processes at once ------------------------------------------------------------------


def _process_env(ias) -> dict[str, str]:
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CERTMGR_TENANT_HOSTS": "127.0.0.1",
        "CERTMGR_CA_BUNDLE": str(ias.ca_file),
        "CERTMGR_ENCRYPTION_KEYS": ",".join(settings.CERTMGR_ENCRYPTION_KEYS),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DJANGO_DEBUG": "0",
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("mid_life")
def test_two_run_health_checks_processes_check_each_due_application_exactly_once(ias, store, owner):
    if connection.vendor != "postgresql":
        pytest.skip("needs a database two processes can share: runs in the PostgreSQL pass")
    apps = []
    for n in range(40):
        app = Application.objects.create(
            name=f"App {n}", slug=f"app-{n:02}", tenant_url=ias.url, client_id=f"c-{n}"
        )
        item = certs.issue(f"app-{n}", key_slot=3, serial=0x6000 + n)
        store(item.key_pem() + item.pem, app, store_keys=True)
        ias.register(app.client_id, item.pem)
        apps.append(app)

    command = [sys.executable, "manage.py", "run_health_checks", "--json", "--workers", "4"]
    processes = [
        subprocess.Popen(command, cwd=BASE_DIR, env=_process_env(ias), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0]
    reported = [run["application"] for out in outputs for run in json.loads(out)]
    assert sorted(reported) == [app.slug for app in apps]  # every one, none twice
    assert all(json.loads(out) for out in outputs), "one process did all the work: no contention was tested"
    # Counted where it matters: the token requests IAS received, one per client id.
    assert sorted(request.client_id for request in ias.token_requests) == sorted(
        app.client_id for app in apps
    )
    assert HealthCheckRun.objects.count() == len(apps)


# --- a chosen certificate (a staged one, before the switch) --------------------------------------


@pytest.mark.usefixtures("mid_life")
def test_healthcheck_certificate_checks_the_staged_one_and_names_it(checked_app, staged_cert, client_cert):
    status, out = healthcheck("frontend", "--certificate", staged_cert.fingerprint[:12], "--json")

    result = json.loads(out)
    assert (status, result["ok"], result["certificate"]) == (0, True, staged_cert.fingerprint)
    run = HealthCheckRun.objects.get()
    assert run.certificate == staged_cert and run.claims["cnf"] == {"x5t#S256": staged_cert.x5t_s256}
    checked_app.refresh_from_db()
    assert checked_app.last_check is None  # not the application's health: it does not use that one yet
    assert checked_app.certificates.get(lifecycle="active").fingerprint == client_cert.fingerprint


@pytest.mark.usefixtures("mid_life")
def test_healthcheck_certificate_by_id_in_text_says_which_one(checked_app, staged_cert):
    status, out = healthcheck("frontend", "--certificate", str(staged_cert.pk))

    assert status == 0
    assert (
        out.splitlines()[-1] == f"frontend with staged certificate {staged_cert.fingerprint[:16]}…: healthy"
    )


@pytest.mark.usefixtures("mid_life")
def test_the_json_of_a_plain_run_names_the_certificate_in_use(checked_app, client_cert):
    _, out = healthcheck("frontend", "--json")

    assert json.loads(out)["certificate"] == client_cert.fingerprint


@pytest.mark.usefixtures("mid_life")
def test_a_staged_certificate_not_registered_in_ias_fails_at_the_token(checked_app, staged_cert, ias):
    ias.unregister(checked_app.client_id)
    ias.register(checked_app.client_id, checked_app.certificates.get(lifecycle="active").pem)

    status, out = healthcheck("frontend", "--certificate", staged_cert.fingerprint, "--json")

    result = json.loads(out)
    assert (status, result["ok"], result["certificate"]) == (1, False, staged_cert.fingerprint)
    assert [(s["name"], s["ok"]) for s in result["steps"]][:2] == [("discovery", True), ("token", False)]


@pytest.mark.parametrize("reference", ["999999", "deadbeefdeadbeef", "abc"])
def test_healthcheck_certificate_must_name_one_of_the_applications_certificates(checked_app, reference):
    with pytest.raises(CommandError, match=f"No single certificate of frontend matches '{reference}'"):
        healthcheck("frontend", "--certificate", reference)


def test_a_certificate_of_another_application_is_not_taken(checked_app, backend_app, store):
    other = store(certs.issue("backend-app", key_slot=5, serial=0x5151).pem, backend_app)

    with pytest.raises(CommandError, match="No single certificate of frontend matches"):
        healthcheck("frontend", "--certificate", other.fingerprint)


@pytest.mark.usefixtures("mid_life")
def test_a_certificate_without_its_key_is_named_in_the_json_error(checked_app, store):
    keyless = store(certs.issue("frontend-app (P000042)", key_slot=6, serial=0x6161).pem, checked_app)

    status, out = healthcheck("frontend", "--certificate", keyless.fingerprint, "--json")

    assert status == 1
    assert json.loads(out) == {
        "ok": False,
        "application": "frontend",
        "certificate": keyless.fingerprint,
        "steps": [],
        "error": "The portal holds no private key for this certificate: upload it with its key.",
    }
