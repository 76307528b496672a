from __future__ import annotations

import os
import socket

import pytest
import time_machine
from django.core.management import call_command

from tests import certs

# The Cloud Foundry stand-in and its world (fixtures cloud_foundry, cf) for the landscape tests.
pytest_plugins = ["tests.cfworld"]


@pytest.fixture(scope="session", autouse=True)
def _collected_static(tmp_path_factory):
    """Templates use hashed static names (whitenoise's manifest), as in production."""
    from django.conf import settings

    settings.STATIC_ROOT = tmp_path_factory.mktemp("static")
    call_command("collectstatic", "--noinput", verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing():
    """Password hashing is Django's, not under test here; PBKDF2 costs about a second a login."""
    from django.test.utils import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


# --- personas --------------------------------------------------------------------------------


@pytest.fixture
def admin_user(django_user_model):
    """Ada, a portal admin (superuser)."""
    return django_user_model.objects.create_superuser("ada", "ada@example.com", "ada-pass-123")


@pytest.fixture
def owner(django_user_model):
    """Otto, who owns the 'frontend' application."""
    return django_user_model.objects.create_user("otto", "otto@example.com", "otto-pass-123")


@pytest.fixture
def viewer(django_user_model):
    """Vera, a viewer (the view permission, owning nothing): she may look, not change."""
    from django.contrib.auth.models import Permission

    vera = django_user_model.objects.create_user("vera", "vera@example.com", "vera-pass-123")
    vera.user_permissions.add(Permission.objects.get(codename="view_application"))
    return vera


@pytest.fixture
def otto(client, owner, frontend_app):
    """A test client logged in as Otto, the owner of 'frontend'."""
    client.force_login(owner)
    return client


@pytest.fixture
def vera(client, viewer):
    """A test client logged in as Vera, the viewer."""
    client.force_login(viewer)
    return client


@pytest.fixture
def frontend_app(owner):
    from certmgr.models import Application

    app = Application.objects.create(
        name="Frontend",
        slug="frontend",
        tenant_url="https://mytenant.accounts.ondemand.com",
        client_id="5fd2be25-0e09-4321-8817-4a7b11a2ace2",
        domains=["accounts.ondemand.com"],
    )
    app.owners.add(owner)
    return app


@pytest.fixture
def backend_app():
    """Another application of the same IAS tenant as 'frontend'."""
    from certmgr.models import Application

    return Application.objects.create(
        name="Backend", slug="backend", tenant_url="https://mytenant.accounts.ondemand.com"
    )


@pytest.fixture
def store(frontend_app):
    """Store certificates for an application through the real import path."""
    from certmgr.core.parse import parse_certificate_input
    from certmgr.inventory.importer import Importer

    def _store(data: bytes, app=None, *, password=None, store_keys=False):
        importer = Importer(app or frontend_app, store_keys=store_keys, actor_label="test")
        [result] = importer.save([("test", parse_certificate_input(data, password))])
        assert result.ok, result.error
        return result.certificate

    return _store


@pytest.fixture
def chained(store):
    """A leaf stored with its intermediate and root: (stored certificate, [leaf, inter, root])."""
    root, inter, leaf = certs.ca_hierarchy()
    return store(leaf.pem + inter.pem + root.pem), [leaf, inter, root]


@pytest.fixture
def leaf():
    """The standard client certificate of the suite: issued at ISSUED, expires at EXPIRES."""
    return certs.issue()


# --- headless Chromium (tests marked ``browser``) ------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium reaches for Google's hosts at start; this machine has no network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself (fixtures, assertions) are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_clock():
    """The whole visit, login included, happens 20 days before the certificate expires."""
    with time_machine.travel(certs.TWENTY_DAYS_BEFORE_EXPIRY, tick=False):
        yield


@pytest.fixture
def page(browser, live_server, owner, browser_clock, settings):
    """Otto, logged in, on the dashboard; ``page.requested`` collects every URL the page asked for."""
    # The live server finds static files through the finders; let them see the hashed copies.
    settings.STATICFILES_DIRS = [settings.STATIC_ROOT]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    # Anything the Content-Security-Policy blocked (inline script or style) is a broken page.
    blocked = []
    page.on(
        "console", lambda message: "Content Security Policy" in message.text and blocked.append(message.text)
    )
    page.goto(live_server.url + "/")
    page.get_by_label("User name").fill("otto")
    page.get_by_label("Password").fill("otto-pass-123")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server.url + "/")
    yield page
    context.close()
    assert blocked == [], "the Content-Security-Policy blocked something"


# --- the local IAS stand-in (iasstandin) over real TLS on 127.0.0.1 ----------------------------


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    from iasstandin import StandIn

    with StandIn() as running:
        running.ca_file = tmp_path_factory.mktemp("standin") / "ca.pem"
        running.ca_file.write_bytes(running.ca_pem)
        yield running


@pytest.fixture
def ias(standin):
    """The stand-in behaving like IAS, with no lockouts or records, and no cached JWKS on our side."""
    from certmgr.core.tokenflow import forget_cached_state

    standin.reset()
    forget_cached_state()
    yield standin
    standin.reset()


