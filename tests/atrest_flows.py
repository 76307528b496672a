"""What an owner does with secrets, through the portal's pages, for the at-rest search
(tests/test_secrets_at_rest.py): log in; upload a certificate with its key and a PKCS#12 with
its password, both kept; add a webhook, a Slack, a Teams and an Alert Notification channel with
their secrets, then give the webhook a new signing secret; send test notices (one delivered, one
refused); download a key, plain and with a password; make a key for a rotation in the portal and
download its CSR; and leave a third upload waiting for confirmation, its key in the session. Every logger records at DEBUG meanwhile, SQL included.

Run in-process against the test database, or as ``python -m tests.atrest_flows DIR`` against a
file-backed SQLite database of its own (see ``main``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.urls import reverse

from tests import certs
from tests.secret_forms import Needles, key_forms, text_forms

OWNER, APP = "otto", "frontend"


@dataclass
class Inputs:
    """The secrets the flows hand to the portal: private keys (by what carried them) and strings."""

    keys: dict[str, object] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    items: dict[str, certs.Issued] = field(default_factory=dict)

    def needles(self) -> dict[str, Needles]:
        found = {name: key_forms(key) for name, key in self.keys.items()}
        found.update({name: text_forms(text) for name, text in self.texts.items()})
        return found

    def manifest(self) -> dict:
        pkcs8 = serialization.PrivateFormat.PKCS8
        pem = {
            n: k.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()).decode()
            for n, k in self.keys.items()
        }
        return {"keys": pem, "texts": self.texts}

    @classmethod
    def from_manifest(cls, manifest: dict) -> Inputs:
        keys = {n: serialization.load_pem_private_key(p.encode(), None) for n, p in manifest["keys"].items()}
        return cls(keys=keys, texts=manifest["texts"])


def fresh_inputs() -> Inputs:
    """New strings each run; keys from tests/certs.py (slots no other test uses)."""
    items = {
        "uploaded key (PEM)": certs.issue("rest-pem (P000801)", key_slot=801, serial=0x801),
        "uploaded key (PKCS#12)": certs.issue(
            "rest-p12 (P000802)", key_kind="ec", key_slot=802, serial=0x802
        ),
        "pending upload's key": certs.issue("rest-pending (P000803)", key_slot=803, serial=0x803),
    }
    names = ["login password", "webhook URL token", "webhook signing secret", "webhook new signing secret"]
    names += ["Slack URL token", "Teams URL signature", "Alert Notification client secret"]
    names += ["PKCS#12 password", "key download password"]
    texts = {name: secrets.token_urlsafe(24) for name in names}
    return Inputs({name: item.key for name, item in items.items()}, texts, items)


# --- the flows ---------------------------------------------------------------------------------


def _ok(response, status: int = 200, *, doing: str):
    assert response.status_code == status, f"{doing}: {response.status_code}"
    return response


def _upload(client, app, data: dict, *, doing: str) -> str:
    """Preview with the key kept; the token the preview page carries."""
    data = {
        "step": "preview",
        "application": app.pk,
        "store_private_key": "on",
        "lifecycle": "active",
        **data,
    }
    page = _ok(client.post(reverse("upload"), data), doing=doing).content.decode()
    return re.search(r'name="token" value="([^"]+)"', page)[1]


def _channel(client, app, kind: str, name: str, **fields) -> None:
    data = {"kind": kind, "name": name, "enabled": "on", **fields}
    _ok(client.post(reverse("notification-channel-new", args=[app.slug]), data), 302, doing=f"adding {name}")


def owner_and_application(inputs: Inputs):
    """Otto (his password is one of the secrets) and his application 'frontend'."""
    from django.contrib.auth.models import User

    from certmgr.models import Application

    owner = User.objects.create_user(OWNER, "otto@example.com", inputs.texts["login password"])
    app = Application.objects.create(name="Frontend", slug=APP)
    app.owners.add(owner)
    return app


def run(client, app, inputs: Inputs, *, receiver_url: str, refused_url: str) -> None:
    """The flows of the module docstring, as the owner of ``app`` (see owner_and_application)."""
    login = {"username": OWNER, "password": inputs.texts["login password"]}
    _ok(client.post(reverse("login"), login), 302, doing="logging in")
    keep_two_uploads(client, app, inputs)
    add_channels(client, app, inputs, receiver_url=receiver_url, refused_url=refused_url)
    send_tests_and_download(client, app, inputs)
    make_a_pending_key(client, app, inputs)
    pending = inputs.items["pending upload's key"]
    _upload(
        client, app, {"text": (pending.key_pem() + pending.pem).decode()}, doing="leaving an upload pending"
    )


def make_a_pending_key(client, app, inputs: Inputs) -> None:
    """A key made in the portal for a rotation, its CSR downloaded; it waits sealed for its
    certificate. The test learns the key from the vault, to search for it everywhere else."""
    from certmgr.inventory.keys import vault
    from certmgr.models import PendingKey

    data = {"key_type": "rsa-2048", "subject": "CN=rest-rotation (P000804)"}
    _ok(client.post(reverse("pending-key-new", args=[app.slug]), data), 302, doing="making a pending key")
    pending = PendingKey.objects.get(application=app)
    _ok(client.get(reverse("pending-key-csr", args=[app.slug, pending.pk])), doing="downloading its CSR")
    der = vault().decrypt(bytes(pending.encrypted_private_key))
    inputs.keys["pending key (made in the portal)"] = serialization.load_der_private_key(der, None)


def keep_two_uploads(client, app, inputs: Inputs) -> None:
    pem = inputs.items["uploaded key (PEM)"]
    password = inputs.texts["PKCS#12 password"]
    p12 = certs.p12(inputs.items["uploaded key (PKCS#12)"], password.encode())
    uploads = {
        "PEM": {"text": (pem.pem + pem.key_pem()).decode()},
        "PKCS#12": {"file": _file("client.p12", p12), "password": password},
    }
    for name, data in uploads.items():
        token = _upload(client, app, data, doing=f"uploading {name}")
        _ok(
            client.post(reverse("upload"), {"step": "confirm", "token": token}),
            302,
            doing=f"confirming {name}",
        )


def add_channels(client, app, inputs: Inputs, *, receiver_url: str, refused_url: str) -> None:
    """A webhook (its signing secret replaced afterwards), Slack, Teams and Alert Notification."""
    from certmgr.models import NotificationChannel

    t = inputs.texts
    hook = f"{receiver_url}/hooks/{t['webhook URL token']}"
    slack = f"https://hooks.slack.com/services/T0/B0/{t['Slack URL token']}"
    teams = f"https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual?sig={t['Teams URL signature']}"
    ans = {"url": refused_url, "token_url": f"{refused_url}/oauth/token", "client_id": "ans-client"}
    _channel(client, app, "webhook", "ops hook", url=hook, secret=t["webhook signing secret"])
    _channel(client, app, "slack", "ops slack", url=slack)
    _channel(client, app, "teams", "ops teams", url=teams)
    _channel(
        client,
        app,
        "alert_notification",
        "ops ans",
        client_secret=t["Alert Notification client secret"],
        **ans,
    )
    row = NotificationChannel.objects.get(application=app, kind="webhook")
    edit = {"name": "ops hook", "enabled": "on", "secret": t["webhook new signing secret"]}
    response = client.post(reverse("notification-channel-edit", args=[app.slug, row.pk]), edit)
    _ok(response, 302, doing="replacing the signing secret")


def send_tests_and_download(client, app, inputs: Inputs) -> None:
    """Test notices through the webhook (delivered) and Alert Notification (refused); a key
    downloaded plain and with a password."""
    from certmgr.models import Certificate, NotificationChannel

    for row in NotificationChannel.objects.filter(
        application=app, kind__in=["webhook", "alert_notification"]
    ):
        response = client.post(reverse("notification-channel-test", args=[app.slug, row.pk]))
        _ok(response, 302, doing=f"a test notice through {row.kind}")
    kept = Certificate.objects.filter(application=app).exclude(encrypted_private_key=None)
    assert kept.count() == 2, "both uploads keep their key"
    for password in ("", inputs.texts["key download password"]):
        response = client.post(reverse("certificate-key", args=[kept[0].pk]), {"password": password})
        assert _ok(response, doing="downloading the key").content.startswith(b"-----BEGIN")


def _file(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


# --- every logger at DEBUG -----------------------------------------------------------------------


class LogCapture(logging.Handler):
    """Each record as the production formatter writes it, plus its raw message, arguments and
    traceback (a filter further down a handler chain must not be what keeps a secret out)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        from portal.logjson import JsonFormatter

        self.formatter = JsonFormatter()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        raw = f"{record.msg!s} {record.args!r}"
        self.lines.append(f"{self.format(record)}\n{raw}\n{record.exc_text or ''}")

    def text(self) -> bytes:
        return "\n".join(self.lines).encode("utf-8", "backslashreplace")


