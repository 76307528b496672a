"""Re-encrypt every stored private key with the first key of CERTMGR_ENCRYPTION_KEYS.

Rotation: put a new key first in the list, run this, then remove the old key. Safe to rerun.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from certmgr.models import AuditEvent, Certificate, PendingKey

from ...inventory.keys import vault


class Command(BaseCommand):
    help = "Re-encrypt stored private keys with the current (first) encryption key."

    def handle(self, *args, **options):
        box = vault()
        count = 0
        for model in (
            Certificate,
            PendingKey,
        ):  # pending keys: generated in the portal, awaiting a certificate
            rows = model.objects.filter(encrypted_private_key__isnull=False).values_list("pk", flat=True)
            for pk in rows.iterator():
                with transaction.atomic():
                    row = model.objects.select_for_update().only("encrypted_private_key").get(pk=pk)
                    row.encrypted_private_key = box.rotate(row.encrypted_private_key)
                    row.save(update_fields=["encrypted_private_key"])
                    count += 1
        AuditEvent.objects.create(
            actor_label="rotate_encryption_keys",
            action=AuditEvent.Action.KEYS_ROTATED,
            detail=f"{count} private key(s) re-encrypted",
        )
        self.stdout.write(f"Re-encrypted {count} private key(s) with the current encryption key.")
