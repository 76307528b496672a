"""Applications and certificates: lists with the pages' filters, details, upload, lifecycle."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta

from django.db.models import F, Q
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from ...access.clientaddr import client_ip
from ...bindings import parameters as bindings
from ...inventory.importer import Importer, ImportResult
from ...inventory.lists import CERTIFICATE_SORT
from ...models import AuditEvent, Certificate
from ..problems import Problem
from ..serializers import (
    UPLOAD_REQUEST,
    ApplicationFilterSerializer,
    ApplicationSerializer,
    CertificateDetailSerializer,
    CertificateFilterSerializer,
    CertificateSerializer,
    CheckSerializer,
    LifecycleSerializer,
    UploadResultSerializer,
    UploadSerializer,
)
from .base import ApiView, Pages, responses

TAG_APPS, TAG_CERTS = ["applications"], ["certificates"]


def checks_data(cert: Certificate, now) -> list[dict]:
    return CheckSerializer(bindings.checks(cert, now), many=True).data


class ApplicationList(ApiView):
    pagination_class = Pages

    @extend_schema(
        tags=TAG_APPS,
        operation_id="applications_list",
        summary="Applications, the next expiry first (the dashboard)",
        parameters=[ApplicationFilterSerializer],
        responses=responses({200: ApplicationSerializer(many=True)}, 400, 404),
    )
    def get(self, request):
        filters = self.query(ApplicationFilterSerializer)
        apps = (
            self.access.applications()
            .with_next_expiry()
            .select_related("last_check")
            .order_by(F("next_expiry").asc(nulls_last=True), "name", "pk")
        )
        if filters.get("q"):
            text = filters["q"].strip()
            apps = apps.filter(
                Q(name__icontains=text) | Q(slug__icontains=text) | Q(client_id__icontains=text)
            )
        if "expiring_within" in filters:
            apps = apps.filter(next_expiry__lte=self.now + timedelta(days=filters["expiring_within"]))
        return self.page(apps, ApplicationSerializer)


class ApplicationDetail(ApiView):
    @extend_schema(
        tags=TAG_APPS,
        operation_id="applications_retrieve",
        summary="One application",
        responses=responses({200: ApplicationSerializer}, 404),
    )
    def get(self, request, slug):
        app = self.access.application(slug)
        app = type(app).objects.with_next_expiry().select_related("last_check").get(pk=app.pk)
        return Response(ApplicationSerializer(app, context=self.get_serializer_context()).data)


class CertificateList(ApiView):
    pagination_class = Pages

    @extend_schema(
        tags=TAG_CERTS,
        operation_id="certificates_list",
        summary="Certificates, with the certificate list's filters",
        parameters=[CertificateFilterSerializer],
        responses=responses({200: CertificateSerializer(many=True)}, 400, 404),
    )
    def get(self, request):
        filters = self.query(CertificateFilterSerializer)
        certs = self.access.certificates().search(filters.get("q", ""))
        if filters.get("state"):
            certs = certs.in_state(filters["state"], now=self.now)
        if filters.get("application"):
            certs = certs.filter(application__slug=filters["application"])
        if filters.get("lifecycle"):
            certs = certs.filter(lifecycle=filters["lifecycle"])
        order = CERTIFICATE_SORT.order_by(*CERTIFICATE_SORT.parse(filters["sort"]))  # as the page sorts
        return self.page(certs.order_by(*order), CertificateSerializer)

    @extend_schema(
        tags=TAG_CERTS,
        operation_id="certificates_upload",
        summary="Upload a certificate (PEM text or base64 PKCS#12), active or staged",
        request=UPLOAD_REQUEST,
        responses=responses(
            {
                201: OpenApiResponse(UploadResultSerializer, description="Stored."),
                200: OpenApiResponse(
                    UploadResultSerializer, description="Already stored for this application."
                ),
            },
            400,
            404,
            413,
            e400="Refused input, with the upload page's reason: wrong_password, legacy_pkcs12, "
            "tenant_conflict, key_mismatch, not_a_certificate, too_large, … (or invalid_request).",
        ),
    )
    def post(self, request):
        data = self.body(UploadSerializer)
        app = self.access.application(data["application"])
        self.audit_application = app
        self.access.require_write(app)
        label, payload = _payload(data)
        importer = Importer(
            app,
            store_keys=data["store_private_key"],
            actor=request.user,
            actor_label=self.access.label,
            remote_addr=client_ip(request),
            lifecycle=Certificate.Lifecycle.STAGED if data["staged"] else Certificate.Lifecycle.ACTIVE,
        )
        parsed = importer.parse(label, payload, data.get("password") or None)
        result = parsed if isinstance(parsed, ImportResult) else importer.save([(label, parsed)])[0]
        if not result.ok:
            raise Problem(400, result.error_code or "refused", result.error)
        cert = Certificate.objects.select_related("application").get(pk=result.certificate_id)
        body = {
            "certificate": CertificateDetailSerializer(cert, context=self.get_serializer_context()).data,
            "already_present": result.already_present,
            "key_stored": result.key_stored,
            "key_discarded": result.key_discarded,
            "warnings": list(result.warnings),
            "checks": checks_data(cert, self.now),
        }
        return Response(
            body, status=status.HTTP_200_OK if result.already_present else status.HTTP_201_CREATED
        )


def _payload(data: dict) -> tuple[str, bytes]:
    if "pem" in data:
        return "pem", data["pem"].encode("utf-8")
    try:
        return "pkcs12", base64.b64decode(data["pkcs12"], validate=True)
    except (binascii.Error, ValueError):
        raise Problem(
            400, "bad_base64", "pkcs12 is not base64: encode the file, e.g. base64 -w0 cert.p12."
        ) from None


class CertificateDetail(ApiView):
    @extend_schema(
        tags=TAG_CERTS,
        operation_id="certificates_retrieve",
        summary="One certificate (public facts and PEM; never a key)",
        responses=responses({200: CertificateDetailSerializer}, 404),
    )
    def get(self, request, id):
        cert = self.access.certificate(id)
        return Response(CertificateDetailSerializer(cert, context=self.get_serializer_context()).data)

    @extend_schema(
        tags=TAG_CERTS,
        operation_id="certificates_lifecycle",
        summary="Change its lifecycle (active, staged, retired)",
        request=LifecycleSerializer,
        responses=responses({200: CertificateDetailSerializer}, 400, 404),
    )
    def patch(self, request, id):
        cert = self.access.certificate(id)
        self.audit_application = cert.application
        self.access.require_write(cert.application)
        lifecycle = self.body(LifecycleSerializer)["lifecycle"]
        if lifecycle != cert.lifecycle:
            before = cert.get_lifecycle_display()
            cert.lifecycle = lifecycle
            AuditEvent.saved(
                cert,
                ["lifecycle"],
                AuditEvent.Action.CERTIFICATE_CHANGED,
                request,
                actor_label=self.access.label,
                application=cert.application,
                certificate=cert,
                detail=f"lifecycle {before} → {cert.get_lifecycle_display()}",
            )
        return Response(CertificateDetailSerializer(cert, context=self.get_serializer_context()).data)
