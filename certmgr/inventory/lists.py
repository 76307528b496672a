"""How the application and certificate lists sort: the columns a page's headings and the API's
``sort`` offer (one definition for both, so a pipeline sees the order the page shows)."""

from __future__ import annotations

from django.db.models.functions import Lower

from ..lib.listing import Column, Sorting

DASHBOARD_SORT = Sorting(
    {
        "name": Column("Application", (Lower("name"),)),
        "tenant": Column("IAS tenant", ("tenant_url", Lower("name"))),
        "client": Column("Client id", ("client_id", Lower("name"))),
        "active": Column("Active", ("active_count", Lower("name")), descending_first=True),
        "expiry": Column("Next expiry", ("next_expiry", Lower("name")), nulls_last=True),
        # Failing first (False < True), then healthy, then never checked.
        "health": Column("Health check", ("last_check__ok", Lower("name")), nulls_last=True),
    },
    default="expiry",
)
CERTIFICATE_SORT = Sorting(
    {
        "subject": Column("Subject", ("subject",)),
        "application": Column("Application", (Lower("application__name"), "not_after")),
        "lifecycle": Column("Lifecycle", ("lifecycle", "not_after")),
        "expiry": Column("Not after", ("not_after",)),
        "uploaded": Column("Uploaded", ("uploaded_at",), descending_first=True),
    },
    default="expiry",
)
