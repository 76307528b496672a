"""After a promotion: the new certificate is checked at once (once, by the page or by the worker),
the application's health is not the old certificate's, and the retired certificate warns no one."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from certmgr.feeds.calendars import calendar_for
from certmgr.feeds.metrics import render_metrics
from certmgr.healthcheck import runner, schedule
from certmgr.models import Application, Certificate, HealthCheckRun
from certmgr.notifications import ledger
from certmgr.notifications.models import Notice, NotificationChannel
from certmgr.rotation import plan
from tests import certs

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
NOW = certs.TWENTY_DAYS_BEFORE_EXPIRY


def text_of(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


@pytest.fixture
def otto(client, owner):
    with time_machine.travel(NOW, tick=False):
        client.force_login(owner)
        yield client


@pytest.fixture
def successor(checked_app, store, ias):
    """Frontend's next certificate, with its key, staged and registered in IAS beside the one in use."""
    item = certs.issue(
        "frontend-app (P000042)", key_slot=7, serial=0x7070, not_after=certs.EXPIRES + 365 * DAY
    )
    stored = store(item.key_pem() + item.pem, checked_app, store_keys=True)
    Certificate.objects.filter(pk=stored.pk).update(lifecycle=Certificate.Lifecycle.STAGED)
    ias.register(checked_app.client_id, item.pem)
    return Certificate.objects.get(pk=stored.pk)


def promote(client, cert):
    return client.post(
        reverse("application-promote", args=[cert.application.slug, cert.pk]), {"confirm": "yes"}
    )


def test_the_new_certificate_is_checked_right_after_the_promotion(otto, checked_app, successor):
    old_run = runner.run_check(checked_app, trigger="manual", actor_label="otto")

    response = promote(otto, successor)

    checked_app.refresh_from_db()
    run = checked_app.last_check
    assert run != old_run and run.certificate == successor and run.ok
    assert run.actor_label == "otto (after promotion)"
    assert checked_app.next_check_at == NOW + timedelta(minutes=checked_app.check_interval_minutes)  # claimed
    page = text_of(otto.get(response["Location"]))
    assert "Health check with the new certificate: Healthy: IAS issued a token for this certificate" in page
    assert re.search(r"Last result: healthy", page)
    assert "Frontend" in text_of(otto.get("/")) and "healthy" in text_of(otto.get("/"))


def test_a_worker_that_claims_it_first_runs_it_and_the_page_does_not_again(checked_app, successor, owner):
    with time_machine.travel(NOW, tick=False):
        plan.promote(successor, actor=owner)
        [run] = schedule.run_due(timezone.now())  # the worker's round: the application is due at once
        assert plan.check_now(checked_app, actor=owner) is None

    assert run.certificate == successor and run.ok
    assert HealthCheckRun.objects.filter(certificate=successor).count() == 1


def test_until_the_new_certificate_is_checked_the_health_says_so(otto, frontend_app, store, leaf):
    store(leaf.pem)
    keyless = store(certs.issue("frontend-app (P000042)", key_slot=8, serial=0x8080).pem)
    Certificate.objects.filter(pk=keyless.pk).update(lifecycle=Certificate.Lifecycle.STAGED)
    old_run = HealthCheckRun.objects.create(application=frontend_app, trigger="manual", ok=True, steps=[])
    Application.objects.filter(pk=frontend_app.pk).update(last_check=old_run)

    response = promote(otto, Certificate.objects.get(pk=keyless.pk))

    page = text_of(otto.get(response["Location"]))
    assert "Last result: not checked with the new certificate yet" in page
    assert "The new certificate is not checked yet: No active certificate with a stored private key" in page
    dashboard = otto.get("/").content.decode()
    assert re.search(
        r"Frontend</a></th>.*?not checked yet", dashboard, re.S
    )  # not the old certificate's "healthy"


def test_the_retired_certificate_warns_no_one(otto, owner, frontend_app, store, leaf, settings):
    """At 20 days before its expiry the old certificate is retired: no badge, metric, calendar event
    or expiry notice for it any more, and one notice that it was replaced."""
    settings.CERTMGR_METRICS_TOKEN = "metrics-token"
    old = store(leaf.pem)
    new = store(
        certs.issue(
            "frontend-app (P000042)", key_slot=9, serial=0x9090, not_after=certs.EXPIRES + 90 * DAY
        ).pem
    )
    Certificate.objects.filter(pk=new.pk).update(lifecycle=Certificate.Lifecycle.STAGED)
    NotificationChannel.objects.create(
        application=frontend_app, kind="email", name="mail", options={"addresses": ["o@x.example"]}
    )
    with time_machine.travel(NOW - 11 * DAY, tick=False):
        ledger.plan(timezone.now())  # 31 days left: the 60-day notice for the old one
    promote(otto, Certificate.objects.get(pk=new.pk))

    with time_machine.travel(NOW + 14 * DAY, tick=False):  # 6 days left: the 7-day threshold is crossed
        otto.force_login(owner)
        planned = ledger.plan(timezone.now())
        certificate_page = text_of(otto.get(reverse("certificate", args=[old.pk])))
        application_page = text_of(otto.get(frontend_app.get_absolute_url()))
        metrics = render_metrics(timezone.now()).decode()
        calendar = calendar_for(owner).decode()

    assert "Retired · no longer in use" in certificate_page and "Expiring" not in certificate_page
    assert "Retired · no longer in use" in application_page
    assert old.fingerprint not in metrics and new.fingerprint in metrics
    assert old.fingerprint not in calendar
    assert planned == 2  # Otto (an owner) and the extra address: one "replaced" notice each
    events = Notice.objects.filter(certificate=old).values_list("event", "threshold")
    assert sorted(set(events)) == [("resolved", 0), ("threshold", 60)]  # no 7-day notice


def test_a_retired_certificate_gets_its_replaced_notice_even_if_the_new_one_ends_sooner(
    owner, frontend_app, store, leaf
):
    old = store(leaf.pem)
    shorter = store(certs.issue("frontend-app (P000042)", key_slot=10, serial=0xA0A0,
                                not_after=certs.EXPIRES - 5 * DAY).pem)  # fmt: skip
    Certificate.objects.filter(pk=shorter.pk).update(lifecycle=Certificate.Lifecycle.STAGED)
    NotificationChannel.objects.create(
        application=frontend_app, kind="email", name="mail", options={"addresses": ["o@x.example"]}
    )
    with time_machine.travel(NOW, tick=False):
        ledger.plan(timezone.now())
        plan.promote(Certificate.objects.get(pk=shorter.pk), actor=owner)
        ledger.plan(timezone.now())

    assert set(Notice.objects.filter(certificate=old).values_list("event", flat=True)) == {
        "threshold",
        "resolved",
    }
