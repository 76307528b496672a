"""The health check in the portal's pages: the run button (streamed or plain), history, dashboard."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from certmgr.healthcheck import runner as healthchecks
from certmgr.models import AuditEvent, HealthCheckRun

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def run_url(app) -> str:
    return reverse("health-check", args=[app.slug])


def test_the_application_page_offers_the_check_to_owners(otto, checked_app):
    page = otto.get(checked_app.get_absolute_url())
    assert "Last result: not checked yet" in text_of(page)
    assert f'action="{run_url(checked_app)}"' in page.content.decode()


def test_a_viewer_sees_results_but_cannot_run_the_check(client, viewer, checked_app, ias):
    client.force_login(viewer)
    assert run_url(checked_app) not in client.get(checked_app.get_absolute_url()).content.decode()
    assert client.post(run_url(checked_app)).status_code == 403
    assert ias.token_requests == [] and not AuditEvent.objects.filter(action="key_read").exists()


def test_without_javascript_the_button_runs_the_check_and_opens_the_result(otto, checked_app):
    response = otto.post(run_url(checked_app))

    run = HealthCheckRun.objects.get()
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    page = text_of(otto.get(run.get_absolute_url()))
    assert "Healthy: IAS issued a token for this certificate and the backend accepted it." in page
    assert page.count(" ok ") >= 4
    assert f"aud {checked_app.client_id}" in page and "x5t#S256" in page
    assert run.trigger == HealthCheckRun.Trigger.MANUAL and run.actor_label == "otto"


def test_the_streamed_run_reports_each_step_then_the_verdict(otto, checked_app, ias):
    ias.faults.backend_status = 403

    response = otto.post(run_url(checked_app), HTTP_ACCEPT="application/x-ndjson")

    assert response.streaming and response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [line["step"]["name"] for line in lines[:-1]] == [
        "discovery",
        "token",
        "token_validation",
        "backend",
    ]
    assert [line["step"]["ok"] for line in lines[:-1]] == [True, True, True, False]
    assert lines[-1]["done"] is True and lines[-1]["ok"] is False
    assert lines[-1]["summary"].startswith(
        "Failed at backend: The backend accepted the token but denied access (403)"
    )
    assert lines[-1]["url"] == HealthCheckRun.objects.get().get_absolute_url()


def test_a_check_that_cannot_run_says_why_in_both_forms(otto, frontend_app):
    streamed = otto.post(run_url(frontend_app), HTTP_ACCEPT="application/x-ndjson")
    [line] = [json.loads(x) for x in b"".join(streamed.streaming_content).splitlines()]
    assert line == {
        "error": "The health check cannot run: No active certificate with a stored private key: "
        "upload the certificate with its key."
    }

    plain = otto.post(run_url(frontend_app), follow=True)
    assert "The health check cannot run: No active certificate" in text_of(plain)
    assert not HealthCheckRun.objects.exists()


def test_the_history_draws_the_latency_of_each_step(otto, checked_app, ias):
    for _ in range(3):
        healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")
    ias.unregister(checked_app.client_id)
    healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")

    page = otto.get(reverse("health-history", args=[checked_app.slug])).content.decode()

    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count("<polyline") == 4  # discovery, token, validation, backend
    assert svg.count("<title>failed") == 1
    assert page.count('<span class="badge badge-valid">healthy</span>') == 3
    assert "failed: token (invalid_client)" in page


def test_the_dashboard_shows_each_applications_last_result(otto, checked_app, backend_app, ias):
    healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")
    page = text_of(otto.get(reverse("dashboard")))
    assert "Frontend" in page and "healthy" in page and "not checked yet" in page

    ias.unregister(checked_app.client_id)
    healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")
    healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")
    page = text_of(otto.get(reverse("dashboard")))
    assert "failed: token (invalid_client) paused" in page


def test_the_application_page_explains_a_paused_schedule(otto, checked_app, ias):
    ias.unregister(checked_app.client_id)
    for _ in range(2):
        healthchecks.run_check(checked_app, trigger="manual", actor_label="otto")

    page = text_of(otto.get(checked_app.get_absolute_url()))

    assert "Scheduled checks are paused: IAS refused the client twice in a row" in page
    assert f"Register the certificate for client id {checked_app.client_id} in IAS" in page


# --- "Run health check with this certificate" (certificate and rotation pages) -------------------


def test_the_certificate_page_checks_that_certificate_without_javascript(otto, checked_app, staged_cert):
    page = otto.get(staged_cert.get_absolute_url()).content.decode()
    assert f'<input type="hidden" name="certificate" value="{staged_cert.pk}">' in page

    response = otto.post(run_url(checked_app), {"certificate": staged_cert.pk})

    run = HealthCheckRun.objects.get()
    assert response["Location"] == run.get_absolute_url()
    assert run.ok and run.certificate == staged_cert
    checked_app.refresh_from_db()
    assert checked_app.last_check is None and staged_cert.lifecycle == "staged"  # the one in use is unchanged
    assert "Latest run with this certificate: healthy" in text_of(otto.get(staged_cert.get_absolute_url()))


def test_the_streamed_check_with_a_certificate_ends_with_its_verdict(otto, checked_app, staged_cert):
    response = otto.post(
        run_url(checked_app), {"certificate": staged_cert.pk}, HTTP_ACCEPT="application/x-ndjson"
    )

    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [line["step"]["name"] for line in lines[:-1]] == [
        "discovery",
        "token",
        "token_validation",
        "backend",
    ]
    assert lines[-1]["done"] and lines[-1]["ok"]
    assert HealthCheckRun.objects.get().certificate == staged_cert


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [
        ("999999", "No such certificate in this application."),
        ("x", "No such certificate in this application."),
    ],
)
def test_a_certificate_that_is_not_the_applications_is_refused(otto, checked_app, certificate, reason):
    response = otto.post(
        run_url(checked_app), {"certificate": certificate}, HTTP_ACCEPT="application/x-ndjson"
    )

    assert json.loads(b"".join(response.streaming_content)) == {
        "error": f"The health check cannot run: {reason}"
    }
    assert not HealthCheckRun.objects.exists()


def test_a_retired_certificate_is_not_checked(otto, checked_app, staged_cert):
    staged_cert.lifecycle = staged_cert.Lifecycle.RETIRED
    staged_cert.save()

    response = otto.post(run_url(checked_app), {"certificate": staged_cert.pk})

    assert response["Location"] == staged_cert.get_absolute_url()
    assert "The certificate is retired: IAS may no longer know it." in text_of(otto.get(response["Location"]))
    assert not HealthCheckRun.objects.exists()
