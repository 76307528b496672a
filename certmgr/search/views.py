"""The header's search box (applications and certificates on one page) and the pickers' suggestions."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from ..lib.viewkit import param
from ..models import Application, Certificate
from . import picker

RESULTS = 20  # per kind on the search page; the list pages have the rest


@require_safe
def search(request):
    query = param(request, "q").strip()[:200]
    now = timezone.now()
    apps, more_apps = picker.suggestions(Application.objects.all(), query, RESULTS) if query else ([], False)
    certs = []
    if query:
        found = Certificate.objects.select_related("application").search(query).order_by("not_after", "pk")
        certs = list(found[: RESULTS + 1])
    return render(
        request,
        "certmgr/search/results.html",
        {
            "query": query,
            "applications": apps,
            "more_applications": more_apps,
            "rows": [(c, c.expiry_state(now), c.days_left(now)) for c in certs[:RESULTS]],
            "more_certificates": len(certs) > RESULTS,
        },
    )


@require_safe
def application_suggestions(request):
    """At most picker.LIMIT applications for what was typed; ``scope=managed``: those one may upload to."""
    scope = Application.objects.all()
    if param(request, "scope") == "managed":
        scope = Application.objects.managed_by(request.user)
    found, more = picker.suggestions(scope, param(request, "q")[:200])
    response = JsonResponse(
        {
            "applications": [
                {"slug": a.slug, "name": a.name, "client_id": a.client_id, "url": a.get_absolute_url()}
                for a in found
            ],
            "more": more,
        }
    )
    response["Cache-Control"] = "private, no-store"
    return response
