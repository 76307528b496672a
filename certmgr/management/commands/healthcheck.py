"""python manage.py healthcheck SLUG [--json]

Runs the token-flow health check of one application now and prints each step. Exit status 0
when healthy, 1 otherwise. A run by hand also resumes scheduled checks paused after refusals.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from certmgr.models import Application, HealthCheckRun

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
    return {"ok": run.ok, "application": run.application.slug, "steps": steps}


class Command(BaseCommand):
    help = "Run the token-flow health check of one application now."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The application's slug.")
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON document.")

    def handle(self, *args, slug, **options):
        try:
            application = Application.objects.get(slug=slug)
        except Application.DoesNotExist:
            raise CommandError(f"No application with the slug {slug!r}.") from None
        check = Check(
            application, trigger=HealthCheckRun.Trigger.COMMAND, actor_label="manage.py healthcheck"
        )
        try:
            for step in check:
                if not options["json"]:
                    self.stdout.write(step_line(step.to_dict()))
        except NotCheckable as exc:
            if options["json"]:
                self.stdout.write(
                    json.dumps({"ok": False, "application": slug, "steps": [], "error": str(exc)})
                )
                sys.exit(1)
            raise CommandError(f"{slug} cannot be checked: {exc}") from None
        run = check.run
        if options["json"]:
            self.stdout.write(json.dumps(run_as_json(run)))
        else:
            self.stdout.write(f"{slug}: {'healthy' if run.ok else 'FAILED at ' + run.failed_step}")
        if not run.ok:
            sys.exit(1)
