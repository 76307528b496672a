"""Hosted on SAP BTP Cloud Foundry: the worker process, /healthz, the production settings, and
the portal booted under gunicorn the way `cf push` starts it (manifest.yml, gunicorn.conf.py)."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import dj_database_url
import pytest
import requests
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.urls import reverse

from certmgr.healthcheck import schedule as healthchecks
from certmgr.management.commands import worker as worker_command
from certmgr.notifications import ledger as notify
from portal import vcap
from tests import certs
from tests.test_standin_oidc import Form

ROOT = Path(__file__).resolve().parent.parent
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
TEST_PG = os.environ.get("DATABASE_URL", "")


def production_env(**extra: str) -> dict[str, str]:
    """The environment of a production process: none of the test suite's switches."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CERTMGR_", "VCAP_", "DATABASE_URL", "GUNICORN_", "PORT"))
    }
    return {
        **clean,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "CERTMGR_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        **extra,
    }


def manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def vcap_application(*uris: str) -> str:
    return json.dumps({"application_name": "ias-cert-portal", "application_uris": list(uris)})


def postgres_binding(identity: dict | None = None, **credentials) -> str:
    creds = {
        "hostname": "pg.internal.example",
        "port": 5432,
        "dbname": "portal",
        "username": "u",
        "password": "p",
    }
    bound = {
        "postgresql-db": [
            {"label": "postgresql-db", "name": "cert-portal-db", "credentials": {**creds, **credentials}}
        ]
    }
    if identity is not None:
        bound["identity"] = [identity]
    return json.dumps(bound)


def identity_binding(tenant_url: str, client_id: str, certificate_pem: bytes) -> dict:
    """The portal's own `identity` binding, credential-type X509_PROVIDED (no key in it), as on BTP."""
    return {
        "label": "identity",
        "plan": "application",
        "name": "cert-portal-ias",
        "instance_name": "cert-portal-ias",
        "tags": ["ias"],
        "credentials": {
            "clientid": client_id,
            "credential-type": "X509_PROVIDED",
            "certificate": certificate_pem.decode(),
            "url": tenant_url,
            "domains": ["accounts.ondemand.com", "accounts.cloud.sap"],
            "authorization_endpoint": f"{tenant_url}/oauth2/authorize",
            "end_session_endpoint": f"{tenant_url}/oauth2/logout",
        },
    }


# --- the worker process ------------------------------------------------------------------------


@pytest.fixture
def rounds(monkeypatch):
    """Which rounds ran, in order (the rounds themselves are tested in test_notify, test_healthchecks)."""
    calls = []
    monkeypatch.setattr(notify, "plan", lambda now: calls.append("plan") or 0)
    monkeypatch.setattr(notify, "deliver", lambda now: calls.append("deliver") or {})
    monkeypatch.setattr(healthchecks, "run_due", lambda: calls.append("checks") or [])
    return calls


@pytest.fixture
def signal_handlers():
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.django_db
def test_the_worker_runs_one_round_of_each_with_once_against_the_real_rounds(capsys):
    call_command("worker", "--once")

    out = capsys.readouterr().out
    assert "notices: 0 planned; nothing to send" in out
    assert "health checks: 0 checked, 0 failed" in out


@pytest.mark.django_db
def test_the_worker_plans_before_it_delivers_and_runs_the_checks(rounds):
    call_command("worker", "--once")

    assert rounds == ["plan", "deliver", "checks"]


@pytest.mark.django_db
def test_the_worker_keeps_each_round_to_its_own_interval_and_stops_on_sigterm(
    rounds, monkeypatch, signal_handlers
):
    def checks():
        rounds.append("checks")
        if rounds.count("checks") == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # as Cloud Foundry does when it stops the app
        return []

    monkeypatch.setattr(healthchecks, "run_due", checks)
    waits = []

    class Stop(threading.Event):  # the worker's stop event; its waits are what the loop sleeps
        def wait(self, timeout=None):
            waits.append(timeout)
            return super().wait(timeout)

    monkeypatch.setattr(worker_command, "threading", SimpleNamespace(Event=Stop))

    call_command("worker", "--check-interval", "0.05", "--notify-interval", "600")

    assert rounds == ["plan", "deliver", "checks", "checks", "checks", "checks"]
    # Between the checks it slept at most the checks' interval, never the notices' 600 s (the
    # fourth wait, after SIGTERM, returns at once).
    assert len(waits) == 4 and all(0 <= timeout <= 0.05 for timeout in waits), waits


