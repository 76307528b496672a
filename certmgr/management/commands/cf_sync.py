"""python manage.py cf_sync [--json] [--dry-run] [--loop --interval SECONDS]

Reads every app binding and service key of the ``identity`` offering in the Cloud Foundry
foundation CERTMGR_CF_API names, stores the certificates they hold and records the bindings
(certmgr/landscape/scan.py). ``--json``: one object per binding on stdout, nothing else there.
Exit 0 when the sync completed; otherwise a one-line reason on stderr and 2 (not configured),
3 (credentials refused), 4 (the API failed, is unreachable or answered nonsense) or 5 (a host
refused: the login server is neither the API's sibling nor in CERTMGR_CF_HOSTS).
``--loop``: the schedule (CERTMGR_CF_SYNC_MINUTES), claimed like the worker's, until SIGTERM.
"""

from __future__ import annotations

import json
import signal
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ...core.cfapi import CfError
from ...landscape import scan

EXIT_CODES = {CfError.CONFIG: 2, CfError.CREDENTIALS: 3, CfError.HOST: 5}


class Command(BaseCommand):
    help = "Read the identity bindings of the Cloud Foundry landscape and store their certificates."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON object per binding, nothing else.")
        parser.add_argument("--dry-run", action="store_true", help="Read and report; store nothing.")
        parser.add_argument("--loop", action="store_true", help="Sync when due, until SIGTERM or Ctrl-C.")
        parser.add_argument(
            "--interval", type=float, default=60.0, metavar="SECONDS", help="How often --loop looks (60)."
        )

    def handle(self, *args, **options):
        if options["loop"]:
            return self.loop(options["interval"])
        try:
            result = self.run_once(options["dry_run"])
        except CfError as exc:
            raise CommandError(
                " ".join(exc.message.split()), returncode=EXIT_CODES.get(exc.code, 4)
            ) from None
        if options["json"]:
            for item in result.lines:
                self.stdout.write(_json(item))
        else:
            self.report(result, options["dry_run"])

    def run_once(self, dry_run: bool) -> scan.SyncResult:
        if not dry_run:
            return scan.sync(_foundry())
        with transaction.atomic():  # a dry run leaves not even the foundation's row behind
            result = scan.sync(_foundry(), dry_run=True)
            transaction.set_rollback(True)
        return result

    def loop(self, interval: float) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            result = scan.sync_due()
            if result is not None:
                self.stdout.write(_summary(result, dry_run=False))
            stop.wait(interval)

    def report(self, result: scan.SyncResult, dry_run: bool) -> None:
        for item in result.lines:
            holder = item["app"] if item["type"] == "app" else f"key {item['binding']}"
            held = (
                f"{item['fingerprint'][:16]}… expires {item['not_after'][:10]}"
                if item["fingerprint"]
                else "-"
            )
            where = f"{item['application']} ({item['status']})" if item["application"] else "no application"
            self.stdout.write(
                f"{item['space']}  {item['instance']}  {holder}  {item['credential_type'] or 'unreadable'}"
                f"  {held}  -> {where}"
            )
        self.stdout.write(_summary(result, dry_run))


def _foundry():
    foundry = scan.configured_foundry()
    if foundry is None:
        raise CfError(CfError.CONFIG, "CERTMGR_CF_API is not set: there is no landscape to read.")
    return foundry


def _summary(result: scan.SyncResult, dry_run: bool) -> str:
    created = ", ".join(result.created_applications)
    return (
        f"{result.foundry.name}: {result.instances} identity instances, {len(result.lines)} bindings"
        f" ({result.pending} being created or deleted); {result.imported} certificates imported"
        + (f", applications created: {created}" if created else "")
        + f"; {result.removed} bindings gone"
        + (" (dry run: nothing stored)" if dry_run else "")
    )


def _json(item: dict) -> str:
    return json.dumps(item, sort_keys=False, separators=(", ", ": "))
