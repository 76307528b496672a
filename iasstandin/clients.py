"""Which certificates are registered for which client id: in memory, or in ``clients.json``.

The file lets another process (the portal under ``./dev run``) register a certificate with a
running stand-in, as an admin would upload it in the IAS console.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .pki import Watched, atomic_write, certificate_thumbprint, first_certificate, locked_file

log = logging.getLogger("iasstandin")
CLIENTS_FILE = "clients.json"


def _leaf_pem(certificate_pem: str | bytes) -> str:
    """Only the client (first) certificate counts; keep it in a normalised PEM."""
    cert = first_certificate(certificate_pem)
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _read(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{path} is not an object of client id -> list of PEM certificates")
    return data


def _write(path: Path, clients: dict[str, list[str]]) -> None:
    atomic_write(path, json.dumps(clients, indent=2, sort_keys=True).encode("utf-8"), 0o600)


def register_in_directory(directory, client_id: str, certificate_pem: str | bytes) -> None:
    """Add a certificate to ``client_id`` in ``directory/clients.json``; a running stand-in picks it up.

    Idempotent: registering the same certificate again changes nothing.
    """
    if not client_id:
        raise ValueError("client_id must not be empty")
    pem = _leaf_pem(certificate_pem)
    thumb = certificate_thumbprint(first_certificate(pem))
    with locked_file(Path(directory), CLIENTS_FILE) as path:
        clients = _read(path)
        known = clients.setdefault(client_id, [])
        if thumb in _thumbprints(known):
            return
        known.append(pem)
        _write(path, clients)


def unregister_in_directory(directory, client_id: str) -> None:
    with locked_file(Path(directory), CLIENTS_FILE) as path:
        clients = _read(path)
        if clients.pop(client_id, None) is not None:
            _write(path, clients)


def _read_thumbprints(path: Path) -> dict[str, frozenset[str]]:
    return {client_id: _thumbprints(pems) for client_id, pems in _read(path).items()}


def _thumbprints(pems: list[str]) -> frozenset[str]:
    return frozenset(certificate_thumbprint(first_certificate(p)) for p in pems)


class Registry:
    """Registered certificates, looked up by (client id, thumbprint) on every token request."""

    def __init__(self, directory: Path | None = None):
        self._directory = directory
        self._lock = threading.Lock()
        self._pems: dict[str, list[str]] = {}  # in memory (no directory): what was registered
        path = directory / CLIENTS_FILE if directory is not None else None
        # By client id, the thumbprints of its registered certificates (clients.json's, or the pems').
        self._thumbs = Watched(path, _read_thumbprints, {}, "registrations")

    def register(self, client_id: str, certificate_pem: str | bytes) -> None:
        if self._directory is not None:
            register_in_directory(self._directory, client_id, certificate_pem)
            return
        if not client_id:
            raise ValueError("client_id must not be empty")
        pem = _leaf_pem(certificate_pem)
        with self._lock:
            pems = self._pems.get(client_id, [])
            self._set(client_id, pems if pem in pems else [*pems, pem])

    def unregister(self, client_id: str) -> None:
        if self._directory is not None:
            unregister_in_directory(self._directory, client_id)
            return
        with self._lock:
            self._pems.pop(client_id, None)
            self._thumbs.value = {k: v for k, v in self._thumbs.value.items() if k != client_id}

    def knows(self, client_id: str, thumbprint: str | None) -> bool:
        return thumbprint in self._thumbs.current().get(client_id, ())

    def _set(self, client_id: str, pems: list[str]) -> None:
        self._pems[client_id] = pems
        self._thumbs.value = {**self._thumbs.value, client_id: _thumbprints(pems)}
