"""Bugs a new user ran into (issue 16, point 5), each as the user met it.

The channel form's reload is in test_notify_ui; the slug filled while typing and the Copy buttons
are in test_browser_ui.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from certmgr.healthcheck import runner as healthchecks
from certmgr.models import Application, Certificate
from tests import certs

ROOT = Path(__file__).resolve().parent.parent
P12_PASSWORD = "Otto-p12-Secret!"


def text_of(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def session_dump() -> str:
    return json.dumps([SessionStore().decode(s.session_data) for s in Session.objects.all()])


@pytest.fixture
def mid_life_otto(client, owner, frontend_app):
    with time_machine.travel(certs.MID_LIFE, tick=False):
        client.force_login(owner)
        yield client


# --- a viewer opening /admin/ ------------------------------------------------------------------


def test_a_viewer_opening_the_admin_gets_a_403_page_not_a_redirect_loop(vera):
    response = vera.get("/admin/", follow=True)

    assert response.status_code == 403
    assert len(response.redirect_chain) == 1  # /admin/ → /admin/login/, and there it stops
    assert "The admin site is for the portal's administrators only." in text_of(response)


def test_someone_not_logged_in_still_reaches_the_login_page_from_the_admin(client):
    response = client.get("/admin/", follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("login") + "?next=%2Fadmin%2F"


# --- PORT and the links in feeds and notices ------------------------------------------------------


def _settings_value(name: str, **env: str) -> str:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CERTMGR_", "VCAP_", "PORT"))
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print(settings.{name})",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(("port", "url"), [("", "http://127.0.0.1:8000"), ("8123", "http://127.0.0.1:8123"),
                                           ("127.0.0.1:9001", "http://127.0.0.1:9001")])  # fmt: skip
def test_the_development_portal_url_follows_port(tmp_path, port, url):
    env = {"DJANGO_DEBUG": "1", "CERTMGR_LOCAL_DIR": str(tmp_path)}
    assert _settings_value("CERTMGR_PORTAL_URL", **env, **({"PORT": port} if port else {})) == url


def test_dev_run_with_port_hands_that_address_to_every_process(tmp_path):
    """`./dev run` with a stand-in python that records how each process was started."""
    for name in ("dev", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    log = tmp_path / "started.log"
    stub = tmp_path / ".venv" / "bin" / "python"
    stub.parent.mkdir(parents=True)
    stub.write_text(
        "#!/bin/sh\n"
        f'echo "$* | CERTMGR_PORTAL_URL=$CERTMGR_PORTAL_URL" >> "{log}"\n'
        'case "$*" in *"manage.py sandbox"*) mkdir -p .local/sandbox; touch .local/sandbox/ready; exec sleep 5;; esac\n'
    )
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTMGR_", "PORT", "DJANGO_"))}

    result = subprocess.run(
        ["bash", str(tmp_path / "dev"), "run"],
        cwd=tmp_path,
        env={**env, "PORT": "8123", "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    started = {
        line.split(" | ")[0].split()[1]: line for line in log.read_text().splitlines() if "manage.py" in line
    }
    for command in ("runserver", "send_notifications", "run_health_checks", "sandbox"):
        assert started[command].endswith("CERTMGR_PORTAL_URL=http://127.0.0.1:8123"), started[command]
    assert "--portal http://127.0.0.1:8123" in started["sandbox"]
    assert "The portal: http://127.0.0.1:8123/" in result.stdout


# --- a wrong PKCS#12 password: the chosen file waits for the retry ---------------------------------


def _p12_upload(client, app, *, file=True, password=P12_PASSWORD, **extra):
    leaf = certs.issue("frontend-app (P000042)", key_slot=11)
    data = {"step": "preview", "application": app.slug, "password": password, "text": "", **extra}
    if file:
        data["file"] = SimpleUploadedFile("frontend.p12", certs.p12(leaf, P12_PASSWORD.encode()))
    return client.post(reverse("upload"), data), leaf


def test_after_a_wrong_password_only_the_password_is_asked_again(mid_life_otto, frontend_app):
    wrong, leaf = _p12_upload(mid_life_otto, frontend_app, password="wrong password")
    assert "Wrong password for this PKCS#12 file." in text_of(wrong)
    assert "Use frontend.p12 again" in text_of(wrong)
    # Kept sealed: neither the key nor the certificate in clear in the session store.
    assert "PRIVATE KEY" not in session_dump() and leaf.pem.decode().split("\n")[1] not in session_dump()

    retried, _ = _p12_upload(mid_life_otto, frontend_app, file=False, use_kept="1")

    assert retried.status_code == 200 and "Found in frontend.p12" in text_of(retried)
    assert retried.context["parsed"].leaf.sha256 == leaf.fingerprint
    assert "certmgr_upload_retry" not in session_dump()  # the stash holds it now, not the retry slot


def test_the_kept_file_goes_with_a_cancel_and_after_fifteen_minutes(client, owner, frontend_app):
    with time_machine.travel(certs.MID_LIFE, tick=False):
        client.force_login(owner)
        _p12_upload(client, frontend_app, password="wrong password")
    with time_machine.travel(certs.MID_LIFE + timedelta(minutes=16), tick=False):
        expired, _ = _p12_upload(client, frontend_app, file=False, use_kept="1")
        assert "The input is empty" in text_of(expired)  # no longer offered: choose the file again
        assert "Use frontend.p12 again" not in text_of(expired)

        _p12_upload(client, frontend_app, password="wrong password")
        shown, _ = _p12_upload(client, frontend_app, file=False, use_kept="1")
        client.post(reverse("upload"), {"step": "cancel", "token": shown.context["token"]})
    assert "certmgr_upload_retry" not in session_dump() and "certmgr_pending_upload" not in session_dump()
    assert not Certificate.objects.exists()


def test_an_application_typed_ambiguously_keeps_the_file_and_offers_the_matches(
    mid_life_otto, owner, frontend_app
):
    for name, slug in (("Frontend Staging", "frontend-staging"), ("Frontend EU", "frontend-eu")):
        Application.objects.create(name=name, slug=slug).owners.add(owner)

    asked, _ = _p12_upload(mid_life_otto, frontend_app, application="front")
    offered = re.findall(r'name="application_choice" id="[^"]+" value="([^"]+)"', asked.content.decode())
    chosen, _ = _p12_upload(mid_life_otto, frontend_app, file=False, use_kept="1", application="front",
                            application_choice="frontend-eu")  # fmt: skip

    assert "Several of your applications match “front”: choose one." in text_of(asked)
    assert offered == ["frontend", "frontend-eu", "frontend-staging"]
    assert "Found in frontend.p12" in text_of(chosen) and chosen.context["app"].slug == "frontend-eu"


# --- cancel, the tenant conflict, the slug ------------------------------------------------------


def test_the_upload_forms_cancel_goes_back_to_the_application(mid_life_otto, frontend_app):
    page = mid_life_otto.get(reverse("application-upload", args=["frontend"])).content.decode()
    assert re.search(r'<a href="/apps/frontend/">Cancel</a>', page)


def test_the_application_holding_a_certificate_of_the_tenant_is_a_link(
    mid_life_otto, frontend_app, backend_app, store, leaf
):
    store(leaf.pem, backend_app)

    shown = mid_life_otto.post(
        reverse("upload"),
        {"step": "preview", "application": "frontend", "file": SimpleUploadedFile("c.pem", leaf.pem)},
    )

    conflict = re.search(r'data-testid="conflict">(.*?)</div>', shown.content.decode(), re.S)[1]
    assert "already used by application '<a href=\"/apps/backend/\">Backend</a>' (backend)" in conflict


def test_an_empty_slug_is_made_from_the_name(client, admin_user):
    client.force_login(admin_user)

    response = client.post(reverse("application-create"), {"name": "Payroll Ünïcode API", "slug": ""})

    assert response.status_code == 302
    assert Application.objects.get(name="Payroll Ünïcode API").slug == "payroll-unicode-api"


# --- a paused schedule, the calendar's feed URL --------------------------------------------------


@pytest.mark.usefixtures("mid_life")
def test_a_paused_applications_history_says_paused_not_a_next_time(otto, checked_app, ias):
    ias.unregister(checked_app.client_id)
    for _ in range(2):
        healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")

    page = text_of(otto.get(reverse("health-history", args=[checked_app.slug])))

    assert "Scheduled checks are paused after repeated invalid_client refusals" in page
    assert "next due" not in page and "next after" not in page


def test_right_after_a_feed_url_is_shown_no_button_replaces_it(otto, frontend_app):
    response = otto.post(reverse("account-calendar"), {"action": "new-feed-url"})

    page = response.content.decode()
    assert response.context["token"] in page
    assert 'value="new-feed-url"' not in page and 'value="remove-feed-url"' not in page
    assert re.search(r'<a class="button" href="/account/calendar/"[^>]*>Done: I have copied it</a>', page)
    assert 'value="new-feed-url"' in otto.get(reverse("account-calendar")).content.decode()  # later, yes
