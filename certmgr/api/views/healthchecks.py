"""Health checks: run one now (with the certificate in use, or a chosen one such as the staged
certificate, which changes nothing about which is active), and the stored runs."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from ...access.clientaddr import client_ip
from ...healthcheck.runner import NotCheckable, run_check
from ...models import Application, Certificate, HealthCheckRun
from ..permissions import MAX_ID, not_found
from ..problems import Problem
from ..serializers import HealthCheckRequestSerializer, HealthCheckRunSerializer
from .base import ApiView, Pages, responses

TAGS = ["health checks"]
MIN_FINGERPRINT_PREFIX = 8


def certificate_of(application: Application, reference: str) -> Certificate:
    """A certificate of ``application`` by id or by (a unique prefix of) its fingerprint."""
    reference = reference.strip()
    if reference.isascii() and reference.isdigit() and 0 < int(reference) <= MAX_ID:
        found = application.certificates.filter(pk=int(reference)).first()
        if found is not None:
            return found
    compact = reference.replace(":", "").lower()
    if len(compact) >= MIN_FINGERPRINT_PREFIX and all(c in "0123456789abcdef" for c in compact):
        matches = list(application.certificates.filter(fingerprint__startswith=compact)[:2])
        if len(matches) == 1:
            return matches[0]
    raise not_found(f"certificate '{reference}' in application '{application.slug}'")


class HealthChecks(ApiView):
    pagination_class = Pages

    @extend_schema(
        tags=TAGS,
        operation_id="health_checks_list",
        summary="The application's stored runs, newest first",
        responses=responses({200: HealthCheckRunSerializer(many=True)}, 400, 404),
    )
    def get(self, request, slug):
        app = self.access.application(slug)
        return self.page(
            app.health_checks.select_related("application", "certificate"), HealthCheckRunSerializer
        )

    @extend_schema(
        tags=TAGS,
        operation_id="health_checks_run",
        summary="Run the token-flow check now and answer the stored run",
        description="Without a body: the certificate the application uses. With `certificate`: that one "
        "(e.g. the staged certificate before promotion); the application's health and its "
        "active certificate stay as they are.",
        request=HealthCheckRequestSerializer,
        responses=responses(
            {201: OpenApiResponse(HealthCheckRunSerializer, description="The stored run (healthy or not).")},
            400,
            404,
            409,
            e409="The check cannot run (not_checkable), e.g. no stored key or no tenant URL.",
        ),
    )
    def post(self, request, slug):
        app = self.access.application(slug)
        self.audit_application = app
        self.access.require_write(app)
        reference = self.body(HealthCheckRequestSerializer).get("certificate")
        certificate = certificate_of(app, reference) if reference else None
        try:
            run = run_check(
                app,
                trigger=HealthCheckRun.Trigger.MANUAL,
                actor=request.user,
                actor_label=self.access.label,
                remote_addr=client_ip(request),
                certificate=certificate,
            )
        except NotCheckable as exc:
            raise Problem(409, "not_checkable", f"The health check cannot run: {exc}") from None
        data = HealthCheckRunSerializer(run, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED)


class HealthCheckDetail(ApiView):
    @extend_schema(
        tags=TAGS,
        operation_id="health_checks_retrieve",
        summary="One stored run",
        responses=responses({200: HealthCheckRunSerializer}, 404),
    )
    def get(self, request, slug, id):
        app = self.access.application(slug)
        runs = app.health_checks.select_related("application", "certificate")
        run = runs.filter(pk=id).first() if id <= MAX_ID else None
        if run is None:
            raise not_found(f"health check run {id} of '{slug}'")
        return Response(HealthCheckRunSerializer(run, context=self.get_serializer_context()).data)