@pytest.fixture
def ias_settings(settings, ias):
    """Portal settings that trust the stand-in: its host allowed, its CA trusted, short timeouts."""
    settings.CERTMGR_TENANT_HOSTS = ["127.0.0.1"]
    settings.CERTMGR_CA_BUNDLE = str(ias.ca_file)
    settings.CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT = 2
    settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT = 2
    # Its protected backend is not a tenant call: loopback is reached only by being listed here.
    settings.CERTMGR_OUTBOUND_ALLOW = ["127.0.0.1"]
    return settings


def log_in_through(settings, ias, client_id: str, secret: str | None) -> None:
    """Portal settings for logging in through the stand-in, as a SECRET identity binding gives them."""
    settings.CERTMGR_OIDC = {
        "issuer": ias.url,
        "client_id": client_id,
        "client_secret": secret,
        "certificate_pem": None,
        "key_pem": None,
        "authorization_endpoint": f"{ias.url}/oauth2/authorize",
        "end_session_endpoint": f"{ias.url}/oauth2/logout",
    }
    settings.OIDC_RP_CLIENT_ID = client_id
    settings.LOGIN_URL = "oidc_authentication_init"
    settings.CERTMGR_LOCAL_LOGIN = "admins"


@pytest.fixture
def client_cert():
    """The certificate 'frontend' authenticates with (its own key slot, so it differs from ``leaf``)."""
    return certs.issue("frontend-app (P000042)", key_slot=3, serial=0x4242)


@pytest.fixture
def checked_app(ias, ias_settings, frontend_app, store, client_cert):
    """'frontend' pointed at the stand-in: certificate and key stored, certificate registered in IAS."""
    frontend_app.tenant_url = ias.url
    frontend_app.domains = []
    frontend_app.backend_url = ias.backend_url + "/hello"
    frontend_app.save()
    store(client_cert.key_pem() + client_cert.pem, frontend_app, store_keys=True)
    ias.register(frontend_app.client_id, client_cert.pem)
    yield frontend_app
    ias.unregister(frontend_app.client_id)


@pytest.fixture
def staged_cert(checked_app, store, ias):
    """Frontend's successor: stored with its key as staged, registered in IAS beside the active one."""
    successor = certs.issue("frontend-app (P000042)", key_slot=4, serial=0x4343)
    stored = store(successor.key_pem() + successor.pem, checked_app, store_keys=True)
    stored.lifecycle = stored.Lifecycle.STAGED
    stored.save()
    ias.register(checked_app.client_id, successor.pem)
    return stored


@pytest.fixture
def mid_life():
    """Frozen at MID_LIFE: every certificate of the suite is valid, for us and for the stand-in."""
    with time_machine.travel(certs.MID_LIFE, tick=False):
        yield


# --- real receivers for notices (tests/receivers.py) --------------------------------------------


@pytest.fixture
def smtp(settings):
    """A real SMTP server on 127.0.0.1, and Django's mail pointed at it."""
    from tests.receivers import SmtpReceiver

    with SmtpReceiver() as receiver:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", receiver.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        yield receiver


@pytest.fixture
def webhook(settings, tmp_path):
    """A real HTTPS endpoint on 127.0.0.1 whose CA the portal trusts."""
    from certmgr.notifications.channels import alert_notification
    from tests.receivers import HttpsReceiver

    # Tokens kept by an earlier test's receiver would be offered to this one when the OS hands it the
    # same port again: a new receiver is a new token endpoint.
    alert_notification._tokens.clear()
    with HttpsReceiver(tmp_path) as receiver:
        settings.CERTMGR_CA_BUNDLE = str(receiver.ca_file)
        settings.CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT = settings.CERTMGR_HEALTHCHECK_READ_TIMEOUT = 3
        settings.CERTMGR_OUTBOUND_ALLOW = ["127.0.0.1"]  # a receiver on loopback, allowed explicitly
        yield receiver


# --- DNS and sockets under the test's control (the outbound address guard) ---------------------


class Resolver:
    """socket.getaddrinfo for test names: each maps to a list of answers, used in turn (the last one
    repeats); every other name goes to the real resolver. ``lookups``: the test names asked for."""

    def __init__(self, monkeypatch):
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def __setitem__(self, name: str, addresses: list[str]) -> None:
        self.answers[name] = [addresses]

    def getaddrinfo(self, host, port, *args, **kwargs):
        if host not in self.answers:
            return self._real(host, port, *args, **kwargs)
        self.lookups.append(host)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [info for address in addresses for info in self._real(address, port, *args, **kwargs)]


@pytest.fixture
def dns(monkeypatch):
    return Resolver(monkeypatch)


@pytest.fixture
def connects(monkeypatch):
    """Every address a socket of this process connects to, from now on."""
    seen = []
    real = socket.socket.connect

    def connect(sock, address):
        seen.append(address[:2])
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return seen
