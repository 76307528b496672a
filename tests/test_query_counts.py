"""The pages cost the same number of SQL queries for 6 certificates as for 300.

Rows are inserted directly (bulk_create, made-up but plausible facts): this is about queries,
not parsing.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from certmgr.models import Application, AuditEvent, Certificate
from tests import certs

LIFECYCLES = [
    Certificate.Lifecycle.ACTIVE,
    Certificate.Lifecycle.ACTIVE,
    Certificate.Lifecycle.STAGED,
    Certificate.Lifecycle.RETIRED,
]


@pytest.fixture(autouse=True)
def _mid_life():
    with time_machine.travel(certs.MID_LIFE, tick=False):
        yield


def populate(first: int, last: int, per_app: int, owner) -> None:
    """Applications first..last-1, each with ``per_app`` certificates in varied states."""
    apps = Application.objects.bulk_create(
        Application(
            name=f"App {i:03d}",
            slug=f"app-{i:03d}",
            client_id=f"client-{i:03d}",
            tenant_url=f"https://tenant{i % 7}.accounts.ondemand.com",
            domains=["accounts.ondemand.com"],
        )
        for i in range(first, last)
    )
    apps = list(Application.objects.filter(slug__in=[a.slug for a in apps]))
    add_certificates(apps, range(per_app))
    for app in apps:
        app.owners.add(owner)


def add_certificates(apps, numbers) -> None:
    rows = []
    for app in apps:
        for j in numbers:
            n = int(app.slug.removeprefix("app-")) * 1000 + j
            facts = certs.made_up_facts(n, certs.ISSUED + timedelta(days=(n * 37) % 900), cn=app.slug)
            rows.append(Certificate(application=app, tenant=app.tenant, lifecycle=LIFECYCLES[j % 4], **facts))
    Certificate.objects.bulk_create(rows)


def queries_for(client, url) -> tuple[int, int]:
    """(queries, table rows) for one page view, after a warm-up view of the same page."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), len(re.findall(r'<th scope="row">', response.content.decode()))


PAGES = {
    "dashboard": lambda: reverse("dashboard"),
    "certificates": lambda: reverse("certificates"),
    "certificates-filtered": lambda: reverse("certificates") + "?lifecycle=active&sort=-expiry&q=CN%3Dapp",
    "application": lambda: reverse("application", args=["app-000"]),
    # Sorted, filtered, picked by typing: still no query per row.
    "dashboard-sorted": lambda: reverse("dashboard") + "?sort=-health&q=app",
    "certificates-picked": lambda: (
        reverse("certificates") + "?sort=application&application=app-0&state=valid"
    ),
    "search": lambda: reverse("search") + "?q=app-0",
}


@pytest.mark.parametrize("page", PAGES)
def test_the_number_of_queries_does_not_grow_with_the_data(client, owner, page):
    client.force_login(owner)
    populate(0, 3, 3, owner)  # active, active, staged: the application page shows its rotation panel
    small, small_rows = queries_for(client, PAGES[page]())

    populate(3, 60, 5, owner)
    add_certificates(Application.objects.filter(slug__in=["app-000", "app-001", "app-002"]), range(3, 5))
    assert Certificate.objects.count() == 300
    add_certificates(Application.objects.filter(slug="app-000"), range(5, 60))
    large, large_rows = queries_for(client, PAGES[page]())

    assert large_rows > small_rows  # the larger page really shows more rows
    assert large == small, f"{page}: {small} queries for {small_rows} rows, {large} for {large_rows}"


@pytest.mark.parametrize("persona", ["admin_user", "owner", "viewer"])
def test_each_page_needs_only_a_handful_of_queries(client, request, owner, persona):
    """Session, user, permissions, the rows, a count: nothing per row, whoever is looking."""
    populate(0, 60, 5, owner)
    client.force_login(request.getfixturevalue(persona))

    counts = {page: queries_for(client, make())[0] for page, make in PAGES.items()}

    # The application page also plans the rotation to its staged certificate (3 queries: the staged,
    # the active, their latest checks), asks whether the application was checked before (1), and its
    # notifications panel counts channels and failed notices (1 query). Every page asks for the
    # user's role (1 query, none for an admin).
    assert counts.pop("application") <= 15
    assert max(counts.values()) <= 9, counts


def test_the_audit_log_costs_the_same_few_queries_sorted_and_filtered(client, admin_user, owner):
    client.force_login(admin_user)
    url = reverse("audit-log") + "?sort=application&application=app-0&action=certificate_changed"

    def events(apps):
        AuditEvent.objects.bulk_create(
            AuditEvent(action="certificate_changed", actor_label="test", application=app, certificate=cert)
            for app in apps
            for cert in app.certificates.all()
        )

    populate(0, 3, 3, owner)
    events(Application.objects.all())
    small, small_rows = audit_queries(client, url)
    populate(3, 60, 5, owner)
    events(Application.objects.filter(slug__gte="app-003"))
    large, large_rows = audit_queries(client, url)

    assert large_rows > small_rows
    assert large == small <= 8, f"{small} queries for {small_rows} rows, {large} for {large_rows}"


def audit_queries(client, url) -> tuple[int, int]:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode().count("<tr>") - 1
