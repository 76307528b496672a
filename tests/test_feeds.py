"""/metrics and the calendar feeds, read back as their consumers read them.

/metrics is parsed with prometheus_client's own parser, the feeds with the icalendar library;
both authenticate without a login (a bearer token, a secret URL), so each rule is tested here.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from icalendar import Calendar
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from certmgr.models import Application, Certificate, HealthCheckRun
from certmgr.notifications.models import Notice, NotificationChannel, UserPreference
from tests import certs

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]

METRICS_TOKEN = "s3cret-metrics-token"
PORTAL = "https://certs.example.com"
SUBJECT = "CN=frontend-app (P000042),O=Example Corp,C=DE"


@pytest.fixture
def metrics_token(settings):
    settings.CERTMGR_METRICS_TOKEN = METRICS_TOKEN
    return METRICS_TOKEN


@pytest.fixture(autouse=True)
def portal_url(settings):
    settings.CERTMGR_PORTAL_URL = PORTAL


def scrape(client) -> str:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    return response.content.decode()


def metric(text: str, name: str, *labels: str) -> dict[tuple, float]:
    """{values of ``labels``, in that order: value} of one metric family; no other labels allowed."""
    [family] = [f for f in text_string_to_metric_families(text) if f.name == name]
    assert all(set(sample.labels) == set(labels) for sample in family.samples), family.samples
    return {tuple(sample.labels[label] for label in labels): sample.value for sample in family.samples}


CERT = ("application", "fingerprint", "subject", "lifecycle")


def step(name, duration_ms, ok=True):
    return {"name": name, "ok": ok, "duration_ms": duration_ms, "status": 200, "diagnosis": "", "code": ""}


@pytest.fixture
def estate(frontend_app, backend_app, store, leaf):
    """Active, staged, expired and retired certificates; health checks; notices in every state."""
    active = store(leaf.pem)
    staged = store(
        certs.issue(
            "frontend-next", key_slot=1, serial=0x1001, not_after=certs.EXPIRES + timedelta(days=365)
        ).pem
    )
    staged.lifecycle = Certificate.Lifecycle.STAGED
    staged.save()
    expired = store(
        certs.issue(
            "backend-old", key_slot=2, serial=0x1002, not_after=certs.MID_LIFE - timedelta(hours=36)
        ).pem,
        backend_app,
    )
    retired = store(certs.issue("frontend-retired", key_slot=4, serial=0x1003).pem)
    retired.lifecycle = Certificate.Lifecycle.RETIRED
    retired.save()

    succeeded = HealthCheckRun.objects.create(
        application=frontend_app,
        trigger=HealthCheckRun.Trigger.SCHEDULED,
        started_at=certs.MID_LIFE - timedelta(hours=2),
        ok=True,
        steps=[
            step("discovery", 10.0),
            step("token", 120.0),
            step("token_validation", 2.0),
            step("backend", 40.0),
        ],
    )
    failed = HealthCheckRun.objects.create(
        application=frontend_app,
        trigger=HealthCheckRun.Trigger.SCHEDULED,
        started_at=certs.MID_LIFE - timedelta(hours=1),
        ok=False,
        failed_step="token",
        code="invalid_client",
        steps=[
            step("discovery", 12.5),
            step("token", 250.0, ok=False),
            step("token_validation", None, ok=None),
            step("backend", None, ok=None),
        ],
    )
    frontend_app.last_check = failed
    frontend_app.save()
    Application.objects.filter(pk=backend_app.pk).update(checks_paused=True)

    webhook = NotificationChannel.objects.create(application=frontend_app, kind="webhook", name="ops hook")
    slack = NotificationChannel.objects.create(application=frontend_app, kind="slack", name="#certs")
    for event in ("threshold", "expired"):
        Notice.objects.create(
            application=frontend_app, certificate=active, channel=webhook, event=event, state="failed"
        )
    for state in ("failed", "pending", "sending", "sent"):
        Notice.objects.create(application=frontend_app, channel=slack, event="resolved", state=state)
    # A failed test notice was answered on the page of who pressed the button: no alarm afterwards.
    Notice.objects.create(application=frontend_app, channel=slack, event="test", state="failed")
    Notice.objects.create(
        event="digest", day=certs.MID_LIFE.date(), recipient="vera@example.com", state="failed"
    )
    return {"active": active, "staged": staged, "expired": expired, "succeeded": succeeded, "failed": failed}


# --- /metrics: who may read it ---------------------------------------------------------------------


def test_metrics_are_switched_off_without_a_configured_token(client, settings):
    settings.CERTMGR_METRICS_TOKEN = ""

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong-token",
        f"Basic {METRICS_TOKEN}",
        f"Bearer {METRICS_TOKEN}x",
        METRICS_TOKEN,
    ],
)
def test_metrics_without_the_right_bearer_token_are_refused(client, metrics_token, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = client.get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"certmgr_" not in response.content


def test_metrics_need_no_login_and_accept_the_scheme_in_any_case(client, metrics_token):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {METRICS_TOKEN}")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


# --- /metrics: what it says ------------------------------------------------------------------------


def test_each_live_certificate_has_its_expiry_and_whole_days_left(client, metrics_token, estate):
    text = scrape(client)
    active, staged, expired = estate["active"], estate["staged"], estate["expired"]

    assert metric(text, "certmgr_certificate_not_after_timestamp_seconds", *CERT) == {
        ("frontend", active.fingerprint, SUBJECT, "active"): certs.EXPIRES.timestamp(),
        ("frontend", staged.fingerprint, staged.subject, "staged"): (
            certs.EXPIRES + timedelta(days=365)
        ).timestamp(),
        ("backend", expired.fingerprint, expired.subject, "active"): (
            certs.MID_LIFE - timedelta(hours=36)
        ).timestamp(),
    }
    # MID_LIFE is 2026-06-01 12:00; EXPIRES 2027-01-15 09:00: 227 days and 21 hours. Rounded down,
    # also once expired: 36 hours ago is day -2, as on the portal's pages.
    assert metric(text, "certmgr_certificate_days_left", *CERT) == {
        ("frontend", active.fingerprint, SUBJECT, "active"): 227,
        ("frontend", staged.fingerprint, staged.subject, "staged"): 592,
        ("backend", expired.fingerprint, expired.subject, "active"): -2,
    }
    assert active.days_left() == 227 and expired.days_left() == -2


def test_each_application_has_its_last_health_check_steps_and_success(client, metrics_token, estate):
    text = scrape(client)

    assert metric(text, "certmgr_applications") == {(): 2}
    assert metric(text, "certmgr_health_check_ok", "application") == {
        ("frontend",): 0
    }  # backend: never checked
    assert metric(text, "certmgr_health_check_step_duration_seconds", "application", "step") == {
        ("frontend", "discovery"): 0.0125,
        ("frontend", "token"): 0.25,
    }
    assert metric(text, "certmgr_health_check_last_success_timestamp_seconds", "application") == {
        ("frontend",): (certs.MID_LIFE - timedelta(hours=2)).timestamp()
    }
    assert metric(text, "certmgr_health_check_paused", "application") == {("backend",): 1, ("frontend",): 0}


def test_a_recovered_application_reports_ok_and_its_latest_success(
    client, metrics_token, estate, frontend_app
):
    run = HealthCheckRun.objects.create(
        application=frontend_app,
        trigger=HealthCheckRun.Trigger.MANUAL,
        started_at=certs.MID_LIFE - timedelta(minutes=5),
        ok=True,
        steps=[
            step("discovery", 8.0),
            step("token", 90.0),
            step("token_validation", 1.0),
            step("backend", None),
        ],
    )
    frontend_app.last_check = run
    frontend_app.save()

    text = scrape(client)

    assert metric(text, "certmgr_health_check_ok", "application") == {("frontend",): 1}
    assert metric(text, "certmgr_health_check_step_duration_seconds", "application", "step") == {
        ("frontend", "discovery"): 0.008,
        ("frontend", "token"): 0.09,
        ("frontend", "token_validation"): 0.001,
    }
    assert metric(text, "certmgr_health_check_last_success_timestamp_seconds", "application") == {
        ("frontend",): run.started_at.timestamp()
    }


def test_failed_and_waiting_notices_are_counted_per_application_and_channel_kind(
    client, metrics_token, estate
):
    text = scrape(client)

    assert metric(text, "certmgr_notices_failed", "application", "channel_kind") == {
        ("", "email"): 1,  # the daily digest: no application, no channel
        ("frontend", "slack"): 1,
        ("frontend", "webhook"): 2,
    }
    assert metric(text, "certmgr_notices_pending", "application", "channel_kind") == {
        ("frontend", "slack"): 2
    }


def test_only_the_portals_metrics_are_exposed(client, metrics_token, estate):
    names = {family.name for family in text_string_to_metric_families(scrape(client))}

    assert names == {
        "certmgr_certificate_not_after_timestamp_seconds",
        "certmgr_certificate_days_left",
        "certmgr_applications",
        "certmgr_health_check_ok",
        "certmgr_health_check_step_duration_seconds",
        "certmgr_health_check_last_success_timestamp_seconds",
        "certmgr_health_check_paused",
        "certmgr_notices_failed",
        "certmgr_notices_pending",
    }


def test_an_empty_portal_still_answers(client, metrics_token):
    text = scrape(client)

    assert metric(text, "certmgr_applications") == {(): 0}
    assert metric(text, "certmgr_certificate_days_left", *CERT) == {}


def populate(apps: list[Application], store, numbers: range) -> None:
    """Certificates ``numbers``, a health check and a failed notice for each application."""
    for a, app in enumerate(apps):
        for n in numbers:
            store(certs.issue(f"{app.slug}-{n}", serial=0x5000 + 100 * a + n).pem, app)
        app.last_check = HealthCheckRun.objects.create(
            application=app, trigger="scheduled", ok=True, steps=[step("discovery", 5.0)]
        )
        app.save()
        channel = NotificationChannel.objects.create(application=app, kind="email", name="owners")
        Notice.objects.create(application=app, channel=channel, event="test", state="failed")


def test_a_scrape_costs_the_same_few_queries_for_3_or_60_certificates(
    client, metrics_token, store, frontend_app
):
    apps = [frontend_app] + [
        Application.objects.create(
            name=f"App {n}", slug=f"app-{n}", tenant_url=f"https://t{n}.accounts.ondemand.com"
        )
        for n in range(2)
    ]
    counts = []
    for numbers in (range(1), range(1, 20)):  # 3 certificates, then 3 + 57 = 60
        populate(apps, store, numbers)
        with CaptureQueriesContext(connection) as queries:
            text = scrape(client)
        counts.append(len(queries))
        days = metric(text, "certmgr_certificate_days_left", *CERT)
    assert len(days) == 60
    assert counts[0] == counts[1] <= 4, counts


# --- the calendar page -------------------------------------------------------------------------------


PAGE = "/account/calendar/"


def new_feed_url(client) -> str:
    """Press the button; the token, read from the page as a user would copy it."""
    response = client.post(PAGE, {"action": "new-feed-url"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    [token] = set(re.findall(rf"{PORTAL}/feeds/([\w-]+)/all\.ics", response.content.decode()))
    return token


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_the_page_is_reached_from_the_navigation(otto):
    assert f'href="{reverse("account-calendar")}"' in otto.get("/").content.decode()
    assert reverse("account-calendar") == PAGE


def test_the_feed_url_is_shown_once_in_full_then_only_its_existence(otto, frontend_app, backend_app):
    assert "You have no feed URL yet." in text_of(otto.get(PAGE))

    response = otto.post(PAGE, {"action": "new-feed-url"})
    token = response.context["token"]

    page = response.content.decode()
    assert f"{PORTAL}/feeds/{token}/all.ics" in page
    assert f"{PORTAL}/feeds/{token}/apps/frontend.ics" in page
    assert f"{PORTAL}/feeds/{token}/apps/backend.ics" in page
    assert "shown only this once" in text_of(response)
    later = otto.get(PAGE)
    assert token not in later.content.decode()
    assert "A feed URL exists." in text_of(later)
    assert "Replace the feed URL with a new one" in text_of(later)


def test_the_token_is_kept_only_as_its_hash(otto, owner):
    token = new_feed_url(otto)

    assert len(token) >= 43  # 32 random bytes
    preference = UserPreference.objects.get(user=owner)
    assert preference.feed_token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from the introspection)
            assert not [row for row in cursor.fetchall() if token in repr(row)], table


def test_replacing_the_feed_url_invalidates_the_old_one(otto, client, frontend_app, store, leaf):
    store(leaf.pem)
    old = new_feed_url(otto)
    assert otto.get(f"/feeds/{old}/all.ics").status_code == 200

    response = otto.post(PAGE, {"action": "new-feed-url"})
    new = response.context["token"]

    assert "The old one no longer works." in text_of(response)
    assert otto.get(f"/feeds/{old}/all.ics").status_code == 404
    assert otto.get(f"/feeds/{old}/apps/frontend.ics").status_code == 404
    assert otto.get(f"/feeds/{new}/all.ics").status_code == 200


def test_removing_the_feed_url(otto, owner):
    token = new_feed_url(otto)

    response = otto.post(PAGE, {"action": "remove-feed-url"}, follow=True)

    assert "The feed URL was removed" in text_of(response)
    assert otto.get(f"/feeds/{token}/all.ics").status_code == 404
    assert UserPreference.objects.get(user=owner).feed_token_sha256 == ""


def test_the_daily_digest_opt_in_is_saved(otto, owner):
    response = otto.post(PAGE, {"action": "save-digest", "daily_digest": "on"}, follow=True)

    assert "Daily digest switched on." in text_of(response)
    assert UserPreference.objects.get(user=owner).daily_digest is True
    assert 'name="daily_digest" id="id_daily_digest" aria-describedby="id_daily_digest_helptext" checked' in (
        response.content.decode()
    )

    otto.post(PAGE, {"action": "save-digest"})
    assert UserPreference.objects.get(user=owner).daily_digest is False


def test_saving_the_digest_keeps_the_feed_url(otto, owner):
    token = new_feed_url(otto)

    otto.post(PAGE, {"action": "save-digest", "daily_digest": "on"})

    assert otto.get(f"/feeds/{token}/all.ics").status_code == 200
    assert UserPreference.objects.get(user=owner).daily_digest is True


def test_an_unknown_action_changes_nothing(otto, owner):
    response = otto.post(PAGE, {"action": "drop-tables"}, follow=True)

    assert "Unknown action" in text_of(response)
    assert not UserPreference.objects.filter(user=owner).exists()


# --- the calendar feeds --------------------------------------------------------------------------------


def calendar(response) -> Calendar:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def events(cal: Calendar) -> dict[str, object]:
    return {str(event["UID"]): event for event in cal.walk("VEVENT")}


@pytest.fixture
def feed(otto, client, estate):
    """Otto's feed token; the test client is logged out again, as a calendar app would be."""
    token = new_feed_url(otto)
    client.logout()
    return token


