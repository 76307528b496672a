"""The demo application of the local IAS stand-in: what `./dev run` shows a newcomer.

A certificate and key are generated here (the stand-in knows nothing of them until they are
registered with it), stored through the normal import path (key encrypted, audited), and the
certificate is registered for the demo client id, so the first health check comes out green.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .core.parse import ParsedInput
from .inventory.importer import Importer
from .models import Application, Certificate

DEMO_SLUG = "demo"
DEMO_CLIENT_ID = "0c5b7d6e-7d1a-4f3e-9a51-6d2c5e8f4a10"
DEMO_VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)


def ensure_demo(tenant_url: str, backend_url: str) -> tuple[Application, str]:
    """The demo application pointed at the stand-in, with a usable certificate; and that PEM."""
    with transaction.atomic():
        app, _ = Application.objects.update_or_create(
            slug=DEMO_SLUG,
            defaults={
                "name": "Demo (local IAS stand-in)",
                "tenant_url": tenant_url,
                "client_id": DEMO_CLIENT_ID,
                "domains": [],
                "backend_url": backend_url.rstrip("/") + "/cert/hello",
                "backend_mtls": True,
                "checks_paused": False,
                "notes": "Created by `manage.py sandbox`: its certificate is registered in the local IAS stand-in.",
            },
        )
        app.owners.add(*get_user_model().objects.filter(is_superuser=True))
    current = _usable_certificate(app)
    if current is None:
        current = _store_new_certificate(app)
    return app, current.pem


LOGIN_CLIENT_ID = "ias-cert-portal-local"
LOGIN_FILE = "login-client.json"  # read by the settings in development: the portal's IAS login
LOGIN_USERS = {"alice": ("Alice", ["CertPortalAdmins"]), "victor": ("Victor", ["CertPortalViewers"])}


def ensure_login(standin, portal_url: str, password: str) -> list[str]:
    """The portal as an OpenID Connect client of the stand-in, and IAS users to log on with.

    A new client secret at every start, kept only in .local/sandbox/login-client.json (0600),
    where the settings find it. Returns the users' login names.
    """
    parts = urlsplit(portal_url.rstrip("/"))
    twins = {
        parts.netloc,
        parts.netloc.replace("127.0.0.1", "localhost"),
        parts.netloc.replace("localhost", "127.0.0.1"),
    }
    portals = sorted(f"{parts.scheme}://{netloc}" for netloc in twins)
    secret = secrets.token_urlsafe(24)
    standin.register_oidc_client(
        LOGIN_CLIENT_ID,
        secret,
        [f"{base}/oidc/callback/" for base in portals],
        post_logout_redirect_uris=[f"{base}/logged-out/" for base in portals],
    )
    for login, (given_name, groups) in LOGIN_USERS.items():
        standin.add_user(
            login,
            password,
            email=f"{login}@example.com",
            given_name=given_name,
            family_name="Example",
            groups=groups,
        )
    path = standin.directory / LOGIN_FILE
    path.touch(mode=0o600)
    path.write_text(
        json.dumps(
            {
                "issuer": standin.url,
                "client_id": LOGIN_CLIENT_ID,
                "client_secret": secret,
                "certificate": None,
                "key": None,
            }
        )
    )
    return list(LOGIN_USERS)


def _usable_certificate(app: Application) -> Certificate | None:
    return (
        app.certificates.active()
        .filter(encrypted_private_key__isnull=False, not_after__gt=timezone.now() + RENEW_BEFORE)
        .order_by("-not_after")
        .first()
    )


def _store_new_certificate(app: Application) -> Certificate:
    pem = demo_certificate_and_key()
    importer = Importer(app, store_keys=True, actor_label="manage.py sandbox")
    parsed = importer.parse("demo certificate", pem, None)
    if not isinstance(parsed, ParsedInput):
        raise RuntimeError(f"The generated demo certificate did not parse: {parsed.error}")
    result = importer.save([("demo certificate", parsed)])[0]
    if not result.ok:
        raise RuntimeError(f"The generated demo certificate was not stored: {result.error}")
    app.certificates.active().exclude(pk=result.certificate_id).update(
        lifecycle=Certificate.Lifecycle.RETIRED
    )
    return Certificate.objects.get(pk=result.certificate_id)


def demo_certificate_and_key(
    common_name: str = "demo-frontend (local stand-in)",
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> bytes:
    """A self-signed client certificate like one generated in the IAS admin console, key first."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "IAS certificate portal demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.now(UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(minutes=5))
        .not_valid_after(not_after or now + DEMO_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


# --- the Cloud Foundry the demo lives in (iasstandin.cfapi, started by `manage.py sandbox`) -------

CF_USER = "cf-scanner"  # the technical user; a Space Developer of demo-org/dev only
CF_SPACE = "demo-org/dev"
CF_WORLD_FILE = "cf-world.json"
FORGOTTEN_FILE = "cf-forgotten-key.pem"
FORGOTTEN_LEFT = timedelta(days=10)  # an X509_GENERATED key made 20 days ago for a test, 30 days valid


def demo_world(
    tenant_url: str, client_id: str, demo_pem: str, forgotten_pem: str, forgotten_key_pem: str
) -> dict:
    """demo-frontend bound to the identity instance demo-ias with the demo certificate
    (X509_PROVIDED), a service key someone made for a test and forgot (X509_GENERATED, key
    included), and an xsuaa instance the scan must ignore."""

    def credentials(kind: str, certificate: str, key: str | None = None) -> dict:
        found = {"clientid": client_id, "url": tenant_url, "domains": [], "credential-type": kind}
        return {**found, "certificate": certificate, **({"key": key} if key else {})}

    return {
        "organizations": [
            {"name": "demo-org", "spaces": [{"name": "dev", "apps": ["demo-frontend", "demo-backend"]}]}
        ],
        "service_offerings": [
            {"name": "identity", "plans": ["application"]},
            {"name": "xsuaa", "plans": ["application"]},
        ],
        "service_instances": [
            {
                "name": "demo-ias",
                "space": CF_SPACE,
                "offering": "identity",
                "plan": "application",
                "bindings": [
                    {
                        "type": "app",
                        "app": "demo-frontend",
                        "credentials": credentials("X509_PROVIDED", demo_pem),
                    },
                    {
                        "type": "key",
                        "name": "test-key-forgotten",
                        "credentials": credentials("X509_GENERATED", forgotten_pem, forgotten_key_pem),
                    },
                ],
            },
            {
                "name": "demo-xsuaa",
                "space": CF_SPACE,
                "offering": "xsuaa",
                "plan": "application",
                "bindings": [
                    {"type": "app", "app": "demo-backend", "credentials": {"clientid": "sb-demo!t1"}}
                ],
            },
        ],
    }


def ensure_cf_world(directory, tenant_url: str, demo_pem: str) -> Path:
    """The world file of the Cloud Foundry stand-in; the forgotten key stays across restarts."""
    forgotten_pem, forgotten_key = _forgotten_key(Path(directory))
    world = demo_world(tenant_url, DEMO_CLIENT_ID, demo_pem, forgotten_pem, forgotten_key)
    path = Path(directory) / CF_WORLD_FILE
    path.touch(mode=0o600)  # it holds the forgotten key, as a real service key does
    path.write_text(json.dumps(world, indent=2))
    return path


def _forgotten_key(directory: Path) -> tuple[str, str]:
    path = directory / FORGOTTEN_FILE
    if path.exists():
        data = path.read_bytes()
        cert = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE-----") :])
        if cert.not_valid_after_utc > datetime.now(UTC):
            return _split(data)
    now = datetime.now(UTC).replace(microsecond=0)
    data = demo_certificate_and_key(
        "test-key-forgotten (generated)",
        not_before=now - (timedelta(days=30) - FORGOTTEN_LEFT),
        not_after=now + FORGOTTEN_LEFT,
    )
    path.touch(mode=0o600)
    path.write_bytes(data)
    return _split(data)


def _split(key_then_certificate: bytes) -> tuple[str, str]:
    text = key_then_certificate.decode("ascii")
    start = text.index("-----BEGIN CERTIFICATE-----")
    return text[start:], text[:start]
