"""Errors as RFC 9457 problem details: ``application/problem+json`` with type, title, status,
detail, and a stable ``code`` a pipeline can branch on (the same named reasons the pages give).
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:ias-cert-portal:problem:"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Internal error",
}
# DRF's own exceptions, by class, to our codes (a subclass below names its own).
DRF_CODES = {
    exceptions.ValidationError: "invalid_request",
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "token_invalid",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "not_allowed",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


class Problem(exceptions.APIException):
    """An API error with its own code and, optionally, more members (``errors``, ``checks``)."""

    def __init__(self, status_code: int, code: str, detail: str, **extra):
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.problem_code = code
        self.extra = extra


class Forbidden(exceptions.PermissionDenied):
    def __init__(self, code: str, detail: str):
        super().__init__(detail=detail, code=code)
        self.problem_code = code


class Unauthenticated(exceptions.AuthenticationFailed):
    def __init__(self, code: str, detail: str):
        super().__init__(detail=detail, code=code)
        self.problem_code = code


def problem_body(status_code: int, code: str, detail: str, **extra) -> dict:
    return {
        "type": TYPE_BASE + code,
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_response(status_code: int, code: str, detail: str, **extra) -> JsonResponse:
    """For plain Django views of the API (the catch-all 404)."""
    return JsonResponse(
        problem_body(status_code, code, detail, **extra), status=status_code, content_type=PROBLEM_JSON
    )


def exception_handler(exc, context):
    """DRF's handler (headers such as Retry-After and WWW-Authenticate), with a problem body."""
    # Imported here: rest_framework.views loads the authentication classes, which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, RequestDataTooBig):
        exc = Problem(413, "too_large", "The request body is larger than the portal accepts.")
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        # Logged with its traceback (no local variables); the caller learns only that it failed.
        log.error("API call failed: %s", exc.__class__.__name__, exc_info=exc)
        return Response(
            problem_body(500, "internal_error", "The portal failed to answer; the error is logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
            content_type=PROBLEM_JSON,
        )
    code, detail, extra = _describe(exc)
    response.data = problem_body(response.status_code, code, detail, **extra)
    response.content_type = PROBLEM_JSON
    return response


def _describe(exc) -> tuple[str, str, dict]:
    code = getattr(exc, "problem_code", None) or next(
        (name for cls, name in DRF_CODES.items() if isinstance(exc, cls)), "error"
    )
    extra = dict(getattr(exc, "extra", {}))
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        extra["errors"] = {field: [str(m) for m in _messages(value)] for field, value in errors.items()}
        first = next(iter(extra["errors"].items()), ("", ["invalid"]))
        where = "" if first[0] == "non_field_errors" else f"{first[0]}: "
        return code, f"{where}{first[1][0] if first[1] else 'invalid'}", extra
    if isinstance(exc, exceptions.Throttled):
        return code, f"Too many requests with this token; retry after {exc.wait or 1:.0f} seconds.", extra
    return code, str(exc.detail), extra


def _messages(value) -> list:
    if isinstance(value, dict):
        return [f"{key}: {m}" for key, inner in value.items() for m in _messages(inner)]
    if isinstance(value, list):
        return [m for item in value for m in _messages(item)]
    return [value]
