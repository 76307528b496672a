"""The whole rotation in headless Chromium, as Otto does it, 20 days before his certificate expires:
new key → CSR downloaded → signed by a CA outside the portal → uploaded → matched to its key →
staged → checked green against the IAS stand-in while the active one stays active → parameters →
promote → the new active certificate is checked at once, green; the old one retired, no warning.
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from certmgr.models import Certificate
from tests import certs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_rotation_from_a_new_key_to_a_verified_switch(page, live_server, checked_app, ias, client_cert):
    rotation_url = live_server.url + reverse("application-rotation", args=["frontend"])
    page.goto(rotation_url)

    # A new key, and its CSR for the subject DN in use.
    expect(page.get_by_label("CSR subject (RFC 4514)")).to_have_value(client_cert.subject)
    page.get_by_label("Key type").select_option("ec-p256")
    page.get_by_role("button", name="Generate key and CSR").click()
    expect(page.locator("ul.messages")).to_contain_text("New EC P-256 key generated and stored encrypted.")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSR").click()
    csr_pem = Path(download.value.path()).read_bytes()

    # A CA outside the portal signs it (the suite's test CA, at fixed instants).
    _, intermediate, _ = certs.ca_hierarchy()
    new = certs.sign_csr(
        csr_pem,
        intermediate,
        not_before=certs.TWENTY_DAYS_BEFORE_EXPIRY - timedelta(days=1),
        not_after=certs.EXPIRES + timedelta(days=365),
        serial=0xC5C5,
    )

    # Uploaded as staged: the preview names the pending key; it is stored with it.
    page.goto(live_server.url + reverse("application-upload", args=["frontend"]))
    page.get_by_label("…or paste").fill(new.pem.decode())
    page.get_by_label("Staged for rotation: it replaces the active one later").check()
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_test_id("pending-key-match")).to_contain_text("EC P-256 key generated in the portal")
    expect(page.get_by_test_id("preview-checks")).to_contain_text("Valid now.")
    page.get_by_role("button", name="Save certificate").click()
    expect(page.locator("ul.messages")).to_contain_text("stored with the private key generated in the portal")
    staged = Certificate.objects.get(fingerprint=new.fingerprint)
    assert (staged.lifecycle, staged.has_private_key) == ("staged", True)

    # Registered in IAS beside the old one (step 1), then checked green while the old one stays in use.
    ias.register(checked_app.client_id, new.pem)
    page.goto(rotation_url)
    page.locator(f'form.health-run:has(input[name="certificate"][value="{staged.pk}"]) button').click()
    expect(page.get_by_test_id(f"health-summary-{staged.pk}")).to_contain_text(
        "Healthy: IAS issued a token for this certificate and the backend accepted it.", timeout=10_000
    )
    assert Certificate.objects.get(fingerprint=client_cert.fingerprint).lifecycle == "active"
    checked_app.refresh_from_db()
    assert checked_app.last_check is None  # a staged run is not the application's health

    # The parameters: the first step creates a new service key with the new certificate.
    create = shlex.split(page.locator("#cmd-cf-key-1").inner_text())
    assert create[:4] == [
        "cf",
        "create-service-key",
        "frontend-ias",
        f"frontend-ias-key-{new.fingerprint[:8]}",
    ]
    assert json.loads(create[5])["certificate"].splitlines()[1] == new.pem.decode().splitlines()[1]

    # Promote: the new certificate is checked at once, green; the old one is retired without warnings.
    page.get_by_label(re.compile("The new binding works")).check()
    page.get_by_role("button", name="Promote staged certificate").click()
    expect(page.locator("ul.messages")).to_contain_text("The staged certificate is now active")
    expect(page.get_by_test_id("health-last")).to_contain_text("healthy")
    checked_app.refresh_from_db()
    assert checked_app.last_check.certificate == staged and checked_app.last_check.ok
    old_row = page.get_by_role("row", name=re.compile(re.escape(client_cert.subject))).filter(
        has_text="Retired"
    )
    expect(old_row).to_contain_text("Retired · no longer in use")
    expect(old_row).not_to_contain_text("Expiring")
    page.goto(live_server.url + "/")
    expect(page.get_by_role("row", name="Frontend")).to_contain_text("healthy")
    expect(page.get_by_role("row", name="Frontend")).to_contain_text("in 385 days")  # the new expiry
    expect(page.get_by_role("row", name="Frontend")).to_contain_text("Valid")
    assert "PRIVATE KEY" not in page.content()
    assert all(url.startswith(live_server.url) for url in page.requested)  # no CDN, no other host