@pytest.mark.django_db
def test_a_failing_round_does_not_stop_the_loop_but_fails_a_single_run(rounds, monkeypatch, caplog):
    def broken(now):
        raise OperationalError("the database went away")

    monkeypatch.setattr(notify, "plan", broken)

    with pytest.raises(CommandError, match="notify round failed"):
        call_command("worker", "--once")

    assert rounds == ["checks"]  # the other round still ran
    assert "the notify round failed" in caplog.text


def test_the_worker_refuses_intervals_that_are_not_positive():
    with pytest.raises(CommandError, match="more than 0 seconds"):
        call_command("worker", "--check-interval", "0")


# --- /healthz ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_answers_the_platform_probe_whatever_the_host_and_without_a_login(client):
    response = client.get("/healthz", HTTP_HOST="10.0.0.7")  # the container's IP, not an allowed host

    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_does_not(client, monkeypatch):
    def down():
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", down)

    response = client.get("/healthz", HTTP_HOST="10.0.0.7")

    assert response.status_code == 503


def test_healthz_is_also_reachable_through_the_url_patterns():
    assert reverse("healthz") == "/healthz"


@pytest.mark.django_db
def test_every_page_carries_the_content_security_policy(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert response["Content-Security-Policy"] == POLICY
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_no_page_template_has_inline_script_or_style():
    """The policy forbids both; mails (templates/certmgr/notifications/notices) are not pages."""
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        rel = template.relative_to(ROOT).as_posix()
        if rel.startswith("templates/certmgr/notifications/notices/") or "notice_email" in rel:
            continue
        text = template.read_text()
        if "style=" in text or "<style" in text or re.search(r"\son[a-z]+=", text):
            offenders.append(rel)
        for chunk in text.split("<script")[1:]:
            if "src=" not in chunk.split(">", 1)[0]:
                offenders.append(rel)
    assert offenders == []


# --- production settings -----------------------------------------------------------------------


def settings_of(env: dict[str, str], *names: str) -> dict:
    code = "import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n) for n in %r}, default=str))"
    result = manage("shell", "-c", code % (names,), env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_on_cloud_foundry_the_routes_become_hosts_origins_and_the_portal_url():
    env = production_env(
        VCAP_APPLICATION=vcap_application("portal.example.com", "certs.example.org/portal"),
        VCAP_SERVICES=postgres_binding(),
        DJANGO_ALLOWED_HOSTS="extra.example.net",
        DJANGO_DEBUG="1",  # ignored on Cloud Foundry
    )

    found = settings_of(
        env,
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "CERTMGR_PORTAL_URL",
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
    )

    assert found == {
        "ALLOWED_HOSTS": ["extra.example.net", "portal.example.com", "certs.example.org"],
        "CSRF_TRUSTED_ORIGINS": ["https://portal.example.com", "https://certs.example.org"],
        "CERTMGR_PORTAL_URL": "https://portal.example.com",
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
    }


def test_the_binding_root_certificate_is_a_private_file_and_verified(monkeypatch):
    pem = "-----BEGIN CERTIFICATE-----\nMIIB" + secrets.token_hex(4) + "\n-----END CERTIFICATE-----\n"
    monkeypatch.setenv("VCAP_SERVICES", postgres_binding(sslrootcert=pem))

    config = vcap.postgres_database()

    assert config["OPTIONS"]["sslmode"] == "verify-full"
    path = Path(config["OPTIONS"]["sslrootcert"])
    assert path.read_text() == pem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert vcap.postgres_database()["OPTIONS"]["sslrootcert"] == str(path)  # the next process reuses it


def test_a_binding_without_a_root_certificate_leaves_sslmode_to_libpq(monkeypatch):
    """libpq's default is sslmode=prefer (TLS when the server offers it); SAP BTP's bindings
    always carry sslrootcert, so this is the local test database's case only."""
    monkeypatch.setenv("VCAP_SERVICES", postgres_binding())

    assert vcap.postgres_database()["OPTIONS"] == {}


def test_the_development_servers_request_lines_hide_the_login_code_and_feed_tokens(caplog):
    import logging

    server = logging.getLogger("django.server")
    server.addHandler(caplog.handler)  # it does not propagate to the root logger
    try:
        server.info('"%s" %s %s', "GET /oidc/callback/?code=one-time-4711&state=s0m3 HTTP/1.1", 302, 0)
        server.info('"%s" %s %s', "GET /feeds/feed-token-5c1e/all.ics HTTP/1.1", 200, 512)
    finally:
        server.removeHandler(caplog.handler)

    lines = [record.getMessage() for record in caplog.records]
    assert lines == ['"GET /oidc/callback/?… HTTP/1.1" 302 0', '"GET /feeds/…/all.ics HTTP/1.1" 200 512']


def test_a_command_asked_for_json_keeps_its_stdout_one_document_and_logs_to_stderr():
    script = (
        "import sys; sys.argv = ['manage.py', 'healthcheck', 'demo', '--json']; import django; django.setup(); "
        "import logging; logging.getLogger('certmgr.healthcheck.runner').warning('a log line'); print('{\"ok\": true}')"
    )
    env = production_env(DJANGO_ALLOWED_HOSTS="portal.example.com", DJANGO_SETTINGS_MODULE="portal.settings")

    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True}
    [line] = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert (line["logger"], line["message"]) == ("certmgr.healthcheck.runner", "a log line")


# --- the portal's own identity binding (its IAS login) ---------------------------------------------


def test_an_x509_provided_identity_binding_takes_its_key_from_the_environment(monkeypatch):
    binding = identity_binding("https://mytenant.accounts.ondemand.com", "5fd2be25", LOGIN_CERT.pem)
    monkeypatch.setenv("VCAP_SERVICES", postgres_binding(identity=binding))
    monkeypatch.setenv("CERTMGR_OIDC_CLIENT_KEY", LOGIN_CERT.key_pem().decode())

    config = vcap.identity_login()

    assert config["issuer"] == "https://mytenant.accounts.ondemand.com"
    assert (config["client_id"], config["client_secret"]) == ("5fd2be25", None)
    assert config["certificate_pem"] == LOGIN_CERT.pem and config["key_pem"] == LOGIN_CERT.key_pem()
    assert config["authorization_endpoint"] == "https://mytenant.accounts.ondemand.com/oauth2/authorize"


def test_an_x509_provided_identity_binding_without_the_key_is_refused_with_the_fix(monkeypatch):
    binding = identity_binding("https://mytenant.accounts.ondemand.com", "5fd2be25", LOGIN_CERT.pem)
    monkeypatch.setenv("VCAP_SERVICES", postgres_binding(identity=binding))
    monkeypatch.delenv("CERTMGR_OIDC_CLIENT_KEY", raising=False)

    with pytest.raises(ImproperlyConfigured, match="set CERTMGR_OIDC_CLIENT_KEY to the PEM private key"):
        vcap.identity_login()


def test_a_secret_identity_binding_and_the_choice_by_name(monkeypatch):
    other = {
        "label": "identity",
        "name": "someone-elses",
        "credentials": {"url": "https://x.accounts.ondemand.com"},
    }
    mine = {
        "label": "identity",
        "name": "cert-portal-ias",
        "credentials": {"url": "https://t.accounts.ondemand.com/", "clientid": "c1", "clientsecret": "s1"},
    }
    monkeypatch.setenv("VCAP_SERVICES", json.dumps({"identity": [other, mine]}))

    config = vcap.identity_login("cert-portal-ias")

    assert (config["issuer"], config["client_id"], config["client_secret"]) == (
        "https://t.accounts.ondemand.com",
        "c1",
        "s1",
    )
    assert config["certificate_pem"] is None and config["key_pem"] is None
    with pytest.raises(ImproperlyConfigured, match="no identity binding has that name"):
        vcap.identity_login("typo")
    with pytest.raises(ImproperlyConfigured, match="lacks the client id"):
        vcap.identity_login("someone-elses")


def test_a_tenant_url_that_is_not_https_is_refused(monkeypatch):
    binding = {
        "label": "identity",
        "name": "ias",
        "credentials": {"url": "http://t.example", "clientid": "c", "clientsecret": "s"},
    }
    monkeypatch.setenv("VCAP_SERVICES", json.dumps({"identity": [binding]}))

    with pytest.raises(ImproperlyConfigured, match="is not an https URL"):
        vcap.identity_login()


def test_it_refuses_to_start_on_cloud_foundry_with_sqlite():
    result = manage("check", env=production_env(VCAP_APPLICATION=vcap_application("portal.example.com")))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "No database on Cloud Foundry" in result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "CERTMGR_ENCRYPTION_KEYS"])
