"""What Cloud Foundry tells the app about its bound services (VCAP_SERVICES)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured


def services() -> dict:
    raw = os.environ.get("VCAP_SERVICES", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"VCAP_SERVICES is not valid JSON: {exc.msg}.") from None
    return value if isinstance(value, dict) else {}


def first_binding(label: str) -> dict | None:
    for entries in services().values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("label") == label:
                return entry
    return None


def postgres_database() -> dict | None:
    """A DATABASES entry for a bound SAP BTP PostgreSQL (postgresql-db) instance, if any."""
    binding = first_binding("postgresql-db")
    if binding is None:
        return None
    creds = binding.get("credentials", {})
    try:
        config = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": creds["dbname"],
            "USER": creds["username"],
            "PASSWORD": creds["password"],
            "HOST": creds["hostname"],
            "PORT": str(creds["port"]),
            "CONN_MAX_AGE": 60,
            "OPTIONS": {},
        }
    except KeyError as exc:
        raise ImproperlyConfigured(
            f"The postgresql-db binding lacks the credential {exc.args[0]!r}."
        ) from None
    if creds.get("sslrootcert"):
        config["OPTIONS"] = {"sslmode": "verify-full", "sslrootcert": _write_root_cert(creds)}
    return config


def _write_root_cert(creds: dict) -> str:
    path = Path(tempfile.gettempdir()) / f"pg-root-{quote(creds['hostname'], safe='')}.pem"
    path.write_text(creds["sslrootcert"])
    return str(path)
