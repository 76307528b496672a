"""What every API call shares: authentication, the role and scope (``self.access``), the audit of
every write call, no caching, and the errors as problem details."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.views import APIView

from ...models import AuditEvent
from ..permissions import Access
from ..problems import problem_response
from ..serializers import PageSerializer, ProblemSerializer


class Pages(PageNumberPagination):
    page_size = 50  # as the pages
    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()  # a page is a number

    def get_schema_operation_parameters(self, view) -> list[dict]:
        bounds = {field.field_name: field for field in PageSerializer().fields.values()}
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            field = bounds[parameter["name"]]
            parameter["schema"].update(minimum=field.min_value, maximum=field.max_value)
        return parameters


def problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(ProblemSerializer, description=description)


COMMON = {
    401: problem(
        "No token, or one that is unknown, expired or revoked (token_invalid, token_expired, token_revoked)."
    ),
    403: problem(
        "The user has no role (no_role), or may not do this (read_only_token, viewer_read_only, not_an_owner)."
    ),
    429: problem("Too many calls with this token (throttled); see Retry-After."),
}


def responses(ok: dict, *errors: int, **described: str) -> dict:
    """An operation's documented answers: ``ok``, the common errors, and 400/404/409/413 as listed."""
    texts = {
        400: "Invalid parameters or body (invalid_request, malformed_request).",
        404: "Not found, or outside the token's applications (not_found).",
        409: "Conflict.",
        413: "The body is too large (too_large).",
    }
    found = {status: problem(described.get(f"e{status}", texts[status])) for status in errors}
    return {**ok, **COMMON, **found}


class ApiView(APIView):
    # No docstring: the OpenAPI document would show it as every operation's description.
    # A write sets ``audit_application`` once it has found an application the caller may see.
    audit_application = None

    def initial(self, request, *args, **kwargs):
        self.now = timezone.now()
        super().initial(request, *args, **kwargs)
        self.access = Access.of(request)

    def get_serializer_context(self) -> dict:
        return {"access": self.access, "now": self.now, "request": self.request}

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        user = getattr(request, "_user", None)
        if request.method not in SAFE_METHODS and user is not None and user.is_authenticated:
            if response.status_code != 429:  # a flood of refused calls is not a flood of rows
                self._audit_write(request, response.status_code)
        return response

    def _audit_write(self, request, status_code: int) -> None:
        access = getattr(self, "access", None) or Access.of(request)
        AuditEvent.record(
            AuditEvent.Action.API_WRITE,
            request,
            actor_label=access.label,
            application=self.audit_application,
            detail=f"{request.method} {request.path} → {status_code}",
        )

    def page(self, queryset, serializer_class):
        self.query(PageSerializer)  # a page beyond the last is 404, as DRF answers it
        paginator = Pages()  # list views also name it as pagination_class, for the document
        rows = paginator.paginate_queryset(queryset, self.request, view=self)
        data = serializer_class(rows, many=True, context=self.get_serializer_context()).data
        return paginator.get_paginated_response(data)

    def query(self, serializer_class) -> dict:
        """The query parameters, validated (400 with the reasons otherwise). As a plain dict, so that
        an empty value is checked like any other instead of standing for "not given"."""
        given = self.request.query_params
        repeated = sorted(name for name in given if len(given.getlist(name)) > 1)
        if repeated:
            raise ValidationError({name: ["Given more than once."] for name in repeated})
        params = serializer_class(data=given.dict())
        params.is_valid(raise_exception=True)
        return params.validated_data

    def body(self, serializer_class, **kwargs) -> dict:
        data = serializer_class(data=self.request.data, **kwargs)
        data.is_valid(raise_exception=True)
        return data.validated_data


@csrf_exempt  # it changes nothing, and a POST without a CSRF cookie must get this answer too
@login_not_required
def not_found(request, rest: str = ""):
    """Anything under /api/v1/ that is no resource: a problem, not the pages' HTML 404."""
    return problem_response(404, "not_found", "No such resource (API paths end with a slash).")