def test_it_refuses_to_start_on_cloud_foundry_without_its_secrets_even_with_debug_asked_for(missing):
    env = production_env(
        VCAP_APPLICATION=vcap_application("portal.example.com"),
        VCAP_SERVICES=postgres_binding(),
        DJANGO_DEBUG="1",
    )
    del env[missing]

    result = manage("check", env=env)

    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


@pytest.mark.parametrize("platform", ["plain", "cloud-foundry"])
def test_the_deploy_checks_find_nothing_in_production(platform):
    extra = (
        {"VCAP_APPLICATION": vcap_application("portal.example.com"), "VCAP_SERVICES": postgres_binding()}
        if platform == "cloud-foundry"
        else {"DJANGO_ALLOWED_HOSTS": "portal.example.com"}
    )

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(**extra))

    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


# --- the portal under gunicorn, as cf push starts it --------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def deploy_database():
    """A database of its own on the test PostgreSQL server, dropped afterwards."""
    if not TEST_PG.startswith(("postgres://", "postgresql://")):
        pytest.skip("needs the PostgreSQL test server (run with DATABASE_URL=postgres://...)")
    import psycopg

    server = dj_database_url.parse(TEST_PG)
    name = "deploy_" + secrets.token_hex(4)
    admin = {"host": server["HOST"], "port": server["PORT"] or 5432, "user": server["USER"]}
    if server["PASSWORD"]:
        admin["password"] = server["PASSWORD"]
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield {**admin, "dbname": name}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fetch(port: int, path: str, **headers: str) -> http.client.HTTPResponse:
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


