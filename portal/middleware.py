"""Middleware of the deployment: the platform's health probe and the Content-Security-Policy."""

from __future__ import annotations

from django.conf import settings


class HealthCheckMiddleware:
    """Answers /healthz before anything looks at the Host header or the scheme.

    Cloud Foundry's health checker calls the container directly, with its IP as Host and over
    plain http: host validation (ALLOWED_HOSTS) and the https redirect must not see it. First in
    MIDDLEWARE.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == "/healthz":
            from portal.health import healthz

            return healthz(request)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """The CONTENT_SECURITY_POLICY setting on every response that does not bring its own."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CONTENT_SECURITY_POLICY", "")

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy:
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response
