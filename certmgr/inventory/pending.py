"""An upload between "show what was found" and "save": kept in the session, encrypted.

The session row would otherwise hold a private key in clear; sealing it with the vault keeps
it as protected as a stored key. Passwords are never kept: the input is parsed at once.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass

from django.views.decorators.debug import sensitive_variables

from ..core.parse import ParsedInput, parse_certificate_input
from ..core.servicekey import Binding
from . import importer, keys

SESSION_KEY = "certmgr_pending_upload"
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


def discard(session) -> None:
    session.pop(SESSION_KEY, None)
