"""An upload between "show what was found" and "save": kept in the session, encrypted.

The session row would otherwise hold a private key in clear; sealing it with the vault keeps
it as protected as a stored key. Passwords are never kept: the input is parsed at once.

A chosen file that could not be read yet (a wrong PKCS#12 password, no application chosen) waits
the same way for the next try, so the person need not choose it again: sealed, at most
CERTMGR_MAX_UPLOAD_BYTES, one per session, gone after the next try, a cancel or MAX_AGE_SECONDS.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from ..core.parse import ParsedInput, parse_certificate_input
from ..core.servicekey import Binding
from . import importer, keys

SESSION_KEY = "certmgr_pending_upload"
RETRY_KEY = "certmgr_upload_retry"
MAX_AGE_SECONDS = 15 * 60


@dataclass(frozen=True)
class PendingUpload:
    application_id: int
    label: str
    parsed: ParsedInput
    lifecycle: str


@sensitive_variables("parsed", "data", "sealed")
def stash(
    session, application_id: int, label: str, parsed: ParsedInput, store_key: bool, lifecycle: str
) -> str:
    text = "".join(c.pem for c in parsed.chain)
    if store_key and parsed.private_key_der is not None:
        text += keys.export_pem(parsed.private_key_der).decode("ascii")
    binding = dataclasses.asdict(parsed.binding) if parsed.binding else None
    if binding:
        binding.update(certificate="", key=None)
    token = secrets.token_urlsafe(16)
    session[SESSION_KEY] = {
        "token": token,
        "application": application_id,
        "label": label,
        "format": parsed.format,
        "binding": binding,
        "warnings": list(parsed.warnings),
        "lifecycle": lifecycle,
        "sealed": keys.vault().encrypt(text.encode("ascii")).decode("ascii"),
    }
    return token


@sensitive_variables("stored", "taken", "data")
def take(session, token: str) -> PendingUpload | None:
    """The stashed upload for ``token``, removed from the session; None if absent or stale."""
    stored = session.get(SESSION_KEY)
    if not stored or not secrets.compare_digest(stored["token"], token or ""):
        return None
    del session[SESSION_KEY]
    try:
        text = keys.vault().decrypt(stored["sealed"].encode("ascii"), max_age=MAX_AGE_SECONDS)
    except keys.VaultError:  # older than MAX_AGE_SECONDS, or sealed under a key since removed
        return None
    parsed = parse_certificate_input(text, limits=importer.parse_limits())
    binding = Binding(**stored["binding"]) if stored["binding"] else None
    parsed = dataclasses.replace(
        parsed, format=stored["format"], binding=binding, warnings=tuple(stored["warnings"])
    )
    return PendingUpload(stored["application"], stored["label"], parsed, stored["lifecycle"])


def discard(session) -> int | None:
    """Forget the stashed upload (and a file kept for a retry); the application it was for."""
    drop_retry(session)
    stored = session.pop(SESSION_KEY, None)
    return stored.get("application") if stored else None


# --- a file kept for the next try ---------------------------------------------------------------


@dataclass(frozen=True)
class KeptFile:
    label: str
    size: int


def keep_for_retry(session, label: str, data: bytes) -> None:
    if len(data) > settings.CERTMGR_MAX_UPLOAD_BYTES:
        drop_retry(session)
        return
    session[RETRY_KEY] = {
        "label": label[:200],
        "size": len(data),
        "until": time.time() + MAX_AGE_SECONDS,
        "sealed": keys.vault().encrypt(data).decode("ascii"),
    }


def kept_file(session) -> KeptFile | None:
    """What waits for the retry (name and size only), if it has not expired."""
    stored = session.get(RETRY_KEY)
    if not stored or stored.get("until", 0) < time.time():
        return None
    return KeptFile(stored["label"], stored["size"])


def take_retry(session) -> tuple[str, bytes] | None:
    """The kept file's name and bytes, removed from the session; None if absent or expired."""
    stored = session.pop(RETRY_KEY, None)
    if not stored:
        return None
    try:
        data = keys.vault().decrypt(stored["sealed"].encode("ascii"), max_age=MAX_AGE_SECONDS)
    except keys.VaultError:
        return None
    return stored["label"], data


def drop_retry(session) -> None:
    session.pop(RETRY_KEY, None)
