"""What Otto reads on the pages, twenty days before his certificate expires.

Every page is rendered at a frozen instant (certs.TWENTY_DAYS_BEFORE_EXPIRY), so states and
"days left" are exact.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from certmgr.core.facts import format_fingerprint
from certmgr.inventory.views import PAGE_SIZE
from certmgr.models import Application, Certificate
from tests import certs

NOW = certs.TWENTY_DAYS_BEFORE_EXPIRY
DAY = timedelta(days=1)


def text_of(response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


def table_rows(response) -> list[tuple[str, str]]:
    """(first cell's link text, "state badge · expiry as a relative time") of each row, top to bottom."""
    rows = re.findall(r"<tr>(.*?)</tr>", response.content.decode(), re.S)
    found = []
    for row in rows:
        name = re.search(r'<th scope="row"><a href="[^"]+">([^<]+)</a>', row)
        badge = re.search(r'<span class="badge[^"]*">([^<]+)</span>', row)
        when = re.search(r"<time [^>]*>([^<]+)</time>", row)
        if name:
            state = html.unescape(badge[1]) if badge else ""
            found.append((html.unescape(name[1]), state + (f" · {when[1]}" if when else "")))
    return found


def listed(response) -> list[str]:
    return [name for name, _ in table_rows(response)]


@pytest.fixture(autouse=True)
def _twenty_days_before_expiry():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def portfolio(frontend_app, backend_app, store, leaf):
    """Applications in every state; subjects name what each certificate is."""
    archive = Application.objects.create(name="Archive", slug="archive")
    staging = Application.objects.create(name="Staging", slug="staging")
    Application.objects.create(name="Payroll", slug="payroll")
    retired = store(certs.issue("retired-early", serial=11, not_after=certs.EXPIRES - 10 * DAY).pem)
    Certificate.objects.filter(pk=retired.pk).update(lifecycle=Certificate.Lifecycle.RETIRED)
    return {
        "expiring": store(leaf.pem),
        "retired": retired,
        "valid": store(
            certs.issue("backend-valid", serial=12, not_after=certs.EXPIRES + 100 * DAY).pem, backend_app
        ),
        "expired": store(
            certs.issue("archive-expired", serial=13, not_after=certs.EXPIRES - 30 * DAY).pem, archive
        ),
        "future": store(
            certs.issue("staging-future", serial=14, not_before=NOW + 5 * DAY, not_after=NOW + 400 * DAY).pem,
            staging,
        ),
    }


# --- dashboard --------------------------------------------------------------------------------


def test_the_dashboard_lists_applications_by_next_expiry_with_state_and_days_left(otto, portfolio):
    rows = table_rows(otto.get(reverse("dashboard")))

    assert [name for name, _ in rows] == ["Archive", "Frontend", "Backend", "Staging", "Payroll"]
    assert dict(rows) == {
        "Archive": "Expired · 10 days ago",
        "Frontend": "Expiring · in 20 days",
        "Backend": "Valid · in 120 days",
        "Staging": "Not yet valid · in 400 days",
        "Payroll": "No active certificate",
    }


def test_the_dashboard_counts_active_certificates_by_state(otto, portfolio):
    page = text_of(otto.get(reverse("dashboard")))

    counts = dict(
        (label, int(n))
        for n, label in re.findall(r"(\d+) (active certificates|expired|expiring|not yet)", page)
    )
    assert counts == {"active certificates": 4, "expired": 1, "expiring": 1, "not yet": 1}
    assert "expiring within 30 days" in page


def test_the_dashboard_search_finds_an_application_by_client_id(otto, portfolio):
    response = otto.get(reverse("dashboard"), {"q": "5fd2be25"})

    assert listed(response) == ["Frontend"]
    assert "No application matches “nothing-like-this”" in text_of(
        otto.get(reverse("dashboard"), {"q": "nothing-like-this"})
    )


# --- certificate list -------------------------------------------------------------------------


def subjects(otto, **params) -> list[str]:
    return [s.split(",")[0].removeprefix("CN=") for s in listed(otto.get(reverse("certificates"), params))]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "expired"}, ["archive-expired"]),
        ({"state": "expiring"}, ["retired-early", "frontend-app (P000042)"]),
        ({"state": "expiring", "lifecycle": "active"}, ["frontend-app (P000042)"]),
        ({"state": "valid"}, ["backend-valid"]),
        ({"state": "not_yet_valid"}, ["staging-future"]),
        ({"application": "backend"}, ["backend-valid"]),
        ({"application": "frontend"}, ["retired-early", "frontend-app (P000042)"]),
        ({"lifecycle": "retired"}, ["retired-early"]),
        ({"q": "p000042"}, ["frontend-app (P000042)"]),
        ({"q": "Archive"}, ["archive-expired"]),
    ],
)
def test_the_certificate_list_filters(otto, portfolio, params, expected):
    assert subjects(otto, **params) == expected


