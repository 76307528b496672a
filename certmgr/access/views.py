"""The audit log for admins: who did what, when, from which address; filterable."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.http import urlencode

from ..lib.viewkit import param
from ..models import AuditEvent

PAGE_SIZE = 100


def audit_log(request):
    if not request.user.is_superuser:
        raise PermissionDenied("Only admins may read the audit log.")
    filters = {
        name: param(request, name).strip() for name in ("action", "application", "actor", "since", "until")
    }
    events = AuditEvent.objects.select_related("application", "certificate").order_by("-at", "-pk")
    if filters["action"] in AuditEvent.Action.values:
        events = events.filter(action=filters["action"])
    if filters["application"]:
        events = events.filter(application__slug=filters["application"])
    if filters["actor"]:
        events = events.filter(actor_label__icontains=filters["actor"])
    errors = []
    for name, lookup, shift in (("since", "at__gte", timedelta(0)), ("until", "at__lt", timedelta(days=1))):
        if filters[name]:
            day = _day(filters[name])
            if day is None:
                errors.append(f"“{filters[name][:40]}” is not a date (YYYY-MM-DD).")
            else:
                events = events.filter(**{lookup: day + shift})
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "certmgr/access/audit_log.html",
        {
            "page": page,
            "filters": filters,
            "actions": AuditEvent.Action.choices,
            "errors": errors,
            "querystring": urlencode({k: v for k, v in filters.items() if v}),
        },
    )


def _day(text: str) -> datetime | None:
    """The start of a UTC day between 2000 and 2999 (a day after 9999-12-31 does not exist)."""
    try:
        day = datetime.strptime(text[:10] + " +0000", "%Y-%m-%d %z")
    except ValueError:
        return None
    return day if 2000 <= day.year <= 2999 and len(text) == 10 else None
