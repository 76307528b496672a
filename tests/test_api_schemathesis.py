"""schemathesis against the live OpenAPI document, through the portal's WSGI application: with a
read token and with a write token, every operation gets generated valid and invalid calls; no
answer is a 5xx, every answer has a documented status code and content type and fits its schema.

The world has something of everything (an application checked against the local IAS stand-in,
active and staged certificates with keys, a run, channels, notices). Every check runs but "positive data acceptance": the portal refuses
more than a schema can say (an address that is no email address, a plain-http webhook, text that is
no certificate), with a 400 the document lists. Nothing leaves the machine:
name resolution answers only for loopback, so a generated webhook URL or tenant fails at once.
"""

from __future__ import annotations

import socket

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from certmgr.models import Certificate, HealthCheckRun, Notice, NotificationChannel
from tests import certs
from tests.apiclient import make_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]
EXAMPLES = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same calls each run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture
def loopback_only(monkeypatch):
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: only loopback in this test")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def keep_the_test_connection():
    """As Django's test client does: the WSGI handler would otherwise close the database connection
    (and the test's transaction with it) after a request once CONN_MAX_AGE has passed."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(checked_app, store, ias, settings, loopback_only, keep_the_test_connection):
    settings.CERTMGR_API_THROTTLE = ""  # the generated calls would exceed any sensible rate
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    successor = certs.issue("frontend-app (P000042)", key_slot=4, serial=0x4343)
    staged = store(successor.key_pem() + successor.pem, checked_app, store_keys=True)
    staged.lifecycle = Certificate.Lifecycle.STAGED
    staged.save()
    ias.register(checked_app.client_id, successor.pem)
    channel = NotificationChannel.objects.create(application=checked_app, kind="email", name="mail")
    Notice.objects.create(application=checked_app, channel=channel, event="test", recipient="o@example.com")
    HealthCheckRun.objects.create(application=checked_app, trigger="manual", ok=True, steps=[])
    return checked_app


def schema_for(token: str):
    return schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", WSGIHandler(), headers={"Authorization": f"Bearer {token}"}
    )


def real_ids(world) -> dict[str, dict]:
    """Path parameters of things that exist, by operation path: random ones are mostly 404s."""
    staged = world.certificates.get(lifecycle=Certificate.Lifecycle.STAGED)
    return {
        "/api/v1/certificates/{id}/": {"id": staged.pk},
        "/api/v1/certificates/{id}/parameters/": {"id": staged.pk},
        "/api/v1/certificates/{id}/promote/": {"id": staged.pk},
        "/api/v1/applications/{slug}/health-checks/{id}/": {
            "slug": world.slug,
            "id": world.health_checks.first().pk,
        },
        "/api/v1/applications/{slug}/channels/{id}/": {"slug": world.slug, "id": world.channels.first().pk},
        "/api/v1/applications/{slug}/channels/{id}/test/": {
            "slug": world.slug,
            "id": world.channels.first().pk,
        },
    }


def exercise(world, token: str) -> list[str]:
    """Every operation with valid and invalid calls, on things that exist and on made-up paths: the
    failures, as "METHOD path (mode): what schemathesis found"."""
    schema = schema_for(token)
    headers = {"Authorization": f"Bearer {token}"}
    existing = real_ids(world)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 18
    for operation in operations:
        real = existing.get(operation.path, {"slug": world.slug} if "{slug}" in operation.path else None)
        for mode, path_parameters in (
            (GenerationMode.POSITIVE, real),
            (GenerationMode.NEGATIVE, real),
            (GenerationMode.POSITIVE, None),
        ):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @given(case=strategy)
            @EXAMPLES
            def call(case):
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

            try:
                call()
            except (Exception, FailureGroup) as exc:  # noqa: BLE001 - one run reports every operation
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    return failures


def test_the_api_keeps_its_document_with_a_read_token(world, owner):
    failures = exercise(world, make_token(owner))
    assert not failures, "\n\n".join(failures)


def test_the_api_keeps_its_document_with_a_write_token(world, owner):
    failures = exercise(world, make_token(owner, write=True))
    assert not failures, "\n\n".join(failures)
