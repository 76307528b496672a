"""Storing parsed certificates: the one code path behind the upload page and import_certs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from . import keys
from .core.errors import InputError
from .core.parse import ParsedInput, parse_certificate_input, too_large
from .core.servicekey import Binding
from .models import Application, AuditEvent, Certificate, tenant_key


@dataclass
class ImportResult:
    label: str
    ok: bool
    error: str = ""
    error_code: str = ""
    certificate: Certificate | None = None
    already_present: bool = False
    key_stored: bool = False
    key_discarded: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self, application: Application) -> dict:
        cert = self.certificate
        return {
            "path": self.label,
            "ok": self.ok,
            "error": self.error or None,
            "fingerprint": cert.fingerprint if cert else None,
            "subject": cert.subject if cert else None,
            "not_after": cert.not_after.isoformat() if cert else None,
            "application": application.slug,
            "already_present": self.already_present,
            "state": cert.expiry_state().value if cert else None,
        }


class Importer:
    def __init__(
        self,
        application: Application,
        *,
        store_keys: bool,
        actor=None,
        actor_label: str = "",
        remote_addr=None,
    ):
        self.application = application
        self.store_keys = store_keys
        self.actor = actor
        self.actor_label = actor_label or (actor.get_username() if actor else "system")
        self.remote_addr = remote_addr

    def parse(self, label: str, data: bytes, password: str | None) -> ParsedInput | ImportResult:
        try:
            return parse_certificate_input(data, password, settings.CERTMGR_MAX_UPLOAD_BYTES)
        except InputError as exc:
            return ImportResult(label, ok=False, error=exc.message, error_code=exc.code)

    def import_paths(
        self, paths: Iterable[Path], password: str | None, batch_size: int = 500
    ) -> Iterator[ImportResult]:
        """Parse and store files, a batch per transaction; results come in input order."""
        batch: list[tuple[str, ParsedInput | ImportResult]] = []
        for path in paths:
            batch.append((str(path), self._parse_file(path, password)))
            if len(batch) >= batch_size:
                yield from self._flush(batch)
                batch = []
        yield from self._flush(batch)

    def _parse_file(self, path: Path, password: str | None) -> ParsedInput | ImportResult:
        try:
            data = _read(path)
        except InputError as exc:
            return ImportResult(str(path), ok=False, error=exc.message, error_code=exc.code)
        except OSError as exc:
            return ImportResult(
                str(path), ok=False, error=f"Cannot read the file: {exc.strerror}.", error_code="unreadable"
            )
        return self.parse(str(path), data, password)

    def _flush(self, batch: list[tuple[str, ParsedInput | ImportResult]]) -> list[ImportResult]:
        parsed = [(label, item) for label, item in batch if isinstance(item, ParsedInput)]
        saved = iter(self.save(parsed) if parsed else [])
        return [item if isinstance(item, ImportResult) else next(saved) for _, item in batch]

    def save(self, items: list[tuple[str, ParsedInput]]) -> list[ImportResult]:
        try:
            with transaction.atomic():
                return self._save_batch(items)
        except IntegrityError:
            # Another import stored one of these meanwhile: go one by one so each gets its verdict.
            results = []
            for item in items:
                try:
                    with transaction.atomic():
                        results += self._save_batch([item])
                except IntegrityError:
                    results += self._save_batch([item], recheck_only=True)
            return results

    def _save_batch(self, items, recheck_only: bool = False) -> list[ImportResult]:
        results: dict[int, ImportResult] = {}
        for index, (label, parsed) in enumerate(items):
            if parsed.binding is not None:
                error = self._adopt_binding(parsed.binding)
                if error:
                    results[index] = ImportResult(label, ok=False, error=error, error_code="binding_mismatch")
        app = self.application
        existing = self._existing({p.leaf.sha256 for _, p in items})
        new: list[Certificate] = []
        pending: list[tuple[int, Certificate, bool]] = []
        for index, (label, parsed) in enumerate(items):
            if index in results:
                continue
            found = existing.get(parsed.leaf.sha256)
            if found is not None and found.application_id != app.pk:
                results[index] = ImportResult(
                    label, ok=False, error=_conflict(found), error_code="tenant_conflict"
                )
            elif found is not None:
                results[index] = self._already_present(label, parsed, found)
            elif recheck_only:
                results[index] = ImportResult(
                    label, ok=False, error="Stored concurrently by another import; retry."
                )
            else:
                cert = self._build(parsed)
                existing[parsed.leaf.sha256] = cert
                new.append(cert)
                pending.append((index, cert, parsed.has_private_key))
        Certificate.objects.bulk_create(new)
        self._audit_added(new)
        for index, cert, had_key in pending:
            label, parsed = items[index]
            results[index] = ImportResult(
                label,
                ok=True,
                certificate=cert,
                key_stored=cert.encrypted_private_key is not None,
                key_discarded=had_key and cert.encrypted_private_key is None,
                warnings=parsed.warnings,
            )
        return [results[i] for i in range(len(items))]

    def tenant_conflict(self, fingerprint: str) -> str:
        """Why IAS would refuse this certificate for this application, or "" if it would not."""
        found = self._existing({fingerprint}).get(fingerprint)
        if found is None or found.application_id == self.application.pk:
            return ""
        return _conflict(found)

    def _existing(self, fingerprints: set[str]) -> dict[str, Certificate]:
        scope = Q(application=self.application)
        if self.application.tenant:
            scope |= Q(tenant=self.application.tenant)
        rows = Certificate.objects.filter(scope, fingerprint__in=fingerprints).select_related("application")
        # A certificate of this application wins over the same one elsewhere.
        found: dict[str, Certificate] = {}
        for row in rows:
            if row.fingerprint not in found or row.application_id == self.application.pk:
                found[row.fingerprint] = row
        return found

    def _already_present(self, label: str, parsed: ParsedInput, found: Certificate) -> ImportResult:
        key_stored = False
        if self.store_keys and parsed.has_private_key and found.encrypted_private_key is None:
            found.encrypted_private_key = keys.seal(parsed.private_key_der)
            found.save(update_fields=["encrypted_private_key"])
            self._audit(AuditEvent.Action.KEY_STORED, found, "added to a certificate already present")
            key_stored = True
        return ImportResult(
            label,
            ok=True,
            certificate=found,
            already_present=True,
            key_stored=key_stored,
            key_discarded=parsed.has_private_key and not key_stored and found.encrypted_private_key is None,
            warnings=parsed.warnings,
        )

    def _build(self, parsed: ParsedInput) -> Certificate:
        leaf = parsed.leaf
        sealed = None
        if self.store_keys and parsed.has_private_key:
            sealed = keys.seal(parsed.private_key_der)
        return Certificate(
            application=self.application,
            pem=leaf.pem,
            chain_pem="".join(c.pem for c in parsed.chain) if len(parsed.chain) > 1 else "",
            subject=leaf.subject[:1024],
            issuer=leaf.issuer[:1024],
            serial=leaf.serial[:64],
            not_before=leaf.not_before,
            not_after=leaf.not_after,
            fingerprint=leaf.sha256,
            x5t_s256=leaf.x5t_s256,
            key_algorithm=leaf.key_algorithm,
            key_size=leaf.key_size,
            key_curve=leaf.key_curve,
            sans=list(leaf.sans),
            extended_key_usage=list(leaf.extended_key_usage),
            is_ca=leaf.is_ca,
            self_issued=leaf.self_issued,
            source_format=parsed.format,
            encrypted_private_key=sealed,
            tenant=self.application.tenant,
            uploaded_by=self.actor,
        )

    def _adopt_binding(self, binding: Binding) -> str:
        """Fill the application's IAS facts from a service key; refuse one for another client."""
        app = self.application
        if binding.client_id and app.client_id and binding.client_id != app.client_id:
            return (
                f"This service key is for client id {binding.client_id}, but application "
                f"'{app.name}' has client id {app.client_id}."
            )
        if binding.tenant_url and app.tenant_url and tenant_key(binding.tenant_url) != app.tenant:
            return (
                f"This service key is for tenant {binding.tenant_url}, but application "
                f"'{app.name}' belongs to {app.tenant_url}."
            )
        if binding.tenant_url and not app.tenant_url:
            clash = app.tenant_conflicts(tenant_key(binding.tenant_url)).first()
            if clash is not None:
                return _conflict(clash)
        changed = False
        for attr, value in (
            ("client_id", binding.client_id),
            ("tenant_url", binding.tenant_url),
            ("domains", list(binding.domains)),
        ):
            if value and not getattr(app, attr):
                setattr(app, attr, value)
                changed = True
        if changed:
            app.save()
        return ""

    def _audit_added(self, certificates: list[Certificate]) -> None:
        events = []
        for cert in certificates:
            events.append(
                self._event(AuditEvent.Action.CERTIFICATE_ADDED, cert, f"format {cert.source_format}")
            )
            if cert.encrypted_private_key is not None:
                events.append(self._event(AuditEvent.Action.KEY_STORED, cert, "stored at import"))
        AuditEvent.objects.bulk_create(events)

    def _audit(self, action: str, cert: Certificate, detail: str) -> None:
        self._event(action, cert, detail).save()

    def _event(self, action: str, cert: Certificate, detail: str) -> AuditEvent:
        return AuditEvent(
            actor=self.actor,
            actor_label=self.actor_label,
            action=action,
            application=self.application,
            certificate=cert,
            remote_addr=self.remote_addr,
            detail=detail,
        )


def _conflict(found: Certificate) -> str:
    return (
        f"This certificate is already used by application '{found.application.name}' "
        f"({found.application.slug}) in the same IAS tenant ({found.tenant}); IAS accepts "
        "a certificate for one application per tenant only."
    )


def _read(path: Path) -> bytes:
    limit = settings.CERTMGR_MAX_UPLOAD_BYTES
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise too_large(size, limit)
        return handle.read(limit + 1)
