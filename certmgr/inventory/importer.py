"""Storing parsed certificates: the one code path behind the upload page and import_certs."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from ..core import files
from ..core.csr import certificate_public_key_sha256
from ..core.errors import InputError
from ..core.expiry import ExpiryState, expiry_state
from ..core.limits import ParseLimits
from ..core.parse import ParsedInput, parse_certificate_input
from ..core.servicekey import Binding
from ..lib import bulk
from ..models import (
    Application,
    AuditEvent,
    Certificate,
    PendingKey,
    tenant_conflict_message,
    tenant_key,
    warning_threshold,
)
from . import keys


def parse_limits() -> ParseLimits:
    return ParseLimits(settings.CERTMGR_MAX_KDF_ITERATIONS, settings.CERTMGR_MAX_CERTS_PER_INPUT)


@dataclass
class ImportResult:
    """What became of one input. The stored certificate's facts are copied here, so printing a
    large import needs no model instances; ``certificate`` loads the row when it is wanted."""

    label: str
    ok: bool
    error: str = ""
    error_code: str = ""
    certificate_id: int | None = None
    fingerprint: str = ""
    subject: str = ""
    not_before: datetime | None = None
    not_after: datetime | None = None
    already_present: bool = False
    key_stored: bool = False
    key_discarded: bool = False
    has_key: bool = False  # the stored certificate holds a private key (after this import)
    key_matched: bool = False  # ...the one generated in the portal for its CSR (a pending key)
    warnings: tuple[str, ...] = field(default_factory=tuple)
    _certificate: Certificate | None = field(default=None, repr=False)

    @classmethod
    def of(cls, label: str, cert: Certificate | dict, **flags) -> ImportResult:
        get = cert.get if isinstance(cert, dict) else lambda name: getattr(cert, name)
        return cls(
            label, ok=True, certificate_id=get("id"), fingerprint=get("fingerprint"), subject=get("subject"),
            not_before=get("not_before"), not_after=get("not_after"),
            _certificate=None if isinstance(cert, dict) else cert, **flags,
        )  # fmt: skip

    @property
    def certificate(self) -> Certificate | None:
        if self._certificate is None and self.certificate_id is not None:
            self._certificate = Certificate.objects.get(pk=self.certificate_id)
        return self._certificate

    def expiry_state(self) -> ExpiryState:
        return expiry_state(self.not_before, self.not_after, timezone.now(), warning_threshold())

    def as_json(self, application: Application) -> dict:
        return {
            "path": self.label,
            "ok": self.ok,
            "error": self.error or None,
            "fingerprint": self.fingerprint or None,
            "subject": self.subject or None,
            "not_after": self.not_after.isoformat() if self.not_after else None,
            "application": application.slug,
            "already_present": self.already_present,
            "has_key": self.has_key,
            "state": self.expiry_state().value if self.ok else None,
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
        lifecycle: str = Certificate.Lifecycle.ACTIVE,
        new_application: bool = False,
    ):
        """``new_application``: the caller has just created it, so until the first batch is stored
        it holds no certificate and no pending key, and nothing needs looking up (a concurrent
        import into it would still meet the unique constraints). If it is not saved yet, the
        importer saves it in the transaction of its first batch (one commit, not two), or alone
        when no file gave a certificate; if another import created the same slug meanwhile, the
        certificates go into that one (``self.application`` is then that application)."""
        self.application = application
        self._empty = new_application
        self._creating = new_application and application.pk is None
        self.store_keys = store_keys
        self.actor = actor
        self.actor_label = actor_label or (actor.get_username() if actor else "system")
        self.remote_addr = remote_addr
        self.lifecycle = lifecycle
        self._matches: dict[str, PendingKey] = {}
        self._now = timezone.now()

    @sensitive_variables("data", "password", "parsed")
    def parse(self, label: str, data: bytes, password: str | None) -> ParsedInput | ImportResult:
        try:
            return parse_certificate_input(data, password, settings.CERTMGR_MAX_UPLOAD_BYTES, parse_limits())
        except InputError as exc:
            return ImportResult(label, ok=False, error=exc.message, error_code=exc.code)

    def import_paths(
        self,
        paths: Iterable[str | Path],
        password: str | None,
        *,
        jobs: int = 0,
        batch_size: int = 1000,
        on_parsed: Callable[[], object] | None = None,
    ) -> Iterator[ImportResult]:
        """Parse and store files, a batch per transaction; results come in input order.

        With ``jobs`` > 0, that many worker processes parse while this one stores. ``paths`` may
        be a generator: it is read as the files are parsed, never held whole.
        """
        batch: list[tuple[str, ParsedInput | ImportResult]] = []
        # Two readers of one stream of paths: tee keeps only what lies between them (the files
        # parsed ahead, a bounded window), not every path.
        labels, to_parse = itertools.tee(paths)
        outcomes = files.parse_files(
            to_parse, password, settings.CERTMGR_MAX_UPLOAD_BYTES, jobs, parse_limits()
        )
        for path, outcome in zip(labels, outcomes, strict=True):
            if not isinstance(outcome, ParsedInput):
                outcome = ImportResult(str(path), ok=False, error_code=outcome[0], error=outcome[1])
            batch.append((str(path), outcome))
            if on_parsed:
                on_parsed()
            if len(batch) >= batch_size:
                yield from self._flush(batch)
                batch = []
        yield from self._flush(batch)
        if self._creating:  # no certificate came to store: the application on its own
            self._create_application_alone()

    def _flush(self, batch: list[tuple[str, ParsedInput | ImportResult]]) -> list[ImportResult]:
        parsed = [(label, item) for label, item in batch if isinstance(item, ParsedInput)]
        saved = iter(self.save(parsed) if parsed else [])
        return [item if isinstance(item, ImportResult) else next(saved) for _, item in batch]

    def save(self, items: list[tuple[str, ParsedInput]]) -> list[ImportResult]:
        creating = self._creating
        try:
            with transaction.atomic():
                if creating:  # as save() would insert it, without the ORM building the INSERT each time
                    bulk.send_numbered(Application, [self.application]).rows()
                results = self._save_batch(items)
            self._creating = False
            return results
        except IntegrityError:
            if creating:  # the application's slug, taken meanwhile, or a row of the batch
                _unsaved(self.application)  # rolled back with the rest
                self._create_application_alone()
                return self.save(items)
            # Another import stored one of these meanwhile: go one by one so each gets its verdict.
            # The rolled-back batch may have changed the application in memory only.
            self._empty = False
            self.application.refresh_from_db()
            results = []
            for item in items:
                try:
                    with transaction.atomic():
                        results += self._save_batch([item])
                except IntegrityError:
                    results += self._save_batch([item], recheck_only=True)
            return results
        except BaseException:
            if creating:
                _unsaved(self.application)  # rolled back: saved again by the next batch
            raise

    def _create_application_alone(self) -> None:
        """Save the new application in a transaction of its own; if another import created the
        same slug meanwhile, import into that one."""
        app, self._creating = self.application, False
        try:
            with transaction.atomic():
                app.save()
        except IntegrityError:
            _unsaved(app)
            self.application = Application.objects.get(slug=app.slug)
            self._empty = False

    def _save_batch(self, items, recheck_only: bool = False) -> list[ImportResult]:
        self._now = timezone.now()  # one instant for the batch: its uploads and their audit rows
        results: dict[int, ImportResult] = {}
        leaves = [(parsed.leaf.pem, parsed.leaf.sha256) for _, parsed in items]
        self._matches = {} if self._empty else self._pending_keys(leaves)
        for index, (label, parsed) in enumerate(items):
            error = self._adopt_binding(parsed.binding) if parsed.binding else ""
            if error:
                results[index] = ImportResult(label, ok=False, error=error, error_code="binding_mismatch")
        new = self._classify(items, results, recheck_only)
        rows = {fingerprint: self._row(items[indexes[0]][1]) for fingerprint, indexes in new.items()}
        self._insert(list(rows.values()))
        self._audit_added(list(rows.values()))
        self._used_pending_keys([f for f in new if f in self._matches])
        for fingerprint, indexes in new.items():
            row = rows[fingerprint]
            for position, index in enumerate(indexes):  # the same certificate twice in one import
                label, parsed = items[index]
                results[index] = ImportResult.of(
                    label,
                    row,
                    already_present=position > 0,
                    key_stored=row["encrypted_private_key"] is not None and position == 0,
                    key_discarded=parsed.has_private_key and row["encrypted_private_key"] is None,
                    has_key=row["encrypted_private_key"] is not None,
                    key_matched=fingerprint in self._matches and position == 0,
                    warnings=parsed.warnings,
                )
        self._empty = False
        return [results[i] for i in range(len(items))]

    def _pending_keys(self, leaves: list[tuple[str, str]]) -> dict[str, PendingKey]:
        """The application's live pending keys these (PEM, fingerprint) leaves were issued for, by
        fingerprint. Public keys are compared only when the application has pending keys."""
        live = dict(
            PendingKey.objects.live()
            .filter(application=self.application)
            .order_by()
            .values_list("public_key_sha256", "pk")
        )
        if not live:  # nearly always: only then is a key loaded, or a public key hashed
            return {}
        wanted = {}
        for pem, fingerprint in leaves:
            pk = live.get(certificate_public_key_sha256(pem))
            if pk is not None:
                wanted[fingerprint] = pk
        loaded = PendingKey.objects.in_bulk(wanted.values())
        return {fingerprint: loaded[pk] for fingerprint, pk in wanted.items() if pk in loaded}

    def _used_pending_keys(self, fingerprints) -> None:
        """A matched pending key now lives on as the certificate's key: no second copy stays."""
        if fingerprints:
            PendingKey.objects.filter(pk__in=[self._matches[f].pk for f in fingerprints]).delete()

    def matching_pending_key(self, leaf) -> PendingKey | None:
        """For the preview: the pending key this certificate (CertificateFacts) would be stored with."""
        return self._pending_keys([(leaf.pem, leaf.sha256)]).get(leaf.sha256)

    def _classify(self, items, results: dict[int, ImportResult], recheck_only: bool) -> dict[str, list[int]]:
        """Give a result to what is already stored (here or in the tenant); return what is new,
        by fingerprint, with the positions it has in ``items``."""
        existing = self._existing({p.leaf.sha256 for _, p in items})
        new: dict[str, list[int]] = {}
        for index, (label, parsed) in enumerate(items):
            found = existing.get(parsed.leaf.sha256)
            if index in results:
                continue
            if found is not None and found.application_id != self.application.pk:
                error = tenant_conflict_message(found)
                results[index] = ImportResult(label, ok=False, error=error, error_code="tenant_conflict")
            elif found is not None:
                results[index] = self._already_present(label, parsed, found)
            elif recheck_only:
                error = "Stored concurrently by another import; retry."
                results[index] = ImportResult(label, ok=False, error=error)
            else:
                new.setdefault(parsed.leaf.sha256, []).append(index)
        return new

    def tenant_conflict(self, fingerprint: str) -> str:
        """Why IAS would refuse this certificate for this application, or "" if it would not."""
        found = self._existing({fingerprint}).get(fingerprint)
        if found is None or found.application_id == self.application.pk:
            return ""
        return tenant_conflict_message(found)

    def _existing(self, fingerprints: set[str]) -> dict[str, Certificate]:
        if self._empty and not self.application.tenant:  # nothing of its own, no tenant to share
            return {}
        scope = Q(application=self.application)
        if self.application.tenant:
            scope |= Q(tenant=self.application.tenant)
        matching = Certificate.objects.filter(scope, fingerprint__in=fingerprints).order_by()
        # Mostly nothing is stored yet: ask for ids first, whole rows only for what is there.
        ids = list(matching.values_list("pk", flat=True))
        if not ids:
            return {}
        rows = Certificate.objects.filter(pk__in=ids).select_related("application")
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
        return ImportResult.of(
            label,
            found,
            already_present=True,
            key_stored=key_stored,
            key_discarded=parsed.has_private_key and not key_stored and found.encrypted_private_key is None,
            has_key=found.encrypted_private_key is not None,
            warnings=parsed.warnings,
        )

    def _row(self, parsed: ParsedInput) -> dict:
        """The certificate's column values: the PEM, and the facts copied from it."""
        leaf = parsed.leaf
        sealed = None
        pending = self._matches.get(leaf.sha256)
        if pending is not None:  # the key generated in the portal for this certificate's CSR
            sealed = bytes(pending.encrypted_private_key)
        elif self.store_keys and parsed.has_private_key:
            sealed = keys.seal(parsed.private_key_der)
        return {
            "application_id": self.application.pk,
            "pem": leaf.pem,
            "chain_pem": "".join(c.pem for c in parsed.chain) if len(parsed.chain) > 1 else "",
            "subject": leaf.subject[:1024],
            "issuer": leaf.issuer[:1024],
            "serial": leaf.serial[:64],
            "not_before": leaf.not_before,
            "not_after": leaf.not_after,
            "fingerprint": leaf.sha256,
            "x5t_s256": leaf.x5t_s256,
            "key_algorithm": leaf.key_algorithm,
            "key_size": leaf.key_size,
            "key_curve": leaf.key_curve,
            "sans": list(leaf.sans),
            "extended_key_usage": list(leaf.extended_key_usage),
            "is_ca": leaf.is_ca,
            "self_issued": leaf.self_issued,
            "source_format": parsed.format,
            "encrypted_private_key": sealed,
            "tenant": self.application.tenant,
            "lifecycle": self.lifecycle,
            "uploaded_by_id": self.actor.pk if self.actor else None,
            "uploaded_at": self._now,
        }

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
                return tenant_conflict_message(clash)
        changed = False
        for attr, value in (
            ("client_id", binding.client_id),
            ("tenant_url", binding.tenant_url),
            ("domains", list(binding.domains)),
            ("app_tid", binding.app_tid),
            ("certurl", binding.certurl),
        ):
            if value and not getattr(app, attr):
                setattr(app, attr, value)
                changed = True
        if changed:
            app.save()
        return ""

    def _insert(self, rows: list[dict]) -> None:
        """Insert, and put the new primary keys into the rows."""
        ids = bulk.insert(Certificate, rows, returning=("application_id", "fingerprint"))
        for row in rows:
            row["id"] = ids[row["application_id"], row["fingerprint"]]

    def _audit_added(self, rows: list[dict]) -> None:
        base = self._event_row(AuditEvent.Action.CERTIFICATE_ADDED, None, "")
        events = []
        for row in rows:
            events.append({**base, "certificate_id": row["id"], "detail": f"format {row['source_format']}"})
            if row["encrypted_private_key"] is not None:
                pending = self._matches.get(row["fingerprint"])
                events.append(
                    {
                        **base,
                        "certificate_id": row["id"],
                        "action": AuditEvent.Action.KEY_STORED,
                        "detail": _from_pending(pending) if pending else "stored at import",
                    }
                )
        bulk.insert(AuditEvent, events)

    def _audit(self, action: str, cert: Certificate, detail: str) -> None:
        AuditEvent.objects.create(**self._event_row(action, cert.pk, detail))

    def _event_row(self, action: str, certificate_id: int | None, detail: str) -> dict:
        return {
            "at": self._now,
            "actor_id": self.actor.pk if self.actor else None,
            "actor_label": self.actor_label,
            "action": action,
            "application_id": self.application.pk,
            "certificate_id": certificate_id,
            "remote_addr": self.remote_addr,
            "detail": detail,
        }


def _from_pending(pending: PendingKey) -> str:
    return (
        f"the pending key #{pending.pk} generated in the portal on {pending.created_at:%Y-%m-%d %H:%M} UTC "
        "(its CSR's certificate arrived)"
    )


def _unsaved(app: Application) -> None:
    """After a rollback: the instance is not in the database, whatever its save() left on it."""
    app.pk = None
    app._state.adding = True
