"""Hostile uploads under gunicorn (production settings, the manifest's configuration): each gets a
page with a named reason, not a 500 or a timeout, and /healthz keeps answering meanwhile.

Before issue 12, two uploads of a 4 KB PKCS#12 file asking for 2**31-1 iterations froze every
worker for a minute, /healthz included.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests import der_edit as d
from tests import test_parse_hostile as hostile
from tests.test_deploy import ROOT, free_port, manage, production_env

OWNER, OWNER_PASSWORD = "otto", "otto-pass-123"
_CREATE_OWNER = f"""
from django.contrib.auth import get_user_model
from certmgr.models import Application
otto = get_user_model().objects.create_user("{OWNER}", "otto@example.com", "{OWNER_PASSWORD}")
app = Application.objects.create(name="Frontend", slug="frontend")
app.owners.add(otto)
print(app.pk)
"""


@pytest.fixture
def portal(tmp_path):
    """gunicorn with its production configuration (2 workers, 4 threads each), plain http on
    loopback, a SQLite database of its own, and Otto, who owns one application."""
    env = production_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_SECURE="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
    )
    for step in (("migrate", "--noinput"), ("collectstatic", "--noinput")):
        assert manage(*step, env=env).returncode == 0
    created = manage("shell", "-c", _CREATE_OWNER, env=env)
    assert created.returncode == 0, created.stderr
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "portal.wsgi",
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(base + "/healthz"):
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        yield {"url": base, "app": created.stdout.split()[-1]}  # after any log lines
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def logged_in(base: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    page = session.get(base + "/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = session.post(
        base + "/login/",
        data={"csrfmiddlewaretoken": token, "username": OWNER, "password": OWNER_PASSWORD},
        headers={"Referer": base + "/login/"},
        timeout=10,
        allow_redirects=False,
    )
    assert done.status_code == 302, done.text[:500]
    return session


def hostile_uploads() -> dict[str, tuple[dict, str]]:
    """name -> (form fields and file, what the answer must name)."""
    mac = d.decode(hostile.bundle())
    mac[2].children[2] = d.integer(d.INT_MAX)
    p7b = hostile.certs.p7b(*hostile.one_subject(2500))
    cert = d.encode(hostile.version_127(hostile.certs.issue()))
    deep = '{"credentials": ' * 1000 + "{}" + "}" * 1000
    password = hostile.PASSWORD
    return {
        "mac-2^31": (
            {"file": ("a.p12", d.encode(mac)), "password": password},
            "2,147,483,647 key-derivation",
        ),
        "pbkdf2-2^31": (
            {"file": ("b.p12", hostile.edited(hostile.hostile_key)), "password": password},
            "a private key, PBKDF2: 2,147,483,647",
        ),
        "hidden-key-2^31": (
            {
                "file": ("c.p12", hostile.edited(hostile.hostile_key_inside_encrypted_part)),
                "password": password,
            },
            "a private key, PBKDF2: 2,147,483,647",
        ),
        "json-1000-deep": ({"text": deep}, "nested more than 32 levels deep"),
        "version-127": ({"file": ("d.der", cert)}, "has version field 127"),
        "2500-one-subject": ({"file": ("e.p7b", p7b)}, "The input holds 2500 certificates"),
        "nul-password": ({"file": ("f.p12", hostile.bundle()), "password": "a\x00b"}, "Null characters"),
    }


def test_hostile_uploads_get_named_reasons_while_healthz_answers(portal):
    base = portal["url"]
    session = logged_in(base)
    uploads = hostile_uploads()
    answers: dict[str, requests.Response | Exception] = {}
    probes: list[int] = []
    done = threading.Event()

    def upload(name: str, fields: dict) -> None:
        mine = requests.Session()
        mine.trust_env, mine.cookies = False, session.cookies.copy()
        try:
            page = mine.get(base + "/upload/", timeout=15)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            data = {"csrfmiddlewaretoken": token, "step": "preview", "application": portal["app"]}
            data.update({k: v for k, v in fields.items() if k != "file"})
            files = {"file": fields["file"]} if "file" in fields else None
            answers[name] = mine.post(base + "/upload/", data=data, files=files, timeout=15)
        except requests.RequestException as exc:
            answers[name] = exc

    def probe() -> None:
        while not done.is_set():
            try:
                status = requests.get(base + "/healthz", timeout=10).status_code
            except requests.RequestException:
                status = 0
            probes.append(status)
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    workers = [threading.Thread(target=upload, args=(name, fields)) for name, (fields, _) in uploads.items()]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    done.set()
    prober.join()

    for name, (_, reason) in uploads.items():
        answer = answers.get(name)
        assert isinstance(answer, requests.Response), (name, answer)
        assert answer.status_code in (200, 400), (name, answer.status_code)
        assert reason in answer.text, (name, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", answer.text))[:2000])
    # Every probe answered while the uploads ran: a frozen server fails them (their 10 s timeout
    # is the hang guard; how fast they were is not asserted).
    assert probes and all(status == 200 for status in probes), probes