@contextmanager
def every_logger_at_debug():
    from django.db import connection

    capture = LogCapture()
    loggers = [logging.root] + [
        lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    saved = [(lg, lg.level) for lg in loggers]
    # The other handlers (the console, pytest's) keep to INFO: the capture alone takes the flood.
    handlers = {h: h.level for lg in loggers for h in lg.handlers}
    for handler in handlers:
        handler.setLevel(max(handler.level, logging.INFO))
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        if logger is logging.root or not logger.propagate:
            logger.addHandler(capture)
    connection.force_debug_cursor = True  # django.db.backends logs each query with its parameters
    try:
        yield capture
    finally:
        connection.force_debug_cursor = False
        for logger, level in saved:
            logger.setLevel(level)
            logger.removeHandler(capture)
        for handler, level in handlers.items():
            handler.setLevel(level)


# --- python -m tests.atrest_flows DIR ----------------------------------------------------------


def main(directory: Path) -> None:
    """Migrate a fresh SQLite file (SQLITE_PATH, in WAL mode as the settings open it), run the flows
    and copy the database file, its -wal and its -shm into DIR/open while the connection is still
    open; then close it (SQLite checkpoints the WAL into the file) and copy the file into DIR/closed.
    DIR also gets log.txt, dumpdata.json, sessions.json (decoded) and manifest.json (the secrets, for
    the parent to look for).
    """
    import django

    django.setup()
    import time_machine
    from django.conf import settings
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from tests.receivers import HttpsReceiver, free_port

    setup_test_environment()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)
    database = Path(settings.DATABASES["default"]["NAME"])
    with HttpsReceiver(directory) as receiver, time_machine.travel(certs.MID_LIFE, tick=False):
        settings.CERTMGR_CA_BUNDLE = str(receiver.ca_file)
        settings.CERTMGR_OUTBOUND_ALLOW = ["127.0.0.1"]  # the receivers, on this machine
        inputs = fresh_inputs()
        with every_logger_at_debug() as log:
            app = owner_and_application(inputs)
            run(
                Client(),
                app,
                inputs,
                receiver_url=receiver.url,
                refused_url=f"https://127.0.0.1:{free_port()}",
            )
            assert receiver.deliveries, "the webhook's test notice arrived"
        (directory / "open").mkdir()
        for suffix in ("", "-wal", "-shm"):
            shutil.copyfile(f"{database}{suffix}", directory / "open" / f"db.sqlite3{suffix}")
        with open(directory / "dumpdata.json", "w") as out:
            call_command("dumpdata", stdout=out)
        decoded = [s.get_decoded() for s in Session.objects.all()]  # signed and compressed, not sealed
        (directory / "sessions.json").write_text(json.dumps(decoded, default=str))
    connection.close()
    (directory / "closed").mkdir()
    shutil.copyfile(database, directory / "closed" / "db.sqlite3")
    (directory / "log.txt").write_bytes(log.text())
    (directory / "manifest.json").write_text(json.dumps(inputs.manifest()))


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    main(Path(sys.argv[1]))
