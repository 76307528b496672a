"""python manage.py send_notifications [--loop --interval SECONDS] [--now ISO8601] [--json]

Plans every due expiry notice into the ledger, then delivers the ledger. Safe to run in any
number of processes at once: the ledger's unique constraint keeps each notice to one row, and a
row is claimed by one sender before anything is sent.
"""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ...notifications import ledger as notify


def parse_instant(text: str) -> datetime:
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--now {text!r} is not an ISO 8601 date and time, e.g. 2026-12-01T08:00:00Z."
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Plan and send expiry and health-check notices (any number of instances at once)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep running; stop on SIGTERM or Ctrl-C.")
        parser.add_argument(
            "--interval", type=float, default=300.0, metavar="SECONDS", help="Pause between rounds."
        )
        parser.add_argument(
            "--now", metavar="ISO8601", help="Act as if it were this instant (catch-up, tests)."
        )
        parser.add_argument("--json", action="store_true", help="One JSON line per round.")

    def handle(self, *args, **options):
        fixed_now = parse_instant(options["now"]) if options["now"] else None
        stop = threading.Event()
        if options["loop"]:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        while True:
            now = fixed_now or timezone.now()
            planned = notify.plan(now)
            outcome = notify.deliver(now)
            self.report(planned, outcome, options["json"])
            if not options["loop"] or stop.wait(options["interval"]):
                return

    def report(self, planned: int, outcome: dict, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({"planned": planned, **outcome}))
            return
        parts = [f"{count} {what}" for what, count in sorted(outcome.items())]
        self.stdout.write(f"{planned} new notice(s) planned; " + (", ".join(parts) or "nothing to send"))
