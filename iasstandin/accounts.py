"""OpenID Connect clients (a secret and redirect URIs) and test users: in memory, or in ``oidc.json``.

Like ``clients.json``, the file lets another process (``./dev run``, a browser test's setup) add a
client or a user to a running stand-in. Secrets and passwords are kept as salted PBKDF2 hashes.
A client without a secret (``"secret": null`` in the file) authenticates with its client
certificate only, as an IAS application whose credential type is X509_GENERATED or X509_PROVIDED;
its certificates are registered like any other (``clients.json``, ``StandIn.register``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .pki import Watched, atomic_write, b64url, locked_file

log = logging.getLogger("iasstandin")
OIDC_FILE = "oidc.json"
_ITERATIONS = 10_000  # a stand-in: enough to keep the file free of plain secrets, and fast


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, _ITERATIONS)
    return f"pbkdf2_sha256${_ITERATIONS}${b64url(salt)}${b64url(digest)}"


def check_secret(secret: str, stored: str | None) -> bool:
    if not stored:
        return False  # no secret to match: a client that uses its certificate only
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        salt_bytes = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
        actual = hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt_bytes, int(iterations))
    except (ValueError, TypeError, binascii.Error):
        return False
    return hmac.compare_digest(b64url(actual), digest)


@dataclass(frozen=True)
class OidcClient:
    client_id: str
    secret_hash: str | None  # None: no secret, the client authenticates with its certificate only
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class User:
    id: str
    login: str
    password_hash: str
    email: str
    given_name: str
    family_name: str
    groups: tuple[str, ...]


def _empty() -> dict:
    return {"clients": {}, "users": {}}


def _check_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError(f"Not an absolute http(s) URI without fragment: {uri!r}")
    return uri


def _put_client(data: dict, client_id, client_secret, redirect_uris, post_logout_redirect_uris) -> None:
    if not client_id:
        raise ValueError("client_id must not be empty")
    if client_secret is not None and (not isinstance(client_secret, str) or not client_secret):
        raise ValueError(
            "client_secret must not be empty: pass None for a client that uses its certificate only"
        )
    if isinstance(redirect_uris, str) or not redirect_uris:
        raise ValueError("redirect_uris must be a non-empty list of URIs")
    if isinstance(post_logout_redirect_uris, str):
        raise ValueError("post_logout_redirect_uris must be a list of URIs")
    data["clients"][client_id] = {
        "secret": hash_secret(client_secret) if client_secret is not None else None,
        "redirect_uris": [_check_uri(u) for u in redirect_uris],
        "post_logout_redirect_uris": [_check_uri(u) for u in post_logout_redirect_uris],
    }


def _put_user(data: dict, login, password, email, given_name, family_name, groups) -> str:
    if not login or not password or not email:
        raise ValueError("login, password and email must not be empty")
    if isinstance(groups, str):
        raise ValueError("groups must be a list of group names")
    known = data["users"].get(login)
    user_id = known["id"] if known else str(uuid.uuid4())  # the same user keeps its id
    data["users"][login] = {
        "id": user_id,
        "password": hash_secret(password),
        "email": email,
        "given_name": given_name,
        "family_name": family_name,
        "groups": list(groups),
    }
    return user_id


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return _empty()
    if not (
        isinstance(data, dict)
        and isinstance(data.get("clients", {}), dict)
        and isinstance(data.get("users", {}), dict)
    ):
        raise ValueError(f"{path} is not an object with 'clients' and 'users' objects")
    return {"clients": data.get("clients", {}), "users": data.get("users", {})}


def _write(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True).encode("utf-8"), 0o600)


def register_oidc_client_in_directory(
    directory,
    client_id: str,
    client_secret: str | None,
    redirect_uris: list[str],
    *,
    post_logout_redirect_uris: list[str] = (),
) -> None:
    """Register (or replace) an OIDC client in ``directory/oidc.json``; a running stand-in picks it up.

    ``client_secret=None``: the client has no secret and authenticates with its client certificate.
    """
    with locked_file(Path(directory), OIDC_FILE) as path:
        data = _read(path)
        _put_client(data, client_id, client_secret, redirect_uris, post_logout_redirect_uris)
        _write(path, data)


def add_user_in_directory(
    directory,
    login: str,
    password: str,
    *,
    email: str,
    given_name: str = "",
    family_name: str = "",
    groups: list[str] = (),
) -> str:
    """Add (or update) a user in ``directory/oidc.json``; returns its id, kept across updates."""
    with locked_file(Path(directory), OIDC_FILE) as path:
        data = _read(path)
        user_id = _put_user(data, login, password, email, given_name, family_name, groups)
        _write(path, data)
    return user_id


class Accounts:
    """OIDC clients and users, looked up on every request (re-read when ``oidc.json`` changed)."""

    def __init__(self, directory: Path | None = None):
        self._directory = directory
        path = directory / OIDC_FILE if directory is not None else None
        self._watched = Watched(path, _read, _empty(), "OIDC clients and users")

    def register_client(self, client_id, client_secret, redirect_uris, post_logout_redirect_uris=()) -> None:
        if self._directory is not None:
            register_oidc_client_in_directory(
                self._directory,
                client_id,
                client_secret,
                redirect_uris,
                post_logout_redirect_uris=post_logout_redirect_uris,
            )
            return
        with self._watched.lock:
            data = copy.deepcopy(self._watched.value)
            _put_client(data, client_id, client_secret, redirect_uris, post_logout_redirect_uris)
            self._watched.value = data

    def add_user(self, login, password, *, email, given_name="", family_name="", groups=()) -> str:
        if self._directory is not None:
            return add_user_in_directory(
                self._directory,
                login,
                password,
                email=email,
                given_name=given_name,
                family_name=family_name,
                groups=groups,
            )
        with self._watched.lock:
            data = copy.deepcopy(self._watched.value)
            user_id = _put_user(data, login, password, email, given_name, family_name, groups)
            self._watched.value = data
        return user_id

    def client(self, client_id: str | None) -> OidcClient | None:
        entry = self._current()["clients"].get(client_id) if client_id else None
        if not isinstance(entry, dict):
            return None
        secret = entry.get("secret")
        return OidcClient(
            client_id,
            secret if isinstance(secret, str) and secret else None,
            tuple(entry.get("redirect_uris", ())),
            tuple(entry.get("post_logout_redirect_uris", ())),
        )

    def user_by_name(self, name: str) -> User | None:
        """Who logs on as ``name``: a login name or an email address, either case."""
        wanted = name.strip().casefold()
        if not wanted:
            return None
        users = self._current()["users"]
        for login, entry in users.items():
            if wanted in (login.casefold(), str(entry.get("email", "")).casefold()):
                return _user(login, entry)
        return None

    def user_by_id(self, user_id: str) -> User | None:
        for login, entry in self._current()["users"].items():
            if entry.get("id") == user_id:
                return _user(login, entry)
        return None

    def _current(self) -> dict:
        return self._watched.current()


def _user(login: str, entry: dict) -> User:
    return User(
        str(entry.get("id", "")),
        login,
        str(entry.get("password", "")),
        str(entry.get("email", "")),
        str(entry.get("given_name", "")),
        str(entry.get("family_name", "")),
        tuple(entry.get("groups", ())),
    )
