"""Binding parameters with their pre-flight results, and rotation to a staged certificate.

The pre-flight gate: a certificate with an error-level result (expired, not yet valid, used by
another application of the tenant, too many subject DNs, RSA under 2048) is one IAS refuses, so
its parameters are not answered (409 ``preflight_error``, with every check) unless the caller
says ``force=true``, which is audited. The rule ``binding_params`` follows (issue 14).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from ...access.clientaddr import client_ip
from ...bindings import parameters as bindings
from ...core.binding import Target
from ...models import AuditEvent, Certificate
from ...rotation import plan
from ..problems import Problem
from ..serializers import (
    CertificateSerializer,
    CheckSerializer,
    ParametersQuerySerializer,
    ParametersSerializer,
    PromotionSerializer,
)
from .base import ApiView, responses

TAGS = ["binding and rotation"]


class Parameters(ApiView):
    @extend_schema(
        tags=TAGS,
        operation_id="certificates_parameters",
        summary="X509_PROVIDED binding parameters in one format, with the pre-flight results",
        parameters=[ParametersQuerySerializer],
        responses=responses(
            {200: ParametersSerializer},
            400,
            404,
            409,
            e409="An error-level pre-flight result (preflight_error; every check in `checks`): IAS would "
            "refuse this certificate. force=true answers anyway.",
        ),
    )
    def get(self, request, id):
        cert = self.access.certificate(id)
        options = self.query(ParametersQuerySerializer)
        checks = bindings.checks(cert, self.now)
        errors = bindings.blocking(checks)  # the one gate (bindings.parameters.blocking_checks)
        if errors and not options["force"]:
            raise Problem(
                409,
                "preflight_error",
                "IAS would refuse this certificate: "
                + " ".join(check.message for check in errors)
                + " Add force=true to get the parameters anyway.",
                checks=CheckSerializer(checks, many=True).data,
            )
        fmt, chain = options["format"], options["chain"]
        target = Target(
            instance=options.get("instance") or Target.instance,
            app=options.get("app") or Target.app,
            key_name=options.get("key") or Target.key_name,
            cf_target=options["cf_target"],
        )
        forced = bool(errors)
        AuditEvent.record(
            AuditEvent.Action.PARAMETERS_GENERATED,
            request,
            actor_label=self.access.label,
            application_id=cert.application_id,
            certificate=cert,
            detail=f"{fmt} via the API{' with chain' if chain else ''}"
            + (" despite pre-flight errors (force)" if forced else ""),
        )
        return Response(
            {
                "certificate": cert.pk,
                "fingerprint": cert.fingerprint,
                "subject": cert.subject,
                "format": fmt,
                "chain": chain,
                "cf_target": target.cf_target,
                "parameters": bindings.parameters(cert, chain=chain),
                "rendered": bindings.rendered(cert, fmt, chain=chain, target=target),
                "checks": CheckSerializer(checks, many=True).data,
                "forced": forced,
            }
        )


class Promote(ApiView):
    @extend_schema(
        tags=TAGS,
        operation_id="certificates_promote",
        summary="Promote a staged certificate: it becomes active, the other active ones are retired",
        request=None,
        responses=responses(
            {200: PromotionSerializer},
            404,
            409,
            e409="The certificate is not staged (not_staged).",
        ),
    )
    def post(self, request, id):
        cert = self.access.certificate(id)
        self.audit_application = cert.application
        self.access.require_write(cert.application)
        if cert.lifecycle != Certificate.Lifecycle.STAGED:
            raise Problem(
                409, "not_staged", f"The certificate is {cert.get_lifecycle_display()}, not staged."
            )
        retired = plan.promote(cert, actor=request.user, remote_addr=client_ip(request))
        cert.refresh_from_db()
        return Response(
            {
                "certificate": CertificateSerializer(cert, context=self.get_serializer_context()).data,
                "retired": [c.pk for c in retired],
            }
        )
