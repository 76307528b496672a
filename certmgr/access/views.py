"""The audit log for admins: who did what, when, from which address; filterable, sortable, exportable."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from ..lib.listing import Column, Listing, Sorting, csv_response, paginate
from ..lib.viewkit import param
from ..models import Application, AuditEvent
from ..search import picker

PAGE_SIZE = 100
FILTERS = ("action", "application", "actor", "since", "until")
AUDIT_SORT = Sorting(
    {
        "at": Column("When", ("at",), descending_first=True),
        "actor": Column("Who", ("actor_label", "at")),
        "action": Column("What", ("action", "at")),
        "application": Column("Application", ("application__slug", "at"), nulls_last=True),
    },
    default="-at",
)
CSV_FIELDS = (
    "at",
    "actor_label",
    "action",
    "application__slug",
    "certificate__fingerprint",
    "remote_addr",
    "detail",
)


def audit_log(request):
    if not request.user.is_superuser:
        raise PermissionDenied("Only admins may read the audit log.")
    listing = Listing.of(request, AUDIT_SORT, keep=FILTERS)
    filters = {name: listing.query.get(name, "") for name in FILTERS}
    events = AuditEvent.objects.select_related("application", "certificate")
    if filters["action"] in AuditEvent.Action.values:
        events = events.filter(action=filters["action"])
    chosen = picker.pick(Application.objects.all(), filters["application"])
    if chosen.application is not None:
        events = events.filter(application=chosen.application)
    elif chosen.text:
        events = events.filter(application__in=chosen.matches(Application.objects.all()))
    if filters["actor"]:
        events = events.filter(actor_label__icontains=filters["actor"])
    events, errors = _in_days(events, filters)
    events = events.order_by(*listing.order_by)
    if param(request, "export") == "csv":
        return _csv(events)
    page = paginate(request, events, PAGE_SIZE)
    return render(
        request,
        "certmgr/access/audit_log.html",
        {
            "page": page,
            "filters": filters,
            "listing": listing,
            "chosen": chosen,
            "choices": [(app, listing.link(application=app.slug, page="")) for app in chosen.choices],
            "actions": AuditEvent.Action.choices,
            "errors": errors,
        },
    )


def _in_days(events, filters: dict) -> tuple:
    errors = []
    for name, lookup, shift in (("since", "at__gte", timedelta(0)), ("until", "at__lt", timedelta(days=1))):
        if filters[name]:
            day = _day(filters[name])
            if day is None:
                errors.append(f"“{filters[name][:40]}” is not a date (YYYY-MM-DD).")
            else:
                events = events.filter(**{lookup: day + shift})
    return events, errors


def _csv(events):
    labels = dict(AuditEvent.Action.choices)
    rows = events.values_list(*CSV_FIELDS).iterator(chunk_size=2000)
    header = ["at (UTC)", "who", "what", "application", "certificate sha-256", "from", "detail"]
    return csv_response(
        "audit-log", header, ((at, who, labels.get(what, what), *rest) for at, who, what, *rest in rows)
    )


def _day(text: str) -> datetime | None:
    """The start of a UTC day between 2000 and 2999 (a day after 9999-12-31 does not exist)."""
    try:
        day = datetime.strptime(text[:10] + " +0000", "%Y-%m-%d %z")
    except ValueError:
        return None
    return day if 2000 <= day.year <= 2999 and len(text) == 10 else None
