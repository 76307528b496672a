"""The list pages at fleet scale (issue 16, point 3): columns sort on the server, pages are numbered,
failing and paused health checks have a tile and a filter, applications are picked by typing, the
tables export to CSV with the filters shown, and one search box finds applications and certificates.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from certmgr.lib.listing import page_numbers, safe_cell
from certmgr.lib.words import counted, relative
from certmgr.models import Application, AuditEvent, Certificate, HealthCheckRun
from tests import certs

NOW = certs.TWENTY_DAYS_BEFORE_EXPIRY
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def text_of(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def first_cells(response) -> list[str]:
    return [
        html.unescape(m)
        for m in re.findall(r'<th scope="row"><a href="[^"]+">([^<]+)</a>', response.content.decode())
    ]


@pytest.fixture
def fleet(frontend_app, owner):
    """Six applications with made-up certificates: names, tenants and expiries in different orders."""
    apps = [frontend_app]
    for i, (name, tenant) in enumerate(
        [("Zeta", "b"), ("alpha", "c"), ("Mid", "a"), ("Beta", ""), ("Omega", "a")]
    ):
        tenant_url = f"https://{tenant}.accounts.ondemand.com" if tenant else ""
        apps.append(
            Application.objects.create(
                name=name, slug=name.lower(), tenant_url=tenant_url, client_id=f"c-{i}"
            )
        )
    for i, app in enumerate(apps):
        app.owners.add(owner)
        facts = certs.made_up_facts(i, NOW + (10 + 7 * ((i * 5) % 6)) * DAY, cn=app.slug)
        Certificate.objects.create(application=app, tenant=app.tenant, **facts)
    return apps


# --- sorting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["alpha", "Beta", "Frontend", "Mid", "Omega", "Zeta"]),
        ("-name", ["Zeta", "Omega", "Mid", "Frontend", "Beta", "alpha"]),
        # Equal tenants keep one order (by name), either way round.
        ("tenant", ["Beta", "Mid", "Omega", "Zeta", "alpha", "Frontend"]),
        ("-tenant", ["Frontend", "alpha", "Zeta", "Omega", "Mid", "Beta"]),
        ("expiry", ["Frontend", "Omega", "Beta", "Mid", "alpha", "Zeta"]),
    ],
)
def test_the_dashboard_sorts_by_a_column_on_the_server(otto, fleet, sort, expected):
    assert first_cells(otto.get(reverse("dashboard"), {"sort": sort})) == expected


def test_a_sort_outside_the_list_is_the_default_order(otto, fleet):
    default = first_cells(otto.get(reverse("dashboard")))
    for bogus in ("password", "-owners__password", "1; drop table", "--name"):
        assert first_cells(otto.get(reverse("dashboard"), {"sort": bogus})) == default


def test_a_column_heading_says_how_the_list_is_sorted_and_turns_it_round(otto, fleet):
    page = otto.get(reverse("dashboard"), {"sort": "name", "q": "a"}).content.decode()

    heading = re.search(
        r'<th scope="col" aria-sort="ascending"><a class="sort" href="([^"]+)">Application', page
    )
    assert heading and html.unescape(heading[1]) == "?q=a&sort=-name"
    assert 'href="?q=a&amp;sort=-active"' in page  # "Active" counts: most first
    assert page.count("aria-sort=") == 1


def test_the_certificate_list_sorts_by_application_and_subject(otto, fleet):
    by_app = [
        s.split(",")[0] for s in first_cells(otto.get(reverse("certificates"), {"sort": "application"}))
    ]
    by_subject = first_cells(otto.get(reverse("certificates"), {"sort": "-subject"}))

    assert by_app == [
        "CN=alpha-0002",
        "CN=beta-0004",
        "CN=frontend-0000",
        "CN=mid-0003",
        "CN=omega-0005",
        "CN=zeta-0001",
    ]
    assert by_subject == sorted(by_subject, reverse=True)


# --- pages, tiles and filters -------------------------------------------------------------------


def test_pages_are_numbered_first_neighbours_last():
    assert page_numbers(1, 1) == [1]
    assert page_numbers(1, 9) == [1, 2, 3, None, 9]
    assert page_numbers(5, 9) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert page_numbers(10, 40) == [1, None, 8, 9, 10, 11, 12, None, 40]
    assert page_numbers(40, 40) == [1, None, 38, 39, 40]


def test_the_pager_links_each_number_and_marks_this_page(otto, frontend_app):
    Certificate.objects.bulk_create(
        Certificate(application=frontend_app, **certs.made_up_facts(n, NOW + n * DAY)) for n in range(501)
    )

    page = otto.get(reverse("certificates"), {"page": 6, "lifecycle": "active"}).content.decode()
    numbers = re.findall(
        r'<a href="\?lifecycle=active(?:&amp;page=(\d+))?" (?:aria-current="page" )?aria-label="Page (\d+)',
        page,
    )

    assert [int(label) for _, label in numbers] == [1, 4, 5, 6, 7, 8, 11]  # 11 pages of 501
    assert 'aria-current="page" aria-label="Page 6, this page"' in page
    assert page.count('class="gap"') == 2


def test_the_dashboard_counts_failing_and_paused_checks_and_filters_them(otto, fleet):
    zeta, mid = fleet[1], fleet[3]
    for app, paused in ((zeta, False), (mid, True)):
        run = HealthCheckRun.objects.create(application=app, trigger="scheduled", ok=False, failed_step="token",
                                            code="invalid_client", steps=[])  # fmt: skip
        Application.objects.filter(pk=app.pk).update(last_check=run, checks_paused=paused)
    healthy = HealthCheckRun.objects.create(application=fleet[0], trigger="manual", ok=True, steps=[])
    Application.objects.filter(pk=fleet[0].pk).update(last_check=healthy)

    response = otto.get(reverse("dashboard"))
    tiles = {name: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", tile)).strip() for name, tile in
             re.findall(r'data-testid="tile-(\w+)">(.*?)</li>', response.content.decode(), re.S)}  # fmt: skip

    assert tiles == {"failing": "2 failing health checks", "paused": "1 paused health check"}
    assert first_cells(otto.get(reverse("dashboard"), {"health": "failing"})) == ["Mid", "Zeta"]
    assert first_cells(otto.get(reverse("dashboard"), {"health": "paused"})) == ["Mid"]
    assert first_cells(otto.get(reverse("dashboard"), {"sort": "health"}))[:3] == ["Mid", "Zeta", "Frontend"]


# --- picking an application by typing ------------------------------------------------------------


def test_the_certificate_filter_takes_a_slug_a_name_or_a_part_of_one(otto, fleet):
    def apps_listed(text):
        response = otto.get(reverse("certificates"), {"application": text})
        return sorted({s.split("-")[0].removeprefix("CN=") for s in first_cells(response)}), text_of(response)

    assert apps_listed("zeta")[0] == ["zeta"]
    assert apps_listed("Omeg")[0] == ["omega"]  # one match: chosen
    several, page = apps_listed("eta")  # Zeta and Beta
    assert several == ["beta", "zeta"]
    assert "2 applications match “eta”" in page and "Choose one" in page
    nothing, page = apps_listed("nothing-like-it")
    assert nothing == [] and "No application matches “nothing-like-it”" in page


def test_the_suggestions_are_at_most_ten_and_say_whether_there_are_more(otto, owner, frontend_app):
    Application.objects.bulk_create(
        Application(name=f"Payroll {i:02d}", slug=f"payroll-{i:02d}") for i in range(12)
    )

    many = otto.get(reverse("search-applications"), {"q": "payroll"}).json()
    exact = otto.get(reverse("search-applications"), {"q": "payroll-11"}).json()
    mine = otto.get(reverse("search-applications"), {"q": "", "scope": "managed"}).json()

    assert len(many["applications"]) == 10 and many["more"] is True
    assert [a["slug"] for a in exact["applications"]] == ["payroll-11"] and exact["more"] is False
    assert mine == {"applications": [{"slug": "frontend", "name": "Frontend", "client_id": frontend_app.client_id,
                                      "url": "/apps/frontend/"}], "more": False}  # fmt: skip


# --- CSV export ------------------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_certificate_csv_has_the_rows_filtered_and_sorted_as_shown(otto, fleet):
    response = otto.get(reverse("certificates"), {"q": "a", "sort": "-expiry", "export": "csv"})

    rows = read_csv(response)
    shown = first_cells(otto.get(reverse("certificates"), {"q": "a", "sort": "-expiry"}))
    assert [row["subject"] for row in rows] == shown
    assert rows[0].keys() >= {"application", "not after (UTC)", "state", "days left", "sha-256 fingerprint"}
    frontend = next(row for row in rows if row["application"] == "frontend")
    assert (frontend["state"], frontend["days left"], frontend["private key held"]) == (
        "expiring",
        "10",
        "no",
    )


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_quoted(otto, frontend_app):
    facts = certs.made_up_facts(1, NOW + 5 * DAY)
    Certificate.objects.create(application=frontend_app, **{**facts, "subject": '=HYPERLINK("http://x","y")'})
    AuditEvent.objects.create(
        action="application_changed", actor_label="@evil", detail="+1-2", application=frontend_app
    )

    [cert] = read_csv(otto.get(reverse("certificates"), {"export": "csv"}))
    assert cert["subject"] == '\'=HYPERLINK("http://x","y")'
    assert [safe_cell(v) for v in ("-2", "\tx", "plain", -2, None)] == ["'-2", "'\tx", "plain", "-2", ""]


def test_the_audit_log_exports_and_sorts_for_admins_only(client, admin_user, owner, frontend_app):
    for i, who in enumerate(["carol", "=bob", "alice"]):
        AuditEvent.objects.create(action="application_changed", actor_label=who, application=frontend_app,
                                  at=NOW - i * DAY, detail=f"change {i}")  # fmt: skip
    client.force_login(admin_user)

    rows = read_csv(
        client.get(reverse("audit-log"), {"application": "front", "sort": "actor", "export": "csv"})
    )
    newest_first = first_cells_of_audit(client.get(reverse("audit-log"), {"action": "application_changed"}))

    assert [row["who"] for row in rows] == ["'=bob", "alice", "carol"]
    assert rows[0]["what"] == "application changed" and rows[0]["application"] == "frontend"
    assert newest_first[:3] == ["carol", "=bob", "alice"]
    client.force_login(owner)
    assert client.get(reverse("audit-log"), {"export": "csv"}).status_code == 403


def first_cells_of_audit(response) -> list[str]:
    rows = re.findall(r"<tr>\s*<td[^>]*>.*?</td>\s*<td>([^<]*)</td>", response.content.decode(), re.S)
    return [html.unescape(r) for r in rows]


# --- one search box ---------------------------------------------------------------------------------


def test_one_search_finds_applications_and_certificates(otto, fleet, frontend_app):
    cert = frontend_app.certificates.get()

    by_client_id = otto.get(reverse("search"), {"q": frontend_app.client_id[:8]}).content.decode()
    by_fingerprint = otto.get(reverse("search"), {"q": cert.fingerprint[:12]})
    by_subject = otto.get(reverse("search"), {"q": "omega-0005"})

    assert re.findall(r'<li><a href="(/apps/[^"]+)">', by_client_id) == ["/apps/frontend/"]
    assert first_cells(by_fingerprint) == [cert.subject]
    assert first_cells(by_subject) == ["CN=omega-0005,O=Example Corp,C=DE"]
    assert "No application matches." in text_of(by_subject)


# --- words -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=20), "in less than a minute"),
        (timedelta(minutes=-1), "1 minute ago"),
        (timedelta(hours=3, minutes=59), "in 3 hours"),
        (timedelta(hours=-47), "47 hours ago"),
        (timedelta(days=12, hours=23), "in 12 days"),
        (timedelta(days=-400), "400 days ago"),
        (timedelta(days=800), "in 2 years"),
    ],
)
def test_relative_times_are_whole_units_rounded_down(delta, words):
    assert relative(NOW + delta, NOW) == words


def test_counts_have_their_plural():
    assert [counted(n, "certificate") for n in (0, 1, 2)] == [
        "0 certificates",
        "1 certificate",
        "2 certificates",
    ]
    assert counted(1, "entry,entries") == "1 entry" and counted(3, "entry,entries") == "3 entries"


def test_a_time_on_a_list_page_has_the_exact_utc_time_on_hover(otto, fleet):
    page = otto.get(reverse("certificates")).content.decode()

    first = re.search(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', page)
    assert first.groups() == ("2027-01-05T09:00:00+00:00", "2027-01-05 09:00 UTC", "in 10 days")