def test_it_finds_a_certificate_by_fingerprint_prefix_with_or_without_colons(otto, portfolio, leaf):
    prefix = leaf.fingerprint[:10]

    for query in (prefix, prefix.upper(), format_fingerprint(prefix), format_fingerprint(prefix).lower()):
        assert subjects(otto, q=query) == ["frontend-app (P000042)"], query


def test_it_sorts_by_expiry_both_ways(otto, portfolio):
    soonest_first = [
        "archive-expired",
        "retired-early",
        "frontend-app (P000042)",
        "backend-valid",
        "staging-future",
    ]

    assert subjects(otto) == soonest_first
    assert subjects(otto, sort="expiry") == soonest_first
    assert subjects(otto, sort="-expiry") == soonest_first[::-1]


def test_unknown_filter_values_are_ignored_not_an_error(otto, portfolio):
    response = otto.get(
        reverse("certificates"), {"state": "bogus", "lifecycle": "x", "sort": "?", "page": "abc"}
    )

    assert response.status_code == 200
    assert len(listed(response)) == 5
    assert "No certificate matches these filters." in text_of(
        otto.get(reverse("certificates"), {"application": "nope"})
    )


@pytest.mark.parametrize("name", ["certificates", "dashboard"])
def test_a_nul_character_in_a_query_is_no_server_error(otto, portfolio, name):
    response = otto.get(reverse(name), {"q": "front\x00end", "application": "\x00"})

    assert response.status_code == 200


@pytest.fixture
def bulk(frontend_app):
    """55 certificates, inserted directly, one day apart."""
    app = Application.objects.create(name="Bulk", slug="bulk")
    Certificate.objects.bulk_create(
        Certificate(application=app, **certs.made_up_facts(n, certs.EXPIRES + n * DAY)) for n in range(55)
    )
    return app


def test_it_pages_fifty_certificates_at_a_time_and_keeps_the_filters(otto, bulk):
    assert PAGE_SIZE == 50
    first = otto.get(reverse("certificates"), {"application": "bulk", "sort": "-expiry"})
    second = otto.get(reverse("certificates"), {"application": "bulk", "sort": "-expiry", "page": 2})

    assert len(listed(first)) == 50 and len(listed(second)) == 5
    assert "Page 1 of 2 · 1–50 of 55" in text_of(first)
    assert 'href="?application=bulk&amp;sort=-expiry&amp;page=2" rel="next"' in first.content.decode()
    assert 'href="?application=bulk&amp;sort=-expiry" rel="prev"' in second.content.decode()
    everything = listed(first) + listed(second)
    assert everything == sorted(everything, reverse=True) and len(set(everything)) == 55


def test_a_page_past_the_end_shows_the_last_page(otto, bulk):
    response = otto.get(reverse("certificates"), {"page": 99})

    assert response.status_code == 200
    assert "Page 2 of 2" in text_of(response)


# --- application and certificate pages --------------------------------------------------------