def test_the_whole_feed_has_one_event_per_live_certificate(client, feed, estate):
    cal = calendar(client.get(f"/feeds/{feed}/all.ics"))

    active, staged, expired = estate["active"], estate["staged"], estate["expired"]
    assert str(cal["X-WR-CALNAME"]) == "IAS certificates: all applications"
    assert cal.decoded("REFRESH-INTERVAL") == timedelta(hours=6) and str(cal["X-PUBLISHED-TTL"]) == "PT6H"
    found = events(cal)
    assert set(found) == {
        f"{active.fingerprint}-frontend@certs.example.com",
        f"{staged.fingerprint}-frontend@certs.example.com",
        f"{expired.fingerprint}-backend@certs.example.com",
    }
    event = found[f"{active.fingerprint}-frontend@certs.example.com"]
    assert event.decoded("DTSTART") == certs.EXPIRES
    assert event.decoded("DTSTART").utcoffset() == timedelta(0)
    assert str(event["SUMMARY"]) == "Frontend: IAS certificate expires"
    description = str(event["DESCRIPTION"])
    assert SUBJECT in description
    assert active.display_fingerprint in description
    assert "mytenant.accounts.ondemand.com" in description
    assert f"{PORTAL}/apps/frontend/" in description
    assert str(event["URL"]) == f"{PORTAL}/apps/frontend/"
    alarms = event.walk("VALARM")
    assert sorted(alarm.decoded("TRIGGER") for alarm in alarms) == [timedelta(days=-30), timedelta(days=-7)]
    assert {str(alarm["ACTION"]) for alarm in alarms} == {"DISPLAY"}
    assert found[f"{expired.fingerprint}-backend@certs.example.com"].decoded("DTSTART") == expired.not_after
    assert "staged for rotation" in str(
        found[f"{staged.fingerprint}-frontend@certs.example.com"]["DESCRIPTION"]
    )


