"""The pages of the API for people: "API tokens" (make one, shown once; revoke) and the
interactive documentation (Swagger UI from the portal's own static files: no CDN, no inline script).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.authentication import SessionAuthentication

from ...access.clientaddr import client_ip
from ...access.roles import role_of
from ...models import Application
from ...search import picker
from .. import tokens
from ..auth import ApiTokenAuthentication
from ..models import DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS, ApiToken
from ..permissions import HasPortalRole
from ..throttling import TokenRateThrottle

MAX_SCOPED = 100


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What it is for, e.g. 'GitHub Actions of shop'.")
    # Typed, not a list of every application (a fleet has hundreds): slugs, names or client ids.
    applications = forms.CharField(
        required=False,
        max_length=5_000,
        label="Applications",
        help_text="Their slugs, names or client ids, comma-separated. Empty: every application you may "
        "see (also ones added later).",
    )
    write = forms.BooleanField(
        required=False,
        label="May change things (upload, promote, run checks, channels)",
        help_text="Only where you may change them yourself. Leave unchecked for a read-only token.",
    )
    expires_days = forms.IntegerField(
        min_value=1, max_value=MAX_EXPIRY_DAYS, initial=DEFAULT_EXPIRY_DAYS, label="Expires after (days)"
    )

    def clean_applications(self) -> list[Application]:
        names = [n.strip() for n in (self.cleaned_data.get("applications") or "").split(",") if n.strip()]
        if len(names) > MAX_SCOPED:
            raise forms.ValidationError(f"At most {MAX_SCOPED} applications; leave it empty for all.")
        picks = [(name, picker.pick(Application.objects.all(), name)) for name in names]
        unclear = [name for name, found in picks if found.application is None]
        if unclear:
            raise forms.ValidationError(
                "Not one application each: %(names)s (use the slug).", params={"names": ", ".join(unclear)}
            )
        return list({found.application.pk: found.application for _, found in picks}.values())


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def api_tokens(request):
    may_create = role_of(request.user) in tokens.CREATORS
    form = TokenForm(request.POST or None)
    made = None
    if request.method == "POST":
        if not may_create:
            raise PermissionDenied("API tokens are made by owners and admins.")
        if form.is_valid():
            data = form.cleaned_data
            row, token = tokens.create(
                request.user,
                name=data["name"],
                applications=list(data["applications"]),
                write=data["write"],
                expires_days=data["expires_days"],
                actor=request.user,
                remote_addr=client_ip(request),
            )
            made = {"row": row, "token": token}  # shown on this answer only, never again
            form = TokenForm()
    rows = ApiToken.objects.filter(user=request.user).prefetch_related("applications")
    response = render(
        request,
        "certmgr/api/tokens.html",
        {"form": form, "may_create": may_create, "made": made, "rows": rows, "now": timezone.now()},
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def api_token_revoke(request, pk):
    row = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if tokens.revoke(row, actor=request.user, remote_addr=client_ip(request)):
        messages.success(request, f"The API token {row.prefix}… is revoked: it no longer works.")
    return redirect("api-tokens")


@require_safe
def docs(request):
    return render(request, "certmgr/api/docs.html")


@require_safe
def docs_script(request):
    return render(request, "certmgr/api/docs.js", content_type="text/javascript; charset=utf-8")


class OpenApiDocument(SpectacularJSONAPIView):
    """/api/v1/openapi.json, for anyone with a role (a token, or the session of the docs page)."""

    permission_classes = [HasPortalRole]
    throttle_classes = [TokenRateThrottle]
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
