"""No secret rests in clear: after an owner's flows through the pages (tests/atrest_flows.py), no
private key (stored, or waiting in a pending upload), channel secret (webhook URL and signing
secret, Slack and Teams URLs, Alert Notification client secret) or password (login, PKCS#12, key
download) is found, in any form of tests/secret_forms.py, where a copy of the database or the
logs would show it:

- logically: dumpdata of every model; the sessions decoded (Django signs and compresses session
  data but does not encrypt it: a search of the raw bytes cannot see into it); the audit log
  (in both); the database's own SQL dump (SQLite's iterdump; PostgreSQL's pg_dump, and a COPY of
  every table);
- raw: the SQLite database image (the suite's test database lives in memory; a file-backed one
  with its WAL and SHM is the subprocess test at the end); PostgreSQL's relation files (tables,
  TOAST, indexes) after a CHECKPOINT, read with pg_read_binary_file (a superuser's function).
  Not searched: pg_wal, which the whole server shares (other databases, other test runs'
  deliberately planted keys), and TOAST's compressed values (over ~2 KB), which the logical
  places above show decompressed;
- the logs: every logger at DEBUG while the flows ran, SQL with its parameters included.

Every column that holds sealed data (any BinaryField, any column named sealed_* or encrypted_*,
in any model: a rotation's pending key too) must hold only tokens the vault opens, and the flows
must fill each such column (a new one fails until a flow writes it). Each place is shown to be
searchable: a secret planted in clear is found there.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from django.apps import apps
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection, models

from certmgr.core.keyvault import KeyVault, VaultError
from certmgr.models import AuditEvent, Certificate, NotificationChannel
from tests import atrest_flows, certs
from tests.receivers import free_port
from tests.secret_forms import leaks

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Flowed:
    inputs: atrest_flows.Inputs
    log: atrest_flows.LogCapture


@pytest.fixture
def flowed(client, webhook) -> Flowed:
    with time_machine.travel(certs.MID_LIFE, tick=False):
        inputs = atrest_flows.fresh_inputs()
        with atrest_flows.every_logger_at_debug() as log:
            app = atrest_flows.owner_and_application(inputs)
            refused = f"https://127.0.0.1:{free_port()}"
            atrest_flows.run(client, app, inputs, receiver_url=webhook.url, refused_url=refused)
    assert webhook.deliveries, "the webhook's test notice arrived"
    return Flowed(inputs, log)


# --- the places ----------------------------------------------------------------------------------


def dumpdata() -> bytes:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    return out.getvalue().encode("utf-8")


def decoded_sessions() -> bytes:
    return json.dumps([s.get_decoded() for s in Session.objects.all()], default=str).encode("utf-8")


def pg_dump() -> bytes:
    db = connection.settings_dict
    command = ["pg_dump", "--no-owner", "-h", db["HOST"] or "localhost", "-p", str(db["PORT"] or 5432)]
    command += ["-U", db["USER"], db["NAME"]]
    env = {"PATH": "/usr/bin:/bin", **({"PGPASSWORD": db["PASSWORD"]} if db["PASSWORD"] else {})}
    return subprocess.run(command, capture_output=True, check=True, timeout=120, env=env).stdout


def pg_copy() -> bytes:
    out = bytearray()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} TO STDOUT") as copy:
                for chunk in copy:
                    out += chunk
    return bytes(out)


def pg_relation_files() -> bytes:
    """Every table's, TOAST table's and index's file of this database, as on disk after a CHECKPOINT."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
        cursor.execute(
            "SELECT pg_read_binary_file(pg_relation_filepath(c.oid)) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE (n.nspname = ANY(current_schemas(false)) OR n.nspname = 'pg_toast')"
            " AND c.relkind IN ('r', 't', 'i') AND pg_relation_filepath(c.oid) IS NOT NULL"
        )
        return b"".join(bytes(row[0]) for row in cursor.fetchall())


def logical_places() -> dict[str, bytes]:
    places = {"dumpdata": dumpdata(), "the sessions, decoded": decoded_sessions()}
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        places["SQL dump (iterdump)"] = "\n".join(connection.connection.iterdump()).encode("utf-8")
    else:
        places["pg_dump"] = pg_dump()
        places["COPY of every table"] = pg_copy()
    return places


def raw_places() -> dict[str, bytes]:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return {"the database image": connection.connection.serialize()}
    return {"the relation files": pg_relation_files()}


def search(places: dict[str, bytes], inputs: atrest_flows.Inputs) -> str:
    """'' when nothing is found; else one line per place and secret, with the forms found."""
    needles, lines = inputs.needles(), []
    for place, data in places.items():
        found: dict[str, list[str]] = {}
        for hit in leaks(data, needles):
            secret, form = hit.split(": ", 1)
            found.setdefault(secret, []).append(form)
        lines += [
            f"{place}: {secret} ({', '.join(forms[:4])}{', …' * (len(forms) > 4)})"
            for secret, forms in found.items()
        ]
    return "\n".join(lines)


# --- nothing in clear ----------------------------------------------------------------------------


def test_no_secret_rests_in_a_dump_the_sessions_or_the_audit_log(flowed):
    assert not (found := search(logical_places(), flowed.inputs)), found


def test_no_secret_rests_in_the_database_files(flowed):
    assert not (found := search(raw_places(), flowed.inputs)), found


