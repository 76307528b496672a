"""python manage.py worker [--notify-interval SECONDS] [--check-interval SECONDS] [--cf-interval SECONDS] [--once]

The background work of a deployment in one process (Cloud Foundry's `worker` process): the
notification round (plan the due notices, deliver the ledger, delete the pending keys past
CERTMGR_PENDING_KEY_DAYS) every --notify-interval, the scheduled health checks every
--check-interval, and, with CERTMGR_CF_API set, the Cloud Foundry landscape sync when it is due
(every CERTMGR_CF_SYNC_MINUTES; looked at every --cf-interval). SIGTERM or Ctrl-C stops it after
the current step. Any number of instances may run at once: notices are claimed row by row, each
application is claimed before its check and each foundation before its sync (see
send_notifications, run_health_checks and cf_sync).
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone

from ...healthcheck import schedule as healthchecks
from ...landscape import scan as landscape
from ...notifications import ledger as notify
from ...rotation import pending_keys

log = logging.getLogger("certmgr.worker")


class Command(BaseCommand):
    help = "Run the notification and health-check rounds in a loop (stop with SIGTERM)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--notify-interval",
            type=float,
            default=300.0,
            metavar="SECONDS",
            help="Between notification rounds (default 300).",
        )
        parser.add_argument(
            "--check-interval",
            type=float,
            default=60.0,
            metavar="SECONDS",
            help="Between health-check rounds (default 60).",
        )
        parser.add_argument(
            "--cf-interval",
            type=float,
            default=60.0,
            metavar="SECONDS",
            help="How often to look whether the Cloud Foundry sync is due (default 60).",
        )
        parser.add_argument("--once", action="store_true", help="One round of each, then exit.")

    def handle(self, *args, **options):
        intervals = {
            "notify": options["notify_interval"],
            "checks": options["check_interval"],
            "landscape": options["cf_interval"],
        }
        if min(intervals.values()) <= 0:
            raise CommandError(
                "--notify-interval, --check-interval and --cf-interval must be more than 0 seconds."
            )
        rounds = {"notify": self.notify_round, "checks": self.check_round, "landscape": self.landscape_round}
        stop = threading.Event()
        if not options["once"]:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        log.info(
            "worker started: notices every %ss, health checks every %ss",
            intervals["notify"],
            intervals["checks"],
        )
        next_at = dict.fromkeys(rounds, time.monotonic())
        failed = []
        while not stop.is_set():
            for name, run in rounds.items():
                if stop.is_set() or time.monotonic() < next_at[name]:
                    continue
                if not self.step(name, run):
                    failed.append(name)
                next_at[name] = time.monotonic() + intervals[name]
            if options["once"]:
                if failed:
                    raise CommandError(f"The {' and '.join(failed)} round failed (see the log).")
                break
            stop.wait(max(0.0, min(next_at.values()) - time.monotonic()))
        log.info("worker stopped")

    def step(self, name: str, run) -> bool:
        """One round; a failure is logged and the loop goes on (the database may come back)."""
        tidy_connections()
        try:
            run()
        except Exception:  # noqa: BLE001 - a worker that dies on one bad round checks nothing
            log.exception("worker: the %s round failed", name)
            return False
        finally:
            tidy_connections()
        return True

    def notify_round(self) -> None:
        now = timezone.now()
        planned = notify.plan(now)
        outcome = notify.deliver(now)
        sent = ", ".join(f"{count} {what}" for what, count in sorted(outcome.items())) or "nothing to send"
        log.info("notification round: %s planned; %s", planned, sent)
        self.stdout.write(f"notices: {planned} planned; {sent}")
        expired = pending_keys.delete_expired(now)
        if expired:
            self.stdout.write(f"pending keys: {expired} expired and deleted")

    def check_round(self) -> None:
        runs = [run for run in healthchecks.run_due() if run is not None]
        failed = sum(1 for run in runs if not run.ok)
        log.info("health-check round: %s checked, %s failed", len(runs), failed)
        self.stdout.write(f"health checks: {len(runs)} checked, {failed} failed")

    def landscape_round(self) -> None:
        result = landscape.sync_due()  # nothing without CERTMGR_CF_API, or when not due
        if result is not None:
            self.stdout.write(
                f"cf sync of {result.foundry.name}: {len(result.lines)} bindings, {result.imported} imported"
            )


def tidy_connections() -> None:
    """What Django does around each request: drop broken or too old (CONN_MAX_AGE) connections.

    A connection inside a transaction is left alone (the test suite runs everything in one).
    """
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close_if_unusable_or_obsolete()
