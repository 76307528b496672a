"""python manage.py healthcheck SLUG [--certificate FINGERPRINT_OR_ID] [--json]

Runs the token-flow health check of one application now and prints each step. Exit status 0
when healthy, 1 otherwise. A run by hand also resumes scheduled checks paused after refusals.
With --certificate, the check uses that certificate of the application (a staged one, before
the switch) and changes nothing about which one is active; only a run of the certificate in use
becomes the application's health.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from certmgr.models import Application, Certificate, HealthCheckRun

from ...bindings.parameters import find
from ...healthcheck.runner import Check, NotCheckable

JSON_STEP_KEYS = ("name", "ok", "duration_ms", "status", "diagnosis")


def step_line(step: dict) -> str:
    """The step's line, and a "warning:" line under it per warning."""
    mark = {True: "ok  ", False: "FAIL", None: "-   "}[step["ok"]]
    took = "" if step["duration_ms"] is None else f" ({step['duration_ms']:.0f} ms)"
    status = f" HTTP {step['status']}" if step["status"] else ""
    warnings = "".join(f"\n     warning: {warning}" for warning in step.get("warnings", []))
    return f"{mark} {step['name']:<17}{status}{took}  {step['diagnosis']}{warnings}"


def run_as_json(run: HealthCheckRun) -> dict:
    # Runs stored before steps had warnings have none.
    steps = [
        {**{key: step[key] for key in JSON_STEP_KEYS}, "warnings": step.get("warnings", [])}
        for step in run.steps
    ]
    fingerprint = run.certificate.fingerprint if run.certificate else None
    return {"ok": run.ok, "application": run.application.slug, "certificate": fingerprint, "steps": steps}


class Command(BaseCommand):
    help = "Run the token-flow health check of one application now."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The application's slug.")
        parser.add_argument(
            "--certificate",
            metavar="FINGERPRINT_OR_ID",
            help="Check with this certificate of the application (its id, or at least 8 hex digits of its "
            "SHA-256 fingerprint) instead of the one in use; which one is active does not change.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON document.")

    def handle(self, *args, slug, **options):
        try:
            application = Application.objects.get(slug=slug)
        except Application.DoesNotExist:
            raise CommandError(f"No application with the slug {slug!r}.") from None
        certificate = self._certificate(application, options["certificate"])
        check = Check(
            application,
            trigger=HealthCheckRun.Trigger.COMMAND,
            actor_label="manage.py healthcheck",
            certificate=certificate,
        )
        try:
            for step in check:
                if not options["json"]:
                    self.stdout.write(step_line(step.to_dict()))
        except NotCheckable as exc:
            self._not_checkable(slug, certificate, exc, options["json"])
        run = check.run
        if options["json"]:
            self.stdout.write(json.dumps(run_as_json(run)))
        else:
            what = (
                f" with {certificate.lifecycle} certificate {certificate.fingerprint[:16]}…"
                if certificate
                else ""
            )
            self.stdout.write(f"{slug}{what}: {'healthy' if run.ok else 'FAILED at ' + run.failed_step}")
        if not run.ok:
            sys.exit(1)

    def _not_checkable(self, slug: str, certificate: Certificate | None, exc: NotCheckable, as_json: bool):
        if not as_json:
            raise CommandError(f"{slug} cannot be checked: {exc}") from None
        fingerprint = certificate.fingerprint if certificate else None
        failed = {
            "ok": False,
            "application": slug,
            "certificate": fingerprint,
            "steps": [],
            "error": str(exc),
        }
        self.stdout.write(json.dumps(failed))
        sys.exit(1)

    def _certificate(self, application: Application, reference: str | None) -> Certificate | None:
        if reference is None:
            return None
        found = find(reference, within=application.certificates.all())
        if found is None:
            raise CommandError(
                f"No single certificate of {application.slug} matches {reference!r}: give its id, or at least "
                "8 hex digits of its SHA-256 fingerprint."
            )
        return found