# The portal's login certificate: the process under gunicorn runs on the real clock, so it is
# issued at the suite's fixed instant and valid far beyond any run.
LOGIN_CERT = certs.issue(
    "ias-cert-portal (P000007)", key_slot=7, serial=0x7007, not_after=datetime(2099, 1, 1, tzinfo=UTC)
)
LOGIN_CLIENT = "cert-portal-login-0f6c3e02"
ROUTE_CALLBACK = "https://portal.example.com/oidc/callback/"


@pytest.fixture
def gunicorn_portal(deploy_database, tmp_path, standin):
    """The portal under gunicorn with the manifest's command and a synthetic Cloud Foundry
    environment: a route portal.example.com, a postgresql-db binding (no sslrootcert) and an
    X509_PROVIDED identity binding pointing at the IAS stand-in (the key set with cf set-env)."""
    db = deploy_database
    standin.register_oidc_client(LOGIN_CLIENT, None, [ROUTE_CALLBACK])
    standin.register(LOGIN_CLIENT, LOGIN_CERT.pem)
    env = production_env(
        VCAP_APPLICATION=vcap_application("portal.example.com"),
        VCAP_SERVICES=postgres_binding(
            identity=identity_binding(standin.url, LOGIN_CLIENT, LOGIN_CERT.pem),
            hostname=db["host"],
            port=db["port"],
            dbname=db["dbname"],
            username=db["user"],
            password=db.get("password", ""),
        ),
        CERTMGR_OIDC_CLIENT_KEY=LOGIN_CERT.key_pem().decode(),
        CERTMGR_CA_BUNDLE=str(standin.ca_file),  # the stand-in's CA; IAS's is a public one
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        PORT="1",  # only loopback below: --bind overrides the configuration's 0.0.0.0:$PORT
    )
    for step in (("migrate", "--noinput"), ("collectstatic", "--noinput")):
        result = manage(*step, env=env)
        assert result.returncode == 0, result.stderr
    port = free_port()
    log = tmp_path / "stdout.log"
    with open(log, "w") as out:
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
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if fetch(port, "/healthz", Host="10.0.0.7").status == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz within 30 s"
            time.sleep(0.2)
        yield {"port": port, "static": tmp_path / "static", "log": log, "server": server, "standin": standin}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def cookies_of(response, jar: dict) -> str:
    for header, value in response.getheaders():
        if header.lower() == "set-cookie":
            name, _, rest = value.partition("=")
            jar[name] = rest.split(";", 1)[0]
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def log_in_through_ias(port: int, https: dict, standin) -> str:
    """An anonymous visitor goes to IAS, logs on there, and comes back logged in (a viewer)."""
    standin.add_user("gina", "gina-pass-5150", email="gina@example.com", groups=["CertPortalViewers"])
    jar: dict[str, str] = {}
    start = fetch(port, "/oidc/authenticate/?next=/certificates/", **https)
    assert start.status == 302
    authorize = start.getheader("Location")
    assert authorize.startswith(f"{standin.url}/oauth2/authorize?")
    sent = parse_qs(urlsplit(authorize).query)
    assert sent["client_id"] == [LOGIN_CLIENT] and sent["redirect_uri"] == [ROUTE_CALLBACK]
    assert sent["code_challenge_method"] == ["S256"]
    cookie = cookies_of(start, jar)

    idp = requests.Session()
    idp.verify, idp.trust_env = str(standin.ca_file), False
    form = Form(idp.get(authorize, timeout=10).text)
    fields = {name: a.get("value", "") for name, a in form.inputs.items() if a.get("type") == "hidden"}
    fields[form.inputs[form.labels["Email or user name"]]["name"]] = "gina"
    fields[form.inputs[form.labels["Password"]]["name"]] = "gina-pass-5150"
    action = form.forms[0]["action"]
    back = idp.post(action if action.startswith("https://") else standin.url + action, data=fields,
                    allow_redirects=False, timeout=10)  # fmt: skip
    assert back.status_code == 302 and back.headers["Location"].startswith(ROUTE_CALLBACK + "?")

    callback = fetch(
        port, back.headers["Location"][len("https://portal.example.com") :], Cookie=cookie, **https
    )
    assert callback.status == 302, callback.body
    assert callback.getheader("Location") == "/certificates/"
    page = fetch(port, "/certificates/", Cookie=cookies_of(callback, jar), **https)
    assert page.status == 200
    assert b"gina@example.com" in page.body
    [redeemed] = [r for r in standin.token_requests if r.client_id == LOGIN_CLIENT]
    assert redeemed.status == 200 and redeemed.thumbprint  # the code was redeemed over mutual TLS
    return parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]


