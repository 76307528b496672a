"""A sync: read the landscape (core/cflandscape.py), then store it in one transaction.

Each certificate a binding holds goes through the one storing path (inventory/importer.py), in
the application with the binding's tenant and client id; an application is created (and marked
found in Cloud Foundry) when none exists. A binding row per binding and key of an ``identity``
instance; rows of bindings that are gone are removed. A second sync of an unchanged landscape
adds nothing and changes nothing but ``last_seen``.

Scheduled syncs claim the foundation with a conditional UPDATE on ``next_sync_at``; the store
locks the foundation row, so two syncs that overlap store one after the other.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from ..core.cfapi import CfConfig, CfError
from ..core.cflandscape import FoundBinding, Landscape, read_landscape
from ..inventory.importer import Importer, ImportResult
from ..lib.policy import http_policy
from ..models import RESERVED_SLUGS, Application, AuditEvent, Certificate, tenant_key
from .models import Binding, DiscoveredApplication, Foundry

log = logging.getLogger(__name__)
ACTOR = "cf_sync"


@dataclass
class SyncResult:
    foundry: Foundry
    lines: list[dict] = field(default_factory=list)  # one per binding, as `cf_sync --json` prints them
    instances: int = 0
    pending: int = 0
    imported: int = 0
    created_applications: list[str] = field(default_factory=list)
    removed: int = 0


def configured_foundry() -> Foundry | None:
    """The foundation CERTMGR_CF_API names, as a row (made on first use); None if none is set."""
    if not settings.CERTMGR_CF_API:
        return None
    api = settings.CERTMGR_CF_API
    foundry, _ = Foundry.objects.get_or_create(api_url=api, defaults={"name": Foundry.name_for(api)})
    return foundry


def cf_config(foundry: Foundry) -> CfConfig:
    if foundry.api_url != settings.CERTMGR_CF_API:
        raise CfError(CfError.CONFIG, f"No credentials are configured for {foundry.api_url}.")
    return CfConfig(
        api_url=foundry.api_url,
        username=settings.CERTMGR_CF_USERNAME,
        password=settings.CERTMGR_CF_PASSWORD,
        client_id="" if settings.CERTMGR_CF_USERNAME else settings.CERTMGR_CF_CLIENT_ID,
        client_secret="" if settings.CERTMGR_CF_USERNAME else settings.CERTMGR_CF_CLIENT_SECRET,
        orgs=tuple(settings.CERTMGR_CF_ORGS),
        spaces=tuple(settings.CERTMGR_CF_SPACES),
        login_hosts=tuple(settings.CERTMGR_CF_HOSTS),
        keep_keys=settings.CERTMGR_CF_STORE_KEYS,
    )


def sync(foundry: Foundry, *, dry_run: bool = False, now: datetime | None = None) -> SyncResult:
    """Read and store one foundation; raises CfError (after recording it) when the read fails."""
    now = now or timezone.now()
    try:
        landscape = read_landscape(cf_config(foundry), http_policy())
    except CfError as exc:
        if not dry_run:
            record_failure(foundry, exc, now)
        raise
    with transaction.atomic():
        result = Store(foundry, now).store(landscape)
        if dry_run:
            transaction.set_rollback(True)
        else:
            _mark(foundry, now, ok=True, error="")
    log.info(
        "cf sync of %s: %s identity instances, %s bindings, %s certificates imported, %s removed%s",
        foundry.api_url, result.instances, len(result.lines), result.imported, result.removed,
        " (dry run: nothing stored)" if dry_run else "",
    )  # fmt: skip
    return result


def record_failure(foundry: Foundry, error: CfError, now: datetime) -> None:
    _mark(foundry, now, ok=False, error=error.message)


def _mark(foundry: Foundry, now: datetime, *, ok: bool, error: str) -> None:
    following = now + timedelta(minutes=settings.CERTMGR_CF_SYNC_MINUTES)
    # The next scheduled sync counts from this one, also when it was run by hand.
    Foundry.objects.filter(pk=foundry.pk).update(
        last_sync_at=now, last_sync_ok=ok, last_sync_error=error[:500], next_sync_at=following
    )


def claim(foundry: Foundry, now: datetime) -> bool:
    """The conditional UPDATE: one claimant per due foundation, whatever the number of workers."""
    if foundry.next_sync_at is not None and foundry.next_sync_at > now:
        return False
    until = now + timedelta(minutes=settings.CERTMGR_CF_SYNC_MINUTES)
    won = Foundry.objects.filter(pk=foundry.pk, next_sync_at=foundry.next_sync_at).update(next_sync_at=until)
    return bool(won)


def sync_due(now: datetime | None = None) -> SyncResult | None:
    """The worker's round: sync the configured foundation if it is due and this process claims it."""
    now = now or timezone.now()
    foundry = configured_foundry()
    if foundry is None or not claim(foundry, now):
        return None
    try:
        return sync(foundry, now=now)
    except CfError as exc:  # recorded on the foundation; the next interval tries again
        log.warning("cf sync of %s failed (%s): %s", foundry.api_url, exc.code, exc.message)
        return None