def test_the_application_page_shows_its_facts_and_certificates(otto, portfolio, leaf):
    response = otto.get(reverse("application", args=["frontend"]))

    page = text_of(response)
    assert "Next expiry2027-01-15 09:00 UTC Expiring · 20 days left" in page
    assert "https://mytenant.accounts.ondemand.com" in page
    assert "5fd2be25-0e09-4321-8817-4a7b11a2ace2" in page
    assert "accounts.ondemand.com" in page
    assert re.search(r"Owners\s*otto", page)
    assert table_rows(response) == [
        ("CN=frontend-app (P000042),O=Example Corp,C=DE", "Expiring · in 20 days"),
        # retired: no expiry warning, its date still shown
        ("CN=retired-early,O=Example Corp,C=DE", "Retired · no longer in use · in 10 days"),
    ]
    assert format_fingerprint(leaf.fingerprint[:16]) + "…" in page
    assert "2026-01-15 09:00" in page and "staged for rotation" not in page and "retired" in page
    assert 'href="/apps/frontend/upload/"' in response.content.decode()


def test_an_application_without_certificates_says_so(otto, portfolio):
    page = text_of(otto.get(reverse("application", args=["payroll"])))

    assert "No active certificate" in page
    assert "No certificates yet." in page


@pytest.fixture
def chained(store):
    root, inter, _ = certs.ca_hierarchy()
    leaf = certs.issue(
        "frontend-app (P000042)", issuer=inter, key_slot=103, serial=0x1A2B3C, sans=("frontend.example.com",)
    )
    return store(leaf.pem + inter.pem + root.pem), (leaf, inter, root)


def test_the_certificate_page_shows_every_parsed_fact_and_the_chain(otto, chained):
    cert, (leaf, inter, root) = chained

    response = otto.get(cert.get_absolute_url())

    page = text_of(response)
    for fact in (
        "SubjectCN=frontend-app (P000042),O=Example Corp,C=DE",
        "IssuerCN=Example Client CA,O=Example Corp,C=DE",
        "Serial1A:2B:3C",
        "Not before2026-01-15 09:00:00 UTC",
        "Not after2027-01-15 09:00:00 UTC Expiring · 20 days left",
        f"SHA-256 fingerprint{format_fingerprint(leaf.fingerprint)}",
        f"x5t#S256{cert.x5t_s256}",
        "Public keyRSA 2048 bits",
        "Subject alternative namesDNS:frontend.example.com",
        "Extended key usageclientAuth",
        "CA certificateno",
        "active · uploaded 2026-12-26 09:00 UTC · from pem",
        "No private key held.",
    ):
        assert fact in page, fact
    chain = re.findall(r'<pre class="pem">(.*?)</pre>', response.content.decode(), re.S)
    assert chain == [c.pem.decode() for c in (leaf, inter, root)]


def test_the_certificate_pem_download_is_the_chain(otto, chained):
    cert, (leaf, inter, root) = chained

    response = otto.get(reverse("certificate-pem", args=[cert.pk]))

    assert response.content == leaf.pem + inter.pem + root.pem
    assert response["Content-Disposition"].startswith('attachment; filename="frontend-')


# --- unknown addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/certificates/999999/"),
        ("get", "/certificates/999999/certificate.pem"),
        ("post", "/certificates/999999/key"),
        ("post", "/certificates/999999/lifecycle"),
        ("get", "/apps/no-such-app/"),
        ("get", "/apps/no-such-app/edit/"),
        ("get", "/apps/no-such-app/upload/"),
        ("get", "/certificates/not-a-number/"),
        ("get", "/certificates/99999999999999999999999/"),
        ("post", "/certificates/99999999999999999999999/key"),
        ("get", "/nowhere/"),
    ],
)
def test_unknown_addresses_are_404_pages(otto, portfolio, method, url):
    response = getattr(otto, method)(url)

    assert response.status_code == 404
    assert "There is nothing at this address." in text_of(response)