def test_the_portal_runs_under_gunicorn_as_on_cloud_foundry(gunicorn_portal):
    port = gunicorn_portal["port"]
    https = {"Host": "portal.example.com", "X-Forwarded-Proto": "https"}

    probe = fetch(port, "/healthz", Host="10.0.0.7")
    assert (probe.status, probe.body) == (200, b"ok")

    manifest = json.loads((gunicorn_portal["static"] / "staticfiles.json").read_text())["paths"]
    hashed = manifest["certmgr/portal.css"]
    assert hashed != "certmgr/portal.css"
    static = fetch(port, "/static/" + hashed, **https)
    assert static.status == 200
    assert b"{" in static.body
    max_age = int(static.getheader("Cache-Control").split("max-age=")[1].split(",")[0])
    assert max_age >= 365 * 24 * 3600

    home = fetch(port, "/", **https)
    assert home.status == 302
    assert home.getheader("Location") == "/oidc/authenticate/?next=/"
    assert home.getheader("Content-Security-Policy") == POLICY
    assert home.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains"

    login = fetch(port, "/login/", **https)
    assert login.status == 200
    assert login.getheader("Content-Security-Policy") == POLICY
    cookie = login.getheader("Set-Cookie")
    assert "csrftoken=" in cookie and "Secure" in cookie

    plain = fetch(port, "/", Host="portal.example.com")
    assert plain.status == 301
    assert plain.getheader("Location") == "https://portal.example.com/"

    assert fetch(port, "/", Host="evil.example.net", **{"X-Forwarded-Proto": "https"}).status == 400

    code = log_in_through_ias(port, https, gunicorn_portal["standin"])
    assert fetch(port, "/feeds/feed-token-5c1e7a/all.ics", **https).status == 404

    server = gunicorn_portal["server"]
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=15) == 0
    lines = [line for line in gunicorn_portal["log"].read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert any(entry["logger"] == "gunicorn.access" and "/healthz" in entry["message"] for entry in entries)
    assert any(entry["logger"] == "django.security.DisallowedHost" for entry in entries)
    # The access log shows paths, not the login's one-time code nor a feed's token.
    access = "\n".join(entry["message"] for entry in entries if entry["logger"] == "gunicorn.access")
    assert '"GET /oidc/callback/ HTTP/1.1" 302' in access and '"GET /feeds/…/all.ics HTTP/1.1" 404' in access
    log_text = gunicorn_portal["log"].read_text()
    assert code not in log_text and "feed-token-5c1e7a" not in log_text
