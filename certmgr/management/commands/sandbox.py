"""python manage.py sandbox [--port 8443] [--backend-port 8444] [--cf-port 8445] [--uaa-port 8446] [--no-demo]

Runs the local IAS stand-in and its protected backend (package iasstandin) on 127.0.0.1, with
its state in .local/sandbox/, and points a demo application at it whose certificate is
registered there. With the demo it also runs a Cloud Foundry API stand-in (iasstandin.cfapi) whose
bindings hold the demo certificate and a forgotten X509_GENERATED service key, for
`cf_sync` to find (technical user cf-scanner, the password in .local/admin-password).
`./dev run` starts it next to the portal; the portal trusts the stand-ins' CA through
.local/sandbox/ca.pem (CERTMGR_CA_BUNDLE in development).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iasstandin import serve
from iasstandin.cfapi import CloudFoundry


class Command(BaseCommand):
    help = "Run the local IAS stand-in (development and demos) and set up the demo application."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8443, help="Port of the IAS tenant (default 8443).")
        parser.add_argument(
            "--backend-port", type=int, default=8444, help="Port of the protected backend (default 8444)."
        )
        parser.add_argument(
            "--cf-port", type=int, default=8445, help="Port of the Cloud Foundry API (default 8445)."
        )
        parser.add_argument("--uaa-port", type=int, default=8446, help="Port of its UAA (default 8446).")
        parser.add_argument(
            "--no-demo",
            action="store_true",
            help="Do not create or update the demo application (nor run the Cloud Foundry stand-in).",
        )
        parser.add_argument(
            "--portal",
            default="http://127.0.0.1:8000",
            help="The portal's URL, for logging on through the stand-in (default http://127.0.0.1:8000).",
        )

    def handle(self, *args, port, backend_port, cf_port, uaa_port, no_demo, portal, **options):
        if not settings.DEBUG:
            raise CommandError("The IAS stand-in is for development and demos (DJANGO_DEBUG=1) only.")
        directory = settings.CERTMGR_SANDBOX_DIR
        marker = directory / "ready"
        marker.unlink(missing_ok=True)
        self.cloud_foundry = None

        def ready(standin):
            if not no_demo:
                pem = self.set_up_demo(standin)
                self.set_up_login(standin, portal)
                self.set_up_cloud_foundry(standin, pem, cf_port, uaa_port)
            marker.write_text(standin.url + "\n")
            self.stdout.write("The stand-in is ready; stop it with Ctrl-C.")

        try:
            serve(directory, port, backend_port, ready=ready)
        except OSError as exc:
            raise CommandError(
                f"The stand-ins could not listen on 127.0.0.1:{port}/{backend_port}/{cf_port}/{uaa_port}: "
                f"{exc.strerror}."
            ) from None
        finally:
            if self.cloud_foundry is not None:
                self.cloud_foundry.stop()
            marker.unlink(missing_ok=True)

    def set_up_login(self, standin, portal: str) -> None:
        from certmgr.sandbox import ensure_login

        path = settings.LOCAL_DIR / "admin-password"
        if not path.exists():
            self.stdout.write("No .local/admin-password (run manage.py ensure_dev_admin): no IAS test users.")
            return
        users = ensure_login(standin, portal, path.read_text().strip())
        self.stdout.write(
            f"Log on through the stand-in as {' or '.join(users)} (admin, viewer) with the password in {path}."
        )

    def set_up_demo(self, standin) -> None:
        from certmgr.sandbox import ensure_demo

        app, pem = ensure_demo(standin.url, standin.backend_url)
        standin.register(app.client_id, pem)
        self.stdout.write(
            f"Demo application '{app.slug}': client id {app.client_id}, certificate registered."
        )
        return pem

    def set_up_cloud_foundry(self, standin, demo_pem: str, cf_port: int, uaa_port: int) -> None:
        from certmgr.sandbox import CF_SPACE, CF_USER, ensure_cf_world

        path = settings.LOCAL_DIR / "admin-password"
        world = ensure_cf_world(standin.directory, standin.url, demo_pem)
        # Same CA as the IAS stand-in: the portal already trusts it.
        self.cloud_foundry = CloudFoundry(world, pki=standin.pki).start(cf_port, uaa_port)
        if path.exists():  # the least role that may read credentials: Space Developer of that one space
            self.cloud_foundry.add_user(CF_USER, path.read_text().strip(), "space_developer", [CF_SPACE])
        self.stdout.write(
            f"Cloud Foundry API stand-in: {self.cloud_foundry.url} (UAA {self.cloud_foundry.uaa_url}), "
            f"technical user {CF_USER} with the password in {path}."
        )
