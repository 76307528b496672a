"""python manage.py import_certs --app SLUG [--create-app] [--password-env VAR] [--store-keys] [--json] PATH..."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from tqdm import tqdm

from certmgr.models import Application, Certificate

from ...inventory.importer import Importer, ImportResult

# Below this, starting a worker process costs more than it saves (bench/import_bench.py).
PARALLEL_FROM = 2000


class Command(BaseCommand):
    help = "Import certificate files (or every file under directories) into one application."

    def add_arguments(self, parser):
        parser.add_argument(
            "paths", nargs="+", metavar="PATH", help="A file or a directory (searched recursively)."
        )
        parser.add_argument("--app", required=True, metavar="SLUG", help="The application to import into.")
        parser.add_argument(
            "--create-app", action="store_true", help="Create the application if it does not exist."
        )
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="Environment variable holding the password for .p12 files and encrypted keys "
            "(an empty value means an empty password).",
        )
        parser.add_argument(
            "--store-keys",
            action="store_true",
            help="Keep private keys found (encrypted at rest); otherwise they are discarded.",
        )
        parser.add_argument(
            "--staged", action="store_true", help="Store new certificates as staged for rotation, not active."
        )
        parser.add_argument("--json", action="store_true", help="One JSON object per line per file.")
        parser.add_argument(
            "--jobs",
            type=int,
            metavar="N",
            help=f"Worker processes that parse while this one stores (default: one per further CPU "
            f"core for {PARALLEL_FROM} files or more, else 0: parse here).",
        )

    def handle(self, *args, **options):
        app, created = self._application(options["app"], options["create_app"])
        password = self._password(options["password_env"])
        files = list(_files(options["paths"]))
        lifecycle = Certificate.Lifecycle.STAGED if options["staged"] else Certificate.Lifecycle.ACTIVE
        importer = Importer(
            app,
            store_keys=options["store_keys"],
            actor_label="import_certs",
            lifecycle=lifecycle,
            new_application=created,
        )
        failures = 0
        progress = tqdm(
            total=len(files),
            unit="file",
            file=sys.stderr,
            disable=not sys.stderr.isatty() or len(files) < 20,
            leave=False,
        )
        jobs = options["jobs"]
        if jobs is None:
            jobs = max(1, (os.cpu_count() or 2) - 1) if len(files) >= PARALLEL_FROM else 0
        with progress:
            results = importer.import_paths(files, password, jobs=jobs, on_parsed=lambda: progress.update(1))
            for result in results:
                failures += not result.ok
                line = json.dumps(result.as_json(app)) if options["json"] else _line(result)
                progress.write(line, file=self.stdout._out)
        if not options["json"]:
            done = len(files) - failures
            self.stderr.write(
                f"{done} of {len(files)} file(s) imported into '{app.slug}', {failures} failed."
            )
        if failures or not files:
            raise SystemExit(1)

    def _application(self, slug: str, create: bool) -> tuple[Application, bool]:
        """The application, and whether this import created it."""
        app = Application.objects.filter(slug=slug).first()
        if app is not None:
            return app, False
        if not create:
            raise CommandError(f"No application '{slug}'. Create it in the portal or pass --create-app.")
        app = Application(slug=slug, name=slug)
        try:
            app.full_clean(validate_unique=False)  # just looked: no such slug
            with transaction.atomic():
                app.save()
        except ValidationError as exc:
            raise CommandError(f"Cannot create application '{slug}': {' '.join(exc.messages)}") from None
        except IntegrityError:  # created meanwhile by someone else: import into that one
            return Application.objects.get(slug=slug), False
        return app, True

    def _password(self, variable: str | None) -> str | None:
        if variable is None:
            return None
        if variable not in os.environ:
            raise CommandError(f"--password-env names {variable}, but that environment variable is not set.")
        return os.environ[variable]


def _files(paths: list[str]):
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from map(Path, _regular_files_under(raw))
        else:
            yield path  # a missing file is reported by the importer, in order


def _regular_files_under(top: str) -> list[str]:
    """Every file under ``top``, in the order sorted(Path.rglob) gives: a link to a file counts,
    linked directories are not entered, and FIFOs, sockets and devices are left out (reading one
    could wait forever). os.scandir knows each entry's type without a stat per file."""
    found, pending = [], [top]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    elif entry.is_file():
                        found.append(entry.path)
        except OSError:  # unreadable, or gone meanwhile: as rglob, go on with the rest
            continue
    return sorted(found, key=lambda name: name.split(os.sep))


def _line(result: ImportResult) -> str:
    if not result.ok:
        return f"FAILED  {result.label}: {result.error}"
    status = "PRESENT" if result.already_present else "OK     "
    if result.key_matched:
        extra = " (key stored: the one generated in the portal for its CSR)"
    else:
        extra = " (key stored)" if result.key_stored else " (key discarded)" if result.key_discarded else ""
    return (
        f"{status} {result.label}  {result.fingerprint[:16]}…  {result.subject}  "
        f"until {result.not_after:%Y-%m-%d %H:%M} UTC  [{result.expiry_state().label}]{extra}"
    )