def test_no_secret_reaches_a_log_even_at_debug(flowed):
    assert len(flowed.log.lines) > 100  # SQL included: the capture saw the flows
    assert not (found := search({"the log": flowed.log.text()}, flowed.inputs)), found


def sealed_columns() -> list[models.Field]:
    return [
        field
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.BinaryField) or field.name.startswith(("sealed", "encrypted"))
    ]


def test_every_sealed_column_holds_only_tokens_the_vault_opens(flowed):
    vault = KeyVault(settings.CERTMGR_ENCRYPTION_KEYS)
    unfilled, not_sealed = [], []
    for column in sealed_columns():
        label = f"{column.model._meta.label}.{column.name}"
        values = column.model._default_manager.exclude(**{column.name: None}).values_list(
            column.name, flat=True
        )
        if not values:
            unfilled.append(label)
        for value in values:
            try:
                vault.decrypt(bytes(value) if not isinstance(value, str) else value.encode())
            except VaultError:
                not_sealed.append(label)

    assert {c.name for c in sealed_columns()} >= {"encrypted_private_key", "sealed_secret"}
    assert unfilled == [], "no flow of tests/atrest_flows.py writes these sealed columns: add one"
    assert not_sealed == [], "values the vault cannot open (not sealed?)"


# --- and the search does see a secret in clear ----------------------------------------------------


def plant(inputs: atrest_flows.Inputs) -> None:
    """A key, a Slack URL, a client secret, a pending key: each put somewhere in clear."""
    key = inputs.keys["uploaded key (PEM)"]
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    Certificate.objects.filter(pk=Certificate.objects.exclude(encrypted_private_key=None)[0].pk).update(
        encrypted_private_key=der
    )
    url = f"https://hooks.slack.com/services/T0/B0/{inputs.texts['Slack URL token']}"
    NotificationChannel.objects.filter(kind="slack").update(sealed_secret=json.dumps({"url": url}).encode())
    secret = inputs.texts["Alert Notification client secret"]
    AuditEvent.objects.create(action=AuditEvent.Action.CHANNEL_CHANGED, actor_label="plant", detail=secret)
    session = SessionStore()
    session["planted"] = inputs.items["pending upload's key"].key_pem().decode()
    session.create()


def test_every_place_searched_finds_a_secret_planted_in_clear(flowed):
    plant(flowed.inputs)
    with atrest_flows.every_logger_at_debug() as log:  # "django" does not propagate, and logs at INFO
        logging.getLogger("django.planted").debug("planted %s", flowed.inputs.texts["webhook signing secret"])
    found = {}
    for place, data in {**logical_places(), **raw_places(), "the log": log.text()}.items():
        found[place] = {hit.split(":")[0] for hit in leaks(data, flowed.inputs.needles())}

    in_rows = {"uploaded key (PEM)", "Slack URL token", "Alert Notification client secret"}
    for place, names in found.items():
        wanted = {
            "the sessions, decoded": {"pending upload's key"},
            "the log": {"webhook signing secret"},
        }.get(place, in_rows)
        assert wanted <= names, place


# --- a file-backed SQLite database, its WAL and SHM ------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_files(tmp_path_factory) -> Path:
    """The flows run by ``python -m tests.atrest_flows`` on a SQLite file of their own (WAL mode)."""
    work = tmp_path_factory.mktemp("atrest")
    out = work / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"SQLITE_PATH": str(work / "db.sqlite3"), "PYTHONPATH": str(ROOT)}
    env["DJANGO_STATIC_ROOT"] = str(settings.STATIC_ROOT)  # collected once for the session (conftest)
    command = [sys.executable, "-m", "tests.atrest_flows", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
    (out / "process output").write_bytes(done.stdout + done.stderr)
    return out


def test_a_sqlite_file_its_wal_and_shm_hold_no_secret(sqlite_files):
    inputs = atrest_flows.Inputs.from_manifest(json.loads((sqlite_files / "manifest.json").read_text()))
    names = ["open/db.sqlite3", "open/db.sqlite3-wal", "open/db.sqlite3-shm", "closed/db.sqlite3"]
    names += ["dumpdata.json", "sessions.json", "log.txt", "process output"]
    places = {name: (sqlite_files / name).read_bytes() for name in names}

    assert len(places["open/db.sqlite3-wal"]) > 100_000  # the flows' writes, still in the WAL
    assert not (found := search(places, inputs)), found


def test_the_file_search_finds_a_key_written_in_clear_to_the_wal(sqlite_files, tmp_path):
    inputs = atrest_flows.Inputs.from_manifest(json.loads((sqlite_files / "manifest.json").read_text()))
    planted = tmp_path / "db.sqlite3"
    shutil.copyfile(sqlite_files / "closed" / "db.sqlite3", planted)
    key = inputs.keys["pending upload's key"]
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    database = sqlite3.connect(planted)
    database.execute("UPDATE certmgr_certificate SET encrypted_private_key = ?", (der,))
    database.commit()  # into the WAL (the file is in WAL mode); no checkpoint while it is open

    wal = Path(f"{planted}-wal").read_bytes()
    database.close()
    assert "pending upload's key" in {hit.split(":")[0] for hit in leaks(wal, inputs.needles())}
