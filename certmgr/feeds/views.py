"""Feeds for machines, each with its own authentication instead of a login: /metrics (a bearer token
from the configuration) and the calendar feeds (a secret URL per user); and the page where a user
makes that URL and opts in to the daily digest.
"""

from __future__ import annotations

import hmac
import secrets

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from ..notifications.models import UserPreference
from .calendars import calendar_for, feed_token_digest, visible_applications
from .metrics import render_metrics

CALENDAR_CONTENT_TYPE = "text/calendar; charset=utf-8"

# The account page's form actions (the name of the button pressed).
ACTION_NEW_FEED_URL = "new-feed-url"
ACTION_REMOVE_FEED_URL = "remove-feed-url"
ACTION_SAVE_DIGEST = "save-digest"


# --- /metrics ------------------------------------------------------------------------------------


@login_not_required
@require_safe
def metrics(request):
    expected = settings.CERTMGR_METRICS_TOKEN
    if not expected:
        raise Http404("Metrics are disabled: CERTMGR_METRICS_TOKEN is not set.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="certmgr metrics"'
        return response
    response = HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


# --- calendar feeds ------------------------------------------------------------------------------


def _feed_user(token: str):
    """The active user whose feed token this is; 404 for anything else (never tell why)."""
    preference = (
        UserPreference.objects.select_related("user")
        .filter(feed_token_sha256=feed_token_digest(token), user__is_active=True)
        .first()
    )
    if not token or preference is None:
        raise Http404("No such feed.")
    return preference.user


def _calendar_response(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=CALENDAR_CONTENT_TYPE)
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-cache"
    return response


@login_not_required
@require_safe
def feed_all(request, token):
    user = _feed_user(token)
    return _calendar_response(calendar_for(user), "ias-certificates.ics")


@login_not_required
@require_safe
def feed_application(request, token, slug):
    user = _feed_user(token)
    app = get_object_or_404(visible_applications(user), slug=slug)
    return _calendar_response(calendar_for(user, app), f"ias-certificates-{app.slug}.ics")


def feed_urls(request, token: str) -> dict:
    """The feed URLs of ``token``, absolute (CERTMGR_PORTAL_URL), as a calendar subscribes to them."""
    base = settings.CERTMGR_PORTAL_URL
    return {
        "all": base + reverse("feed-all", args=[token]),
        "applications": [
            (app, base + reverse("feed-application", args=[token, app.slug]))
            for app in visible_applications(request.user).order_by("name")
        ],
    }


# --- the account page ----------------------------------------------------------------------------


@require_http_methods(["GET", "HEAD", "POST"])
def account_calendar(request):
    preference = UserPreference.objects.filter(user=request.user).first()
    if request.method == "POST":
        action = request.POST.get("action")
        preference = preference or UserPreference(user=request.user)
        if action == ACTION_NEW_FEED_URL:
            return _new_feed_url(request, preference)
        if action == ACTION_REMOVE_FEED_URL:
            preference.feed_token_sha256 = ""
            preference.save()
            messages.success(
                request, "The feed URL was removed: calendars subscribed to it get nothing more."
            )
            return redirect("account-calendar")
        if action == ACTION_SAVE_DIGEST:
            preference.daily_digest = request.POST.get("daily_digest") == "on"
            preference.save()
            messages.success(
                request,
                "Daily digest switched on." if preference.daily_digest else "Daily digest switched off.",
            )
            return redirect("account-calendar")
        messages.error(request, "Unknown action; nothing was changed.")
        return redirect("account-calendar")
    return _page(request, preference)


def _new_feed_url(request, preference: UserPreference) -> HttpResponse:
    """A new secret: shown in this one answer, of which only the hash is kept; the old URL stops working."""
    replaced = bool(preference.feed_token_sha256)
    token = secrets.token_urlsafe(32)
    preference.feed_token_sha256 = feed_token_digest(token)
    preference.save()
    # Rendered here, not after a redirect: the token must not wait in the session store.
    response = _page(request, preference, token=token, replaced=replaced)
    response["Cache-Control"] = "no-store"
    return response


def _page(request, preference, *, token: str = "", replaced: bool = False) -> HttpResponse:
    return render(
        request,
        "certmgr/feeds/account_calendar.html",
        {
            "preference": preference,
            "has_feed": bool(preference and preference.feed_token_sha256),
            "token": token,
            "urls": feed_urls(request, token) if token else None,
            "replaced": replaced,
            "daily_digest": bool(preference and preference.daily_digest),
            "ACTION_NEW_FEED_URL": ACTION_NEW_FEED_URL,
            "ACTION_REMOVE_FEED_URL": ACTION_REMOVE_FEED_URL,
            "ACTION_SAVE_DIGEST": ACTION_SAVE_DIGEST,
        },
    )