def test_the_feed_of_one_application_has_only_its_certificates(client, feed, estate):
    cal = calendar(client.get(f"/feeds/{feed}/apps/backend.ics"))

    assert str(cal["X-WR-CALNAME"]) == "IAS certificates: Backend"
    assert list(events(cal)) == [f"{estate['expired'].fingerprint}-backend@certs.example.com"]
    assert str(cal.walk("VEVENT")[0]["SUMMARY"]) == "Backend: IAS certificate expires"
    assert len(events(calendar(client.get(f"/feeds/{feed}/apps/frontend.ics")))) == 2


def test_a_certificate_used_in_two_tenants_gives_two_events(client, feed, store, leaf, estate):
    partner = Application.objects.create(
        name="Partner", slug="partner", tenant_url="https://other.accounts.ondemand.com"
    )
    store(leaf.pem, partner)

    found = events(calendar(client.get(f"/feeds/{feed}/all.ics")))

    assert f"{leaf.fingerprint}-frontend@certs.example.com" in found
    assert f"{leaf.fingerprint}-partner@certs.example.com" in found


def test_the_feed_is_stable_between_fetches(client, feed):
    first = client.get(f"/feeds/{feed}/all.ics").content
    with time_machine.travel(certs.MID_LIFE + timedelta(hours=3), tick=False):
        assert client.get(f"/feeds/{feed}/all.ics").content == first


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/not-a-token/all.ics",
        "/feeds/not-a-token/apps/frontend.ics",
        "/feeds/{feed}x/all.ics",
        "/feeds/{feed}/apps/no-such-app.ics",
        "/feeds/{feed}/apps/frontend",
        "/feeds/{sha256}/all.ics",  # the stored hash is not a token
    ],
)
def test_an_unknown_token_or_application_is_not_found(client, feed, owner, path):
    sha256 = UserPreference.objects.get(user=owner).feed_token_sha256

    assert client.get(path.format(feed=feed, sha256=sha256)).status_code == 404


def test_the_feed_of_a_deactivated_user_is_gone(client, feed, owner):
    owner.is_active = False
    owner.save()

    assert client.get(f"/feeds/{feed}/all.ics").status_code == 404


def test_a_feed_costs_the_same_few_queries_however_many_certificates(client, feed, store, frontend_app):
    counts = []
    for batch in (range(0), range(40)):
        for n in batch:
            store(certs.issue(f"bulk-{n}", serial=0x7000 + n).pem)
        with CaptureQueriesContext(connection) as queries:
            client.get(f"/feeds/{feed}/all.ics")
            client.get(f"/feeds/{feed}/apps/frontend.ics")
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 7, counts  # two feeds; each also asks for the user's role
