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


def smtp_credentials(vcap_services_json: str | None) -> dict | None:
    """The mail server of a user-provided service named or tagged "smtp" or "mail", if one is bound.

    Created with e.g. ``cf cups portal-smtp -p '{"host": "...", "port": 587, "username": "...",
    "password": "...", "use_tls": true, "from": "..."}' -t smtp``. Returns {host, port, username,
    password, use_tls, use_ssl, from}.
    """
    if not (vcap_services_json or "").strip():
        return None
    try:
        bound = json.loads(vcap_services_json)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"VCAP_SERVICES is not valid JSON: {exc.msg}.") from None
    for entries in bound.values() if isinstance(bound, dict) else []:
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("label") == "user-provided" and _is_mail(entry):
                return _smtp(entry.get("name", ""), entry.get("credentials") or {})
    return None


def _is_mail(entry: dict) -> bool:
    words = [str(entry.get("name", "")), *(str(tag) for tag in entry.get("tags") or [])]
    return any(key in word.lower() for word in words for key in ("smtp", "mail"))


def _smtp(name: str, creds: dict) -> dict:
    host = str(creds.get("host") or creds.get("hostname") or "").strip()
    if not host:
        raise ImproperlyConfigured(f"The user-provided service {name!r} lacks the credential 'host'.")
    use_ssl = _flag(name, creds, "use_ssl", "ssl")
    use_tls = _flag(name, creds, "use_tls", "starttls", "tls")
    if use_ssl and use_tls:
        raise ImproperlyConfigured(
            f"The user-provided service {name!r} sets both use_tls and use_ssl: pick one."
        )
    port = creds.get("port") or (465 if use_ssl else 587 if use_tls else 25)
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"The user-provided service {name!r} has the port {port!r}.") from None
    return {
        "host": host,
        "port": port,
        "username": str(creds.get("username") or creds.get("user") or ""),
        "password": str(creds.get("password") or ""),
        "use_tls": use_tls,
        "use_ssl": use_ssl,
        "from": str(creds.get("from") or creds.get("from_email") or creds.get("sender") or ""),
    }


def _flag(name: str, creds: dict, *keys: str) -> bool:
    for key in keys:
        value = creds.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if str(value).strip().lower() in {"0", "false", "no", "off"}:
            return False
        raise ImproperlyConfigured(
            f"The user-provided service {name!r} has {key}={value!r}: use true or false."
        )
    return False
