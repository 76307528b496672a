"""python manage.py new_key --app SLUG --subject "CN=...,O=...,C=DE" [--key-type rsa-2048|rsa-4096|ec-p256]
                           [--out FILE]

Starts a rotation: generates a key for the application (stored encrypted as a pending key,
audited) and prints the certificate signing request (PEM) on stdout, or writes it to FILE.
Have it signed, then upload or import the certificate: it is stored with this key. The key is
never printed; unused, it is deleted after CERTMGR_PENDING_KEY_DAYS.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from certmgr.core.csr import DEFAULT_KEY_TYPE, KEY_TYPES
from certmgr.models import Application

from ...rotation import pending_keys


class Command(BaseCommand):
    help = "Generate a new key (kept encrypted, pending) and print its CSR."

    def add_arguments(self, parser):
        parser.add_argument("--app", required=True, metavar="SLUG", help="The application to rotate.")
        parser.add_argument(
            "--subject",
            required=True,
            help='The CSR subject, RFC 4514, e.g. "CN=frontend-app,O=Example,C=DE" (keep the subject DN of '
            "the certificate in use: IAS may take up to 24 h to replicate a changed one).",
        )
        parser.add_argument("--key-type", choices=list(KEY_TYPES), default=DEFAULT_KEY_TYPE)
        parser.add_argument("--out", metavar="FILE", help="Write the CSR to FILE instead of stdout.")

    def handle(self, *args, **options):
        app = Application.objects.filter(slug=options["app"]).first()
        if app is None:
            raise CommandError(f"No application '{options['app']}'.")
        try:
            pending = pending_keys.create(
                app, subject=options["subject"], key_type=options["key_type"], actor_label="manage.py new_key"
            )
        except pending_keys.PendingKeyError as exc:
            raise CommandError(str(exc)) from None
        if options["out"]:
            try:
                Path(options["out"]).write_text(pending.csr_pem, encoding="ascii")
            except OSError as exc:
                pending_keys.discard(pending, actor_label="manage.py new_key")
                raise CommandError(
                    f"Cannot write {options['out']}: {exc.strerror}; the key was discarded."
                ) from None
            self.stderr.write(f"CSR written to {options['out']}.")
        else:
            self.stdout.write(pending.csr_pem, ending="")
        self.stderr.write(
            f"Pending key #{pending.pk} ({pending.get_key_type_display()}) for {app.slug}: upload or import the "
            f"signed certificate before {pending.expires_at:%Y-%m-%d %H:%M} UTC; it is stored with this key."
        )
