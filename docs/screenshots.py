"""The README's pictures, made from the demo that `./dev run` shows, so they stay current.

    .venv/bin/python docs/screenshots.py [--out docs/img]

In a temporary directory (nothing of .local/ or db.sqlite3 is touched) it does what `./dev run`
does — migrate, the local admin, the IAS stand-in with the demo application — adds a few more
applications whose certificates expire at different times (through the normal import path), runs
the demo's health check, starts the development server, logs in as the local admin in headless
Chromium (/usr/bin/chromium) and takes three pictures: the dashboard, a certificate's binding
parameters panel and a health-check run. pngquant, where installed, makes them small.
Everything listens on 127.0.0.1 only and stops when the script ends.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip
# (name, slug, days until the certificate expires); None: no certificate yet.
FLEET = [
    ("Payroll API", "payroll-api", -3),
    ("Customer portal", "customer-portal", 12),
    ("Billing backend", "billing-backend", 27),
    ("Partner gateway", "partner-gateway", 95),
    ("Reporting", "reporting", 210),
    ("Mobile backend", "mobile-backend", None),
]
FAILING = "partner-gateway"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(*args: str, env: dict) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up within {seconds:.0f} s")
        time.sleep(0.3)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def add_fleet(tenant_url: str) -> None:
    """A few more applications next to the demo, each certificate stored through the import path.
    The partner gateway points at the stand-in too, but its certificate is not registered there:
    its health check fails as IAS would refuse it (invalid_client)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from certmgr.core.parse import parse_certificate_input
    from certmgr.inventory.importer import Importer
    from certmgr.models import Application

    now = datetime.now(UTC).replace(microsecond=0)
    for i, (name, slug, days) in enumerate(FLEET):
        app, _ = Application.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "client_id": f"7a1c{i:04d}-demo-{slug}",
                "tenant_url": "https://example.accounts.ondemand.com",
            },  # fmt: skip
        )
        if days is None or app.certificates.exists():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Corp"),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"{slug} (demo)")])  # fmt: skip
        cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=days) - timedelta(days=365))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        pem = cert.public_bytes(serialization.Encoding.PEM)
        failing = slug == FAILING
        if failing:
            app.tenant_url, app.domains = tenant_url, []
            app.save()
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()) + pem  # fmt: skip
        [result] = Importer(app, store_keys=failing, actor_label="docs/screenshots.py").save(
            [("demo", parse_certificate_input(pem))]
        )
        assert result.ok, result.error


def demo_objects() -> tuple[str, str]:
    """The demo certificate's page and its latest health-check run's page."""
    from certmgr.healthcheck import runner
    from certmgr.models import Application

    runner.run_check(
        Application.objects.get(slug=FAILING), trigger="scheduled", actor_label="scheduled health check"
    )
    demo = Application.objects.get(slug="demo")
    run = runner.run_check(demo, trigger="manual", actor_label="admin")
    return demo.certificates.active().get().get_absolute_url(), run.get_absolute_url()


def shoot(base: str, password: str, certificate: str, run: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 700}, color_scheme="light")
        page.goto(base + "/login/")
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(base + "/")
        page.screenshot(path=out / "dashboard.png", full_page=True)
        shots.append(out / "dashboard.png")
        page.goto(base + certificate + "#binding")
        panel = page.locator("section#binding")
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=out / "binding-parameters.png")
        shots.append(out / "binding-parameters.png")
        page.goto(base + run)
        page.locator("main").screenshot(path=out / "health-check-run.png")
        shots.append(out / "health-check-run.png")
        browser.close()
    return shots


def optimise(paths: list[Path]) -> None:
    if not shutil.which("pngquant"):
        print("pngquant not found: the pictures stay as Chromium saved them")
        return
    for path in paths:
        subprocess.run(["pngquant", "--force", "--skip-if-larger", "--quality", "70-95", "--output", str(path), str(path)],
                       check=False)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    out = parser.parse_args(argv).out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="certmgr-screenshots-") as tmp:
        port, ias_port, backend_port = free_port(), free_port(), free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "CERTMGR_", "DATABASE_URL", "VCAP_"))
        }
        env.update(DJANGO_DEBUG="1", CERTMGR_LOCAL_DIR=f"{tmp}/local", SQLITE_PATH=f"{tmp}/db.sqlite3",
                   CERTMGR_PORTAL_URL=base, DJANGO_SETTINGS_MODULE="portal.settings")  # fmt: skip
        manage("migrate", "--noinput", env=env)
        manage("ensure_dev_admin", env=env)
        processes = [subprocess.Popen(
            [sys.executable, "manage.py", "sandbox", "--port", str(ias_port), "--backend-port", str(backend_port),
             "--portal", base], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)]  # fmt: skip
        try:
            wait_for(lambda: Path(tmp, "local", "sandbox", "ready").exists(), "The IAS stand-in")
            os.environ.update(env)  # the settings read now see the stand-in's CA and login client
            sys.path.insert(0, str(ROOT))
            import django

            django.setup()
            add_fleet(Path(tmp, "local", "sandbox", "ready").read_text().strip())
            certificate, run = demo_objects()
            processes.append(subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", str(port)],
                                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            wait_for(lambda: listening(port), "The portal")
            password = Path(tmp, "local", "admin-password").read_text().strip()
            shots = shoot(base, password, certificate, run, out)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)
    optimise(shots)
    for path in shots:
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size // 1024} KiB"
        )


if __name__ == "__main__":
    main()
