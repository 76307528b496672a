from __future__ import annotations

import pytest
from django.core.management import call_command

from tests import certs


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
    """Vera, logged in but owning nothing: she may look, not change."""
    return django_user_model.objects.create_user("vera", "vera@example.com", "vera-pass-123")


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
    from certmgr.importer import Importer

    def _store(data: bytes, app=None, *, password=None, store_keys=False):
        importer = Importer(app or frontend_app, store_keys=store_keys, actor_label="test")
        [result] = importer.save([("test", parse_certificate_input(data, password))])
        assert result.ok, result.error
        return result.certificate

    return _store


@pytest.fixture
def leaf():
    """The standard client certificate of the suite: issued at ISSUED, expires at EXPIRES."""
    return certs.issue()
