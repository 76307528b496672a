"""Drift, where people see it: a binding that still holds a retired, expired, unknown or outgoing
certificate is red on the application page and the dashboard and is notified; after the rotation
reached it, it is green; a certificate no binding holds is "not deployed"."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from certmgr.models import Application, Binding, Certificate, Notice, NotificationChannel
from certmgr.notifications import ledger as notify
from iasstandin.cfapi import World
from tests import certs
from tests.cfworld import FOUND_CLIENT, PROVIDED, credentials, instance, world

pytestmark = pytest.mark.django_db

NEW = certs.issue(
    "frontend-app (P000042)", key_slot=7, serial=0x7101, not_after=certs.EXPIRES + timedelta(days=365)
)
SPARE = certs.issue(
    "frontend-app (P000042)", key_slot=8, serial=0x7102, not_after=certs.EXPIRES + timedelta(days=200)
)
DRIFT_SUBJECT = "[IAS certificates] Frontend: a Cloud Foundry binding still holds a retired certificate"


def sync(cf, **world_options) -> None:
    cf.world = World.from_dict(world(**world_options))
    call_command("cf_sync", stdout=StringIO())


def rows(client, url) -> dict[str, tuple[str, str]]:
    """Binding rows of a page: {what it is: (verdict, badge class)}."""
    html = client.get(url).content.decode()
    found = {}
    for binding in Binding.objects.all():
        start = html.find(f'data-binding="{binding.guid}"')
        if start < 0:
            continue
        row = html[start : html.index("</tr>", start)]
        verdict = row.split('data-verdict="', 1)[1].split('"', 1)[0]
        badge = row.split('class="badge badge-', 1)[1].split('"', 1)[0]
        found[binding.app_name or binding.name] = (verdict, badge)
    return found


@pytest.fixture
def rotated(frontend_app, store):
    """'frontend' rotated from its old certificate (retired) to a new one (active)."""
    old = store(PROVIDED.pem, frontend_app)
    old.lifecycle = Certificate.Lifecycle.RETIRED
    old.save()
    return old, store(NEW.pem, frontend_app)


@pytest.fixture
def mail_channel(frontend_app, owner, smtp):
    owner.email = "otto@example.com"
    owner.save()
    return NotificationChannel.objects.create(
        application=frontend_app, kind="email", name="team mail", options={"include_owners": True}
    )


def test_a_binding_that_holds_a_retired_certificate_is_red_and_notified(
    cf, rotated, otto, mail_channel, smtp
):
    sync(cf)  # the rotation did not reach the app binding: it still holds the old certificate

    assert rows(otto, "/apps/frontend/")["frontend"] == ("retired", "expired")
    assert rows(otto, reverse("dashboard")) == {"frontend": ("retired", "expired")}
    page = otto.get("/apps/frontend/").content.decode()
    assert "Still holds a retired certificate: rotate this binding." in page

    now = certs.MID_LIFE
    assert notify.plan(now) == 1
    notify.deliver(now)
    [mail] = smtp.mails
    assert mail.subject == DRIFT_SUBJECT
    text = mail.message.get_body(("plain",)).get_content()
    assert "acme/dev, instance frontend-ias, bound to app frontend" in text
    assert PROVIDED.fingerprint in text
    assert notify.plan(now) == 0  # once


def test_when_the_rotation_reaches_the_binding_it_turns_green(cf, rotated, otto, mail_channel):
    sync(cf)
    _, new = rotated

    sync(cf, frontend_holds=NEW, frontend_binding="frontend-2027")  # unbind, bind with the new one

    assert rows(otto, "/apps/frontend/") == {"frontend": ("in_use", "valid"), "test-key": ("in_use", "valid")}
    assert Binding.objects.get(app_name="frontend").certificate == new
    dashboard = otto.get(reverse("dashboard")).content.decode()
    assert "none in drift" in dashboard and "data-binding=" not in dashboard
    assert notify.plan(certs.MID_LIFE) == 0  # nothing holds the retired one any more


def test_a_certificate_no_binding_holds_is_not_deployed(cf, rotated, store, frontend_app, otto):
    spare = store(SPARE.pem, frontend_app)
    sync(cf, frontend_holds=NEW)

    page = otto.get("/apps/frontend/").content.decode()
    listed = page[page.index('data-testid="deployment"') :]
    spare_item = listed[listed.index(f'data-certificate="{spare.pk}"') :].split("</li>", 1)[0]
    assert "not deployed" in spare_item
    new_item = listed[listed.index(f'data-certificate="{rotated[1].pk}"') :].split("</li>", 1)[0]
    assert "deployed</span> held by 1 binding" in new_item
    assert f'data-certificate="{rotated[0].pk}"' not in listed  # retired: not expected anywhere


def test_only_applications_with_bindings_show_the_panel(cf, frontend_app, backend_app, otto):
    sync(cf)

    assert 'data-testid="drift-panel"' in otto.get("/apps/frontend/").content.decode()
    assert 'data-testid="drift-panel"' not in otto.get("/apps/backend/").content.decode()


def test_an_expired_certificate_in_a_binding_is_red(cf, frontend_app, client, owner):
    with time_machine.travel(certs.AFTER_EXPIRY, tick=False):
        sync(cf)
        client.force_login(owner)  # a login lasts a working day, not half a year

        assert rows(client, "/apps/frontend/")["frontend"] == ("expired", "expired")


def test_a_certificate_that_cannot_be_read_is_unknown_and_red(cf, frontend_app, otto):
    broken = {**credentials("X509_PROVIDED", PROVIDED), "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n"}

    sync(cf, frontend_holds=broken)

    verdict, badge = rows(otto, "/apps/frontend/")["frontend"]
    assert (verdict, badge) == ("unknown", "expired")
    assert "could not be read" in Binding.objects.get(app_name="frontend").problem


def test_an_outgoing_certificate_while_a_newer_one_is_active_is_red(cf, frontend_app, store, client, owner):
    store(PROVIDED.pem, frontend_app)
    store(NEW.pem, frontend_app)  # both active: the new one is there, the binding not moved yet

    with time_machine.travel(certs.TWENTY_DAYS_BEFORE_EXPIRY, tick=False):
        sync(cf)
        client.force_login(owner)

        assert rows(client, "/apps/frontend/")["frontend"] == ("superseded", "expired")
        page = client.get("/apps/frontend/").content.decode()
        assert "Expires in 20 days while a newer certificate is active in the portal" in page


def test_expiry_notices_cover_discovered_certificates(cf, frontend_app, smtp):
    sync(cf)
    found = Application.objects.get(client_id=FOUND_CLIENT)
    NotificationChannel.objects.create(
        application=found, kind="email", name="mail", options={"addresses": ["found-team@example.com"]}
    )

    now = certs.TWENTY_DAYS_BEFORE_EXPIRY
    with time_machine.travel(now, tick=False):
        assert notify.plan(now) == 1
        notify.deliver(now)

    [mail] = smtp.mails
    assert mail.subject == "[IAS certificates] found-ias: certificate expires in 20 days"
    assert Notice.objects.get().certificate.application == found


def test_the_pages_need_the_same_queries_for_few_bindings_as_for_many(cf, frontend_app, otto):
    sync(cf)
    few = {url: queries(otto, url) for url in ("/apps/frontend/", reverse("dashboard"))}

    more = [
        instance(
            f"frontend-ias-{n}",
            "acme/dev",
            [{"type": "key", "name": f"k{n}", "credentials": credentials("X509_PROVIDED", PROVIDED)}],
        )
        for n in range(12)
    ]
    sync(cf, extra_instances=more)

    assert Binding.objects.filter(application=frontend_app).count() == 14
    assert {url: queries(otto, url) for url in few} == few


def queries(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)