class Store:
    """Writes one read landscape: applications, certificates (through the Importer), binding rows."""

    def __init__(self, foundry: Foundry, now: datetime):
        self.foundry, self.now = foundry, now
        self.store_keys = settings.CERTMGR_CF_STORE_KEYS
        self.applications: dict[tuple[str, str], Application | None] = {}

    def store(self, landscape: Landscape) -> SyncResult:
        # Overlapping syncs of one foundation store one after the other.
        Foundry.objects.select_for_update().filter(pk=self.foundry.pk).first()
        result = SyncResult(self.foundry, instances=landscape.instances, pending=landscape.pending)
        with_certificates = {
            _identity(b) for b in landscape.bindings if b.credentials and b.credentials.certificate
        }
        existing = {row.guid: row for row in self.foundry.bindings.all()}
        for found in landscape.bindings:
            application = self._application(found, _identity(found) in with_certificates, result)
            row = self._binding(found, application, existing.get(found.guid), result)
            result.lines.append(line(found, row, application))
        seen = {found.guid for found in landscape.bindings}
        gone = [row.pk for guid, row in existing.items() if guid not in seen]
        for start in range(0, len(gone), 500):
            Binding.objects.filter(pk__in=gone[start : start + 500]).delete()
        result.removed = len(gone)
        self.foundry.bindings.update(last_seen=self.now)
        return result

    # --- applications --------------------------------------------------------------------------

    def _application(
        self, found: FoundBinding, has_certificate: bool, result: SyncResult
    ) -> Application | None:
        identity = _identity(found)
        if identity is None:
            return None
        if identity not in self.applications:
            tenant, client_id = identity
            matches = [a for a in Application.objects.filter(client_id=client_id) if a.tenant == tenant]
            self.applications[identity] = min(matches, key=lambda a: a.pk, default=None)
        if self.applications[identity] is None and has_certificate:
            self.applications[identity] = self._create_application(found)
            result.created_applications.append(self.applications[identity].slug)
        return self.applications[identity]

    def _create_application(self, found: FoundBinding) -> Application:
        credentials = found.credentials
        application = Application.objects.create(
            name=found.instance_name[:200],
            slug=_free_slug(found.instance_name),
            tenant_url=credentials.tenant_url,
            client_id=credentials.client_id,
            domains=list(credentials.domains),
        )
        DiscoveredApplication.objects.create(
            application=application, foundry=self.foundry, instance_guid=found.instance_guid,
            instance_name=found.instance_name, org=found.org, space=found.space, found_at=self.now,
        )  # fmt: skip
        AuditEvent.record(
            AuditEvent.Action.APPLICATION_CREATED,
            actor_label=ACTOR,
            application=application,
            detail=f"found in Cloud Foundry ({self.foundry.name}): identity instance {found.instance_name} "
            f"in {found.org}/{found.space}",
        )
        return application

    # --- certificates and binding rows -----------------------------------------------------------

    def _certificate(self, found: FoundBinding, application: Application | None, result: SyncResult):
        """(stored certificate or None, fingerprint, not_after, problem) of what the binding holds."""
        label = f"Cloud Foundry binding {found.guid}"
        # Parsing needs no application; storing does (below).
        importer = Importer(application or Application(), store_keys=self.store_keys, actor_label=ACTOR)
        parsed = importer.parse(label, json.dumps(found.credentials.service_key()).encode("utf-8"), None)
        if isinstance(parsed, ImportResult):
            return None, "", None, f"Its certificate could not be read: {parsed.error}"
        fingerprint, not_after = parsed.leaf.sha256, parsed.leaf.not_after
        if application is None:
            known = Certificate.objects.filter(fingerprint=fingerprint).first()
            return known, fingerprint, not_after, "Its credentials name no usable IAS tenant and client id."
        [saved] = importer.save([(label, parsed)])
        if saved.ok:
            result.imported += 0 if saved.already_present else 1
            return saved.certificate, fingerprint, not_after, ""
        # Stored elsewhere in the tenant (or refused): the binding still holds that certificate.
        known = Certificate.objects.filter(fingerprint=fingerprint, tenant=application.tenant).first()
        return known, fingerprint, not_after, saved.error[:500]

    def _binding(self, found: FoundBinding, application, row: Binding | None, result: SyncResult) -> Binding:
        certificate, fingerprint, not_after, problem = None, "", None, found.unreadable
        credentials = found.credentials
        if credentials and credentials.certificate:
            certificate, fingerprint, not_after, problem = self._certificate(found, application, result)
        values = {
            "kind": found.kind, "name": (found.name or "")[:255], "instance_guid": found.instance_guid[:64],
            "instance_name": found.instance_name[:255], "org": found.org[:255], "space": found.space[:255],
            "app_guid": (found.app_guid or "")[:64], "app_name": (found.app_name or "")[:255],
            "credential_type": credentials.credential_type if credentials else "",
            "client_id": credentials.client_id if credentials else "",
            "tenant": tenant_key(credentials.tenant_url) if credentials else "",
            "fingerprint": fingerprint, "not_after": not_after, "certificate": certificate,
            "application": application, "problem": problem[:500],
        }  # fmt: skip
        if row is None:
            return Binding.objects.create(
                foundry=self.foundry, guid=found.guid, first_seen=self.now, last_seen=self.now, **values
            )
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if changed:
            for name in changed:
                setattr(row, name, values[name])
            row.save(update_fields=changed)
        return row


