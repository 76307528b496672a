"""A step that passed with a warning (a token bound to no certificate) says so everywhere a run is
shown: `healthcheck --json`, its text output, the stored run, the run's page and the live steps."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from certmgr.management.commands.healthcheck import run_as_json
from certmgr.models import HealthCheckRun
from tests.test_health_pages import text_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]

UNBOUND = "the token is not bound to the certificate (no cnf claim)"


@pytest.fixture
def unbound_app(checked_app, ias):
    ias.configure_client(checked_app.client_id, unbound_tokens=True)
    return checked_app


def healthcheck(*args) -> str:
    out = io.StringIO()
    call_command("healthcheck", *args, stdout=out)  # exits only when not healthy
    return out.getvalue()


def test_healthcheck_json_lists_the_warnings_of_each_step(unbound_app):
    result = json.loads(healthcheck("frontend", "--json"))

    assert result["ok"] is True
    assert {step["name"]: step["warnings"] for step in result["steps"]} == {
        "discovery": [],
        "token": [],
        "token_validation": [UNBOUND],
        "backend": [],
    }
    [run] = HealthCheckRun.objects.all()
    assert run.ok is True and run.failed_step == ""
    assert run.steps[2]["warnings"] == [UNBOUND]


def test_healthcheck_prints_a_warning_line_under_its_step(unbound_app):
    lines = healthcheck("frontend").splitlines()

    assert lines[2].startswith("ok   token_validation")
    assert lines[3] == f"     warning: {UNBOUND}"
    assert lines[4].startswith("ok   backend") and lines[-1] == "frontend: healthy"


def test_a_run_stored_before_warnings_existed_prints_none(checked_app):
    call_command("healthcheck", "frontend", "--json", stdout=io.StringIO())
    run = HealthCheckRun.objects.get()
    run.steps = [{k: v for k, v in step.items() if k != "warnings"} for step in run.steps]
    run.save()

    assert [step["warnings"] for step in run_as_json(run)["steps"]] == [[], [], [], []]


def test_the_runs_page_and_the_live_steps_show_the_warning(client, owner, unbound_app):
    client.force_login(owner)

    streamed = client.post(
        reverse("health-check", args=[unbound_app.slug]), HTTP_ACCEPT="application/x-ndjson"
    )
    lines = [json.loads(line) for line in b"".join(streamed.streaming_content).splitlines() if line]
    page = client.get(HealthCheckRun.objects.get().get_absolute_url())

    [validation] = [line["step"] for line in lines if line.get("step", {}).get("name") == "token_validation"]
    assert validation["ok"] is True and validation["warnings"] == [UNBOUND]
    assert f"warning: {UNBOUND}" in text_of(page)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_live_steps_show_the_warning_under_their_step(page, live_server, unbound_app):
    page.goto(live_server.url + unbound_app.get_absolute_url())

    page.get_by_role("button", name="Run health check").click()

    validation = page.locator('#health-steps li[data-step="token_validation"]')
    expect(page.get_by_test_id("health-summary")).to_contain_text("Healthy", timeout=10_000)
    expect(validation).to_have_class("step-ok")
    expect(validation.locator(".step-warning")).to_have_text(f"warning: {UNBOUND}")
    page.get_by_role("button", name="Run health check").click()  # a second run starts clean
    expect(page.get_by_test_id("health-summary")).to_contain_text("Healthy", timeout=10_000)
    expect(validation.locator(".step-warning")).to_have_count(1)
