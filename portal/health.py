"""/healthz: is this instance able to serve? Cheap enough to be asked every few seconds."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpResponse
from django.views.decorators.cache import never_cache

log = logging.getLogger(__name__)


@login_not_required
@never_cache
def healthz(request):
    """200 "ok" when the database answers SELECT 1, else 503 (the instance gets restarted)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("health probe: the database does not answer: %s", exc)
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
