"""In real headless Chromium: upload a .p12 → see what was found → save → dashboard → certificate page.

The browser, the clock (20 days before expiry) and Otto's logged-in page come from tests/conftest.py.
"""

from __future__ import annotations

import pytest

from tests import certs

pytestmark = [pytest.mark.browser]


def test_it_uploads_a_p12_and_shows_it_on_the_dashboard_and_certificate_page(
    page, live_server, frontend_app, tmp_path
):
    issued = certs.issue("frontend-app (P000042)", key_slot=11)
    p12 = tmp_path / "frontend.p12"
    p12.write_bytes(certs.p12(issued, b"IAS-generated-pw"))
    colon_fp = ":".join(issued.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()

    page.goto(f"{live_server.url}/apps/frontend/upload/")
    page.get_by_label("File").set_input_files(str(p12))
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Check").click()
    assert page.get_by_role("alert").first.inner_text() == "Wrong password for this PKCS#12 file."

    page.get_by_label("File").set_input_files(str(p12))
    page.get_by_label("Password").fill("IAS-generated-pw")
    page.get_by_label("Store the private key (encrypted) for health checks").check()
    page.get_by_role("button", name="Check").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Found in frontend.p12"
    assert page.get_by_test_id("fingerprint").inner_text() == colon_fp
    assert "stored encrypted" in page.content()
    assert frontend_app.certificates.count() == 0  # nothing saved before confirming

    page.get_by_role("button", name="Save certificate").click()
    assert "Certificate stored with its private key (encrypted)." in page.locator("ul.messages").inner_text()
    assert page.get_by_test_id("fingerprint").inner_text() == colon_fp
    assert "2027-01-15 09:00:00 UTC" in page.content()

    page.get_by_role("link", name="Applications").click()
    row = page.get_by_role("row", name="Frontend")
    assert "in 20 days\tExpiring" in row.inner_text()
    assert row.locator("time").get_attribute("title") == "2027-01-15 09:00 UTC"  # the exact time on hover
    row.get_by_role("link", name="Frontend").click()
    page.get_by_role("link", name=issued.subject).click()
    assert page.get_by_test_id("fingerprint").inner_text() == colon_fp
    assert "IAS-generated-pw" not in page.content()
    assert "PRIVATE KEY" not in page.content()

    header_colour = page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor")
    assert header_colour == "rgb(20, 33, 61)"  # the stylesheet came from the portal itself
    assert all(url.startswith(live_server.url) for url in page.requested)  # no CDN, no network

    stored = frontend_app.certificates.get()
    assert stored.fingerprint == issued.fingerprint
    assert stored.has_private_key
