"""What Cloud Foundry tells the app about its bound services (VCAP_SERVICES)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured


def _json_object(variable: str) -> dict:
    """The JSON object in an environment variable Cloud Foundry sets; {} when unset."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{variable} is not valid JSON: {exc.msg}.") from None
    return value if isinstance(value, dict) else {}


def services() -> dict:
    return _json_object("VCAP_SERVICES")


def first_binding(label: str, name: str = "") -> dict | None:
    """The first binding of service ``label`` (with ``name`` as its name or instance name, if given)."""
    for entries in services().values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("label") == label:
                if not name or name in (entry.get("name"), entry.get("instance_name")):
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
    """The binding's root CA as a file (libpq wants a path), readable by this user only.

    Every process of the app (gunicorn workers, the worker, tasks) writes it at startup; it is
    written to a private temporary file and renamed into place, so no reader sees half of it.
    """
    text = creds["sslrootcert"]
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"pg-root-{quote(creds['hostname'], safe='')}-{digest}.pem"
    if path.exists() and path.read_text() == text and path.stat().st_mode & 0o077 == 0:
        return str(path)
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".pg-root-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return str(path)


def application() -> dict:
    """VCAP_APPLICATION: set by Cloud Foundry in every container (and during staging)."""
    return _json_object("VCAP_APPLICATION")


def on_cloud_foundry() -> bool:
    return bool(os.environ.get("VCAP_APPLICATION", "").strip())


def application_uris() -> list[str]:
    """The routes mapped to the app (host names, maybe with a path), in the platform's order."""
    uris = application().get("application_uris") or []
    return [str(uri).strip() for uri in uris if str(uri).strip()] if isinstance(uris, list) else []


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


def identity_login(name: str = "") -> dict | None:
    """The portal's own login client from its ``identity`` binding (the one named ``name``, or the first).

    Returns {issuer, client_id, client_secret, certificate_pem, key_pem, authorization_endpoint,
    end_session_endpoint}. The credential type decides how the portal authenticates to IAS: a
    SECRET binding holds ``clientsecret``; X509_GENERATED holds ``certificate`` and ``key``;
    X509_PROVIDED holds only the certificate, and the key comes from CERTMGR_OIDC_CLIENT_KEY.
    """
    binding = first_binding("identity", name)
    if binding is None:
        if name:
            raise ImproperlyConfigured(
                f"CERTMGR_IDENTITY_BINDING={name!r}: no identity binding has that name."
            )
        return None
    creds = binding.get("credentials") or {}
    label = f"The identity binding {binding.get('name', '')!r}"
    return login_client_config(
        label,
        issuer=creds.get("url"),
        client_id=creds.get("clientid"),
        client_secret=creds.get("clientsecret"),
        certificate=creds.get("certificate"),
        key=creds.get("key") or os.environ.get("CERTMGR_OIDC_CLIENT_KEY", ""),
        authorization_endpoint=creds.get("authorization_endpoint"),
        end_session_endpoint=creds.get("end_session_endpoint"),
    )


def login_client_config(
    label: str, *, issuer, client_id, client_secret, certificate, key, **endpoints
) -> dict:
    """A checked login client configuration, with a message naming what is missing."""
    issuer = str(issuer or "").strip().rstrip("/")
    if not issuer.startswith("https://"):
        raise ImproperlyConfigured(f"{label}: the tenant URL {issuer!r} is not an https URL.")
    if not str(client_id or "").strip():
        raise ImproperlyConfigured(f"{label} lacks the client id.")
    if not client_secret and not (certificate and key):
        raise ImproperlyConfigured(
            f"{label} has neither a client secret nor a certificate with its key. For credential-type "
            "X509_PROVIDED set CERTMGR_OIDC_CLIENT_KEY to the PEM private key of the binding's certificate."
        )
    return {
        "issuer": issuer,
        "client_id": str(client_id).strip(),
        "client_secret": client_secret or None,
        "certificate_pem": None if client_secret else str(certificate).encode(),
        "key_pem": None if client_secret else str(key).encode(),
        "authorization_endpoint": endpoints.get("authorization_endpoint") or f"{issuer}/oauth2/authorize",
        "end_session_endpoint": endpoints.get("end_session_endpoint") or f"{issuer}/oauth2/logout",
    }
