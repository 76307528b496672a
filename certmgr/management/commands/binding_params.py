"""python manage.py binding_params FINGERPRINT_OR_ID [--format F] [--chain] [--cf-target key|app]
                                  [--instance N] [--app N] [--key-name N] [--force]

Prints the X509_PROVIDED binding parameters of a stored certificate, exactly the block and
nothing else, so the output can be piped into a file or a command. Pre-flight findings go to
stderr, one line each, prefixed "error:" or "warning:". While an error-level check fails (IAS
would refuse the certificate: expired, used by another application of the tenant, ...), it
prints nothing on stdout and exits 3, unless --force: a pipeline never binds what IAS refuses.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from certmgr.core.binding import CF_TARGETS, FORMATS, Target
from certmgr.core.preflight import PASS

from ...bindings import parameters as bindings

REFUSED = 3  # the exit status while an error-level pre-flight check fails (without --force)


class Command(BaseCommand):
    help = "Print the binding parameters (X509_PROVIDED) of a stored certificate in one tool's form."

    def add_arguments(self, parser):
        parser.add_argument(
            "reference",
            metavar="FINGERPRINT_OR_ID",
            help="The certificate's id, or its SHA-256 fingerprint or a unique prefix of it "
            "(at least 8 hex digits, colons allowed).",
        )
        parser.add_argument(
            "--format", choices=FORMATS, default="json", help="The form to print (default: json)."
        )
        parser.add_argument(
            "--chain", action="store_true", help="Include the issuer certificates after the certificate."
        )
        parser.add_argument(
            "--cf-target",
            choices=CF_TARGETS,
            default=Target.cf_target,
            help="For cf, mta and terraform-cf: a service key (key, the default) or the app's binding (app). "
            "Never both with one certificate: IAS takes a certificate once per tenant.",
        )
        parser.add_argument(
            "--instance", metavar="NAME", default=Target.instance, help="The IAS service instance name."
        )
        parser.add_argument("--app", metavar="NAME", default=Target.app, help="The Cloud Foundry app name.")
        parser.add_argument(
            "--key-name",
            metavar="NAME",
            default=Target.key_name,
            help="The service key or service binding name.",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help=f"Print the parameters although an error-level check fails (else: nothing, exit {REFUSED}).",
        )

    def handle(self, *args, **options):
        reference = options["reference"]
        cert = bindings.find(reference)
        if cert is None:
            raise CommandError(
                f"No single certificate matches {reference!r}: give its id, or at least 8 hex digits "
                "of its SHA-256 fingerprint that match exactly one stored certificate."
            )
        found = bindings.checks(cert)
        for check in found:
            if check.level != PASS:
                self.stderr.write(f"{check.level}: {check.rule}: {check.message}")
        if bindings.blocking(found) and not options["force"]:
            self.stderr.write(
                "IAS would refuse this certificate (the errors above): no parameters printed; --force prints them anyway."
            )
            raise SystemExit(REFUSED)
        target = Target(
            instance=options["instance"],
            app=options["app"],
            key_name=options["key_name"],
            cf_target=options["cf_target"],
        )
        self.stdout.write(
            bindings.rendered(cert, options["format"], chain=options["chain"], target=target), ending=""
        )
