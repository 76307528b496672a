"""python manage.py import_certs --app SLUG [--create-app] [--password-env VAR] [--store-keys] [--json] PATH..."""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from certmgr.models import Application, Certificate

from ...inventory.importer import Importer, ImportResult
from ...lib import lookup

# Below this, starting a worker process costs more than it saves (bench/import_bench.py).
PARALLEL_FROM = 2000


class Command(BaseCommand):
    help = "Import certificate files (or every file under directories) into one application."
    # Built once per process and way of calling: argparse takes longer to build this parser than
    # to read a certificate, and a script importing application by application (call_command in
    # a loop, bench/import_bench.py per application) would build it for every run. Parsing does
    # not change a parser.
    _parsers: dict[tuple, object] = {}

    def create_parser(self, prog_name, subcommand, **kwargs):
        key = (prog_name, subcommand, getattr(self, "_called_from_command_line", None), *kwargs.items())
        if key not in self._parsers:
            self._parsers[key] = super().create_parser(prog_name, subcommand, **kwargs)
        return self._parsers[key]

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
        app = self._application(options["app"], options["create_app"])
        password = self._password(options["password_env"])
        # The files are listed as they are imported, never all at once (memory stays flat in their
        # number); the first PARALLEL_FROM are looked at ahead to choose how many workers parse.
        listed = _files(options["paths"])
        head = list(itertools.islice(listed, PARALLEL_FROM))
        files = itertools.chain(head, listed)
        lifecycle = Certificate.Lifecycle.STAGED if options["staged"] else Certificate.Lifecycle.ACTIVE
        importer = Importer(
            app,
            store_keys=options["store_keys"],
            actor_label="import_certs",
            lifecycle=lifecycle,
            new_application=app.pk is None,  # saved with the first certificates, in one commit
        )
        failures = imported = 0
        many = len(head) >= PARALLEL_FROM
        bar = sys.stderr.isatty() and len(head) >= 20
        progress = tqdm(
            # For the bar's total, a long list is counted by a walk of its own (names only, none kept).
            total=sum(1 for _ in _files(options["paths"])) if bar and many else len(head),
            unit="file",
            file=sys.stderr,
            disable=not bar,
            leave=False,
        )
        jobs = options["jobs"]
        if jobs is None:
            jobs = max(1, (os.cpu_count() or 2) - 1) if many else 0
        out = self.stdout._out
        with progress:
            # Below a bar, a line goes through tqdm so that the bar is drawn again after it.
            emit = out.write if progress.disable else lambda text: progress.write(text, file=out, end="")
            results = importer.import_paths(files, password, jobs=jobs, on_parsed=lambda: progress.update(1))
            for result in results:
                imported += 1
                failures += not result.ok
                line = json.dumps(result.as_json(importer.application)) if options["json"] else _line(result)
                emit(line + "\n")
        app = importer.application  # another import may have created the same slug meanwhile
        if not options["json"]:
            self.stderr.write(
                f"{imported - failures} of {imported} file(s) imported into '{app.slug}', {failures} failed."
            )
        if failures or not imported:
            raise SystemExit(1)

    def _application(self, slug: str, create: bool) -> Application:
        """The application; with ``create``, a new one not saved yet if there is none: the
        importer saves it with the first certificates it stores."""
        app = lookup.one(Application, "slug", slug)
        if app is not None:
            return app
        if not create:
            raise CommandError(f"No application '{slug}'. Create it in the portal or pass --create-app.")
        app = Application(slug=slug, name=slug)
        try:
            app.full_clean(validate_unique=False)  # just looked: no such slug
        except ValidationError as exc:
            raise CommandError(f"Cannot create application '{slug}': {' '.join(exc.messages)}") from None
        return app

    def _password(self, variable: str | None) -> str | None:
        if variable is None:
            return None
        if variable not in os.environ:
            raise CommandError(f"--password-env names {variable}, but that environment variable is not set.")
        return os.environ[variable]


def _files(paths: list[str]) -> Iterator[str]:
    """Each file as a string (a Path per file would hold its parts too: 100,000 of them cost 25 MiB
    more at the peak), spelled as its Path would print it."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from _regular_files_under(str(path))
        else:
            yield str(path)  # a missing file is reported by the importer, in order


def _regular_files_under(top: str) -> Iterator[str]:
    """Every file under ``top``, in the order sorted(Path.rglob) gives (by path components): a link
    to a file counts, linked directories are not entered, and FIFOs, sockets and devices are left
    out (reading one could wait forever). Each directory's entries are sorted by name and a
    subdirectory's files come at its place: no sort over every path, no key per path. os.scandir
    knows each entry's type without a stat per file; a stack of its own, not recursion, so no depth
    of directories can reach Python's recursion limit. A generator: only the directories on the
    way down are held, not the files found."""
    stack = [iter(_entries(top))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif entry.is_dir(follow_symlinks=False):
            stack.append(iter(_entries(_child(top, entry))))
        elif entry.is_file():
            yield _child(top, entry)


def _entries(directory: str) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError:  # unreadable, or gone meanwhile: as rglob, go on with the rest
        return []


def _child(top: str, entry: os.DirEntry) -> str:
    # scandir(".") names "./a.pem"; Path("./a.pem") prints "a.pem".
    return entry.path[2:] if top == "." and entry.path.startswith("./") else entry.path


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
