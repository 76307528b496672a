"""python manage.py run_health_checks [--app SLUG] [--json] [--loop --interval SECONDS]

Checks every due application (each has its own interval, default 60 minutes) with a bounded
pool of threads. Safe to run in any number of processes at once: an application is claimed
with a conditional UPDATE before it is checked, so each due one is checked once per interval.
"""

from __future__ import annotations

import json
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from certmgr.management.commands.healthcheck import run_as_json

from ...healthcheck.schedule import run_due


class Command(BaseCommand):
    help = "Run the token-flow health checks that are due."

    def add_arguments(self, parser):
        parser.add_argument("--app", metavar="SLUG", help="Only this application (if it is due).")
        parser.add_argument("--json", action="store_true", help="Print each round as one JSON line.")
        parser.add_argument("--loop", action="store_true", help="Keep running; stop on SIGTERM or Ctrl-C.")
        parser.add_argument(
            "--interval", type=float, default=60.0, metavar="SECONDS", help="Pause between rounds (--loop)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.CERTMGR_HEALTHCHECK_WORKERS,
            help="Checks run at once (default: CERTMGR_HEALTHCHECK_WORKERS, 8).",
        )

    def handle(self, *args, **options):
        stop = threading.Event()
        if options["loop"]:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        while True:
            runs = [
                run for run in run_due(slug=options["app"], workers=options["workers"]) if run is not None
            ]
            self.report(runs, options["json"])
            if not options["loop"] or stop.wait(options["interval"]):
                return

    def report(self, runs, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps([run_as_json(run) for run in runs]))
            return
        for run in runs:
            verdict = "ok" if run.ok else f"FAILED at {run.failed_step}: {run.diagnosis}"
            self.stdout.write(f"{run.application.slug}: {verdict}")