def line(found: FoundBinding, row: Binding, application: Application | None) -> dict:
    """One binding as `cf_sync --json` prints it (the issue's format)."""
    certificate = row.certificate
    return {
        "binding": found.name,
        "guid": found.guid,
        "type": found.kind,
        "instance": found.instance_name,
        "space": f"{found.org}/{found.space}",
        "app": found.app_name,
        "credential_type": row.credential_type or None,
        "fingerprint": row.fingerprint or None,
        "not_after": row.not_after.isoformat() if row.not_after else None,
        "application": application.slug if application else None,
        "status": certificate.lifecycle if certificate else "none",
    }


def _identity(found: FoundBinding) -> tuple[str, str] | None:
    """The IAS application a binding belongs to: (tenant, client id), None without both."""
    credentials = found.credentials
    if credentials is None or not credentials.client_id or not credentials.tenant_url.startswith("https://"):
        return None
    return tenant_key(credentials.tenant_url), credentials.client_id


def _free_slug(name: str) -> str:
    base = (slugify(name)[:80] or "cf-instance").strip("-") or "cf-instance"
    taken = set(Application.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    taken |= RESERVED_SLUGS
    for number in range(1, 1000):
        slug = base if number == 1 else f"{base}-{number}"
        if slug not in taken:
            return slug
    raise CfError(CfError.TOO_MANY, f"No free slug for an application named after {name!r}.")
