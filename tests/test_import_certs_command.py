"""`manage.py import_certs`: one verdict per file, in input order; exit status 1 if any failed."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from certmgr.inventory import keys
from certmgr.models import Application, Certificate
from tests import certs

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
JSON_KEYS = {"path", "ok", "error", "fingerprint", "subject", "not_after", "application"}
OTHER_TENANT = "https://othertenant.accounts.ondemand.com"


@pytest.fixture(autouse=True)
def _mid_life():
    with time_machine.travel(certs.MID_LIFE, tick=False):
        yield


def import_certs(*args) -> tuple[int, list[str], str]:
    """Run the command in-process: (exit status, stdout lines, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_certs", *map(str, args), stdout=out, stderr=err)
        status = 0
    except SystemExit as exc:
        status = exc.code
    return status, out.getvalue().splitlines(), err.getvalue()


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


@pytest.fixture
def other():
    """A second certificate of the suite, distinct from ``leaf``."""
    return certs.issue("backend-app (P000042)", key_kind="ec", serial=0x2000)


# --- one line per file -----------------------------------------------------------------------


def test_it_reports_every_file_of_a_directory_in_order_and_continues_past_bad_ones(
    tmp_path, frontend_app, leaf, other
):
    first = write(tmp_path, "a_first.pem", leaf.pem)
    junk = write(tmp_path, "b_junk.pem", b"hello, I am not a certificate\n")
    third = write(tmp_path, "c_third.der", other.der)
    cut = write(tmp_path, "d_cut.pem", leaf.pem[:-30])

    status, lines, err = import_certs("--app", "frontend", tmp_path)

    assert status == 1
    assert len(lines) == 4
    assert lines[0].startswith(
        f"OK      {first}  {leaf.fingerprint[:16]}…  {leaf.subject}  until 2027-01-15 09:00"
    )
    assert lines[1] == f"FAILED  {junk}: " + (
        "This is not a certificate: no '-----BEGIN CERTIFICATE-----' block, "
        "and not a service key, DER, PKCS#7 or PKCS#12 file."
    )
    assert lines[2].startswith(f"OK      {third}  {other.fingerprint[:16]}…")
    assert lines[3].startswith(f"FAILED  {cut}: The PEM block 'CERTIFICATE' is truncated")
    assert err.strip() == "2 of 4 file(s) imported into 'frontend', 2 failed."
    assert set(frontend_app.certificates.values_list("fingerprint", flat=True)) == {
        leaf.fingerprint,
        other.fingerprint,
    }


def test_worker_processes_parse_to_the_same_report_as_parsing_in_process(
    tmp_path, frontend_app, backend_app, leaf, other, monkeypatch
):
    """Large imports parse in spawned worker processes; the report must not change."""
    monkeypatch.setenv("P12_PASSWORD", "s3cret")
    write(tmp_path, "a.p12", certs.p12(leaf, b"s3cret"))
    write(tmp_path, "b_junk.pem", b"not a certificate")
    write(tmp_path, "c.der", other.der)
    here = import_certs(
        "--app", "frontend", "--jobs", "0", "--json", "--password-env", "P12_PASSWORD", tmp_path
    )
    frontend_app.certificates.all().delete()

    workers = import_certs(
        "--app", "frontend", "--jobs", "1", "--json", "--password-env", "P12_PASSWORD", tmp_path
    )

    assert workers == here
    assert [json.loads(line)["ok"] for line in workers[1]] == [True, False, True]
    assert frontend_app.certificates.count() == 2


def test_it_keeps_the_order_of_paths_as_given_and_reports_a_missing_file_in_place(
    tmp_path, frontend_app, leaf, other
):
    late = write(tmp_path, "z_late.pem", other.pem)
    early = write(tmp_path, "a_early.pem", leaf.pem)
    missing = tmp_path / "m_missing.pem"

    status, lines, _ = import_certs("--app", "frontend", late, missing, early)

    assert status == 1
    assert [line.split()[1].rstrip(":") for line in lines] == [str(late), str(missing), str(early)]
    assert lines[1] == f"FAILED  {missing}: Cannot read the file: No such file or directory."


def test_it_exits_zero_when_every_file_imports(tmp_path, frontend_app, leaf, other):
    write(tmp_path, "leaf.pem", leaf.pem)
    write(tmp_path, "other.pem", other.pem)

    status, lines, err = import_certs("--app", "frontend", tmp_path)

    assert status == 0
    assert [line[:7] for line in lines] == ["OK     ", "OK     "]
    assert err.strip() == "2 of 2 file(s) imported into 'frontend', 0 failed."


def test_it_exits_one_when_a_directory_holds_no_file(tmp_path, frontend_app):
    status, lines, err = import_certs("--app", "frontend", tmp_path)

    assert (status, lines) == (1, [])
    assert "0 of 0 file(s)" in err


def test_the_real_command_line_prints_lines_on_stdout_and_sets_the_exit_status(tmp_path, leaf):
    """The shell's view: a fresh SQLite database, `manage.py migrate`, then two imports."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SQLITE_PATH=str(tmp_path / "cli.sqlite3"), DJANGO_DEBUG="0")
    files = tmp_path / "in"
    files.mkdir()
    good = write(files, "good.pem", leaf.pem)
    bad = write(files, "bad.pem", b"nonsense")

    def manage(*args):
        command = [sys.executable, "manage.py", *map(str, args)]
        return subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)

    assert manage("migrate", "--noinput").returncode == 0
    mixed = manage("import_certs", "--app", "cli", "--create-app", good, bad)
    again = manage("import_certs", "--app", "cli", good)

    assert mixed.returncode == 1, mixed.stderr
    assert mixed.stdout.splitlines()[0].startswith(f"OK      {good}")
    assert mixed.stdout.splitlines()[1].startswith(f"FAILED  {bad}: This is not a certificate")
    assert "1 of 2 file(s) imported into 'cli', 1 failed." in mixed.stderr
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"PRESENT {good}")


# --- --json ------------------------------------------------------------------------------------


def test_json_prints_one_object_per_file_with_the_certificate_facts(tmp_path, frontend_app, leaf):
    good = write(tmp_path, "a.pem", leaf.pem)
    bad = write(tmp_path, "b.pem", b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")

    status, lines, err = import_certs("--app", "frontend", "--json", tmp_path)

    assert status == 1
    assert err == ""  # no summary: stdout stays machine-readable
    ok, failed = (json.loads(line) for line in lines)
    assert JSON_KEYS <= ok.keys() and JSON_KEYS <= failed.keys()
    assert ok == ok | {
        "path": str(good),
        "ok": True,
        "error": None,
        "fingerprint": leaf.fingerprint,
        "subject": "CN=frontend-app (P000042),O=Example Corp,C=DE",
        "not_after": "2027-01-15T09:00:00+00:00",
        "application": "frontend",
        "already_present": False,
        "state": "valid",
    }
    assert failed == failed | {
        "path": str(bad),
        "ok": False,
        "error": "The PEM block 'CERTIFICATE' is corrupt: its body is not valid base64.",
        "fingerprint": None,
        "subject": None,
        "not_after": None,
        "application": "frontend",
    }


def test_importing_the_same_certificate_again_reports_it_as_already_present(tmp_path, frontend_app, leaf):
    path = write(tmp_path, "leaf.pem", leaf.pem)
    import_certs("--app", "frontend", path)

    status, [line], _ = import_certs("--app", "frontend", "--json", path)
    _, [text_line], _ = import_certs("--app", "frontend", path)

    result = json.loads(line)
    assert status == 0
    assert (result["ok"], result["already_present"], result["fingerprint"]) == (True, True, leaf.fingerprint)
    assert text_line.startswith(f"PRESENT {path}")
    assert frontend_app.certificates.count() == 1


# --- the application -------------------------------------------------------------------------


def test_create_app_creates_the_application_named_by_the_slug(tmp_path, leaf):
    path = write(tmp_path, "leaf.pem", leaf.pem)

    status, _, _ = import_certs("--app", "payments", "--create-app", path)

    app = Application.objects.get(slug="payments")
    assert status == 0
    assert app.name == "payments"
    assert app.created_at == certs.MID_LIFE  # the instant of the import, as the portal shows it
    assert list(app.certificates.values_list("fingerprint", flat=True)) == [leaf.fingerprint]


@pytest.mark.django_db(transaction=True)
def test_a_created_application_and_its_first_certificates_are_one_commit(tmp_path, monkeypatch, leaf, other):
    """Nothing is written outside that one transaction: a run into a new application pays one
    commit, not one for the application and one for its certificates."""
    from django.db import connection

    paths = [write(tmp_path, "a.pem", leaf.pem), write(tmp_path, "b.pem", other.pem)]
    writes, commits = [], []

    def spy(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(connection.in_atomic_block)
        return execute(sql, params, many, context)

    real_commit = connection.commit
    monkeypatch.setattr(connection, "commit", lambda: (commits.append(1), real_commit())[1])
    with connection.execute_wrapper(spy):
        status, lines, _ = import_certs("--app", "payments", "--create-app", *paths)

    assert status == 0, lines
    assert Application.objects.get(slug="payments").certificates.count() == 2
    assert writes and all(writes)  # the application, the certificates, their audit rows
    assert len(commits) == 1


def test_create_app_still_creates_the_application_when_no_file_gives_a_certificate(tmp_path):
    bad = write(tmp_path, "notes.txt", b"no certificate here")

    status, lines, _ = import_certs("--app", "payments", "--create-app", bad)

    assert status == 1
    assert lines[0].startswith(f"FAILED  {bad}: ")
    assert Application.objects.filter(slug="payments").exists()


def test_an_application_created_meanwhile_by_another_import_gets_the_certificates(tmp_path, leaf):
    """Between this import's look-up and its first commit, another one created the same slug:
    the certificates go into that application, and none is lost."""
    from certmgr.inventory.importer import Importer

    mine = Application(slug="payments", name="payments")
    importer = Importer(mine, store_keys=False, new_application=True)
    theirs = Application.objects.create(slug="payments", name="Payments (created first)")

    results = list(importer.import_paths([write(tmp_path, "leaf.pem", leaf.pem)], None))

    assert [(r.ok, r.error) for r in results] == [(True, "")]
    assert importer.application.pk == theirs.pk
    assert list(theirs.certificates.values_list("fingerprint", flat=True)) == [leaf.fingerprint]
    assert Application.objects.filter(slug="payments").count() == 1


def test_an_unknown_application_without_create_app_is_a_clear_error(tmp_path, frontend_app, leaf):
    path = write(tmp_path, "leaf.pem", leaf.pem)

    with pytest.raises(CommandError, match=r"No application 'payments'\. .*pass --create-app\."):
        import_certs("--app", "payments", path)

    assert not Application.objects.filter(slug="payments").exists()
    assert Certificate.objects.count() == 0


# --- passwords and keys ----------------------------------------------------------------------


def test_password_env_opens_a_password_protected_p12(tmp_path, monkeypatch, frontend_app, leaf):
    path = write(tmp_path, "client.p12", certs.p12(leaf, b"Tr0ub4dor&3"))
    monkeypatch.setenv("CLIENT_P12_PASSWORD", "Tr0ub4dor&3")

    status, [line], _ = import_certs("--app", "frontend", "--password-env", "CLIENT_P12_PASSWORD", path)

    assert status == 0, line
    assert frontend_app.certificates.get().source_format == "pkcs12"


def test_without_password_env_a_protected_p12_asks_for_its_password(tmp_path, frontend_app, leaf):
    path = write(tmp_path, "client.p12", certs.p12(leaf, b"Tr0ub4dor&3"))

    status, [line], _ = import_certs("--app", "frontend", path)

    assert status == 1
    assert line == (
        f"FAILED  {path}: This PKCS#12 file is password-protected: enter the password "
        "chosen when it was generated."
    )


def test_an_empty_password_variable_means_an_empty_password(tmp_path, monkeypatch, frontend_app, leaf):
    path = write(tmp_path, "open.p12", certs.p12(leaf, None))
    monkeypatch.setenv("CLIENT_P12_PASSWORD", "")

    status, [line], _ = import_certs("--app", "frontend", "--password-env", "CLIENT_P12_PASSWORD", path)

    assert status == 0, line
    assert frontend_app.certificates.get().fingerprint == leaf.fingerprint


def test_an_unset_password_variable_is_a_clear_error(tmp_path, monkeypatch, frontend_app, leaf):
    path = write(tmp_path, "client.p12", certs.p12(leaf, b"Tr0ub4dor&3"))
    monkeypatch.delenv("CLIENT_P12_PASSWORD", raising=False)

    with pytest.raises(
        CommandError, match="names CLIENT_P12_PASSWORD, but that environment variable is not set"
    ):
        import_certs("--app", "frontend", "--password-env", "CLIENT_P12_PASSWORD", path)

    assert Certificate.objects.count() == 0


def test_store_keys_keeps_the_private_key_encrypted(tmp_path, frontend_app, leaf):
    path = write(tmp_path, "client.p12", certs.p12(leaf, None))

    status, [line], _ = import_certs("--app", "frontend", "--store-keys", path)

    cert = frontend_app.certificates.get()
    assert status == 0
    assert line.endswith(" (key stored)")
    assert cert.has_private_key
    assert bytes(cert.encrypted_private_key) != leaf.key_der()
    assert keys.vault().decrypt(cert.encrypted_private_key) == leaf.key_der()


def test_without_store_keys_the_private_key_is_discarded(tmp_path, frontend_app, leaf):
    path = write(tmp_path, "client.p12", certs.p12(leaf, None))

    status, [line], _ = import_certs("--app", "frontend", path)

    assert status == 0
    assert line.endswith(" (key discarded)")
    assert not frontend_app.certificates.get().has_private_key


# --- expiry state ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "label", "state"),
    [
        (certs.BEFORE_ISSUE, "not yet valid", "not_yet_valid"),
        (certs.MID_LIFE, "valid", "valid"),
        (certs.TWENTY_DAYS_BEFORE_EXPIRY, "expiring", "expiring"),
        (certs.AFTER_EXPIRY, "expired", "expired"),
    ],
)
def test_certificates_import_at_any_point_of_their_life_and_report_their_state(
    tmp_path, frontend_app, leaf, instant, label, state
):
    path = write(tmp_path, "leaf.pem", leaf.pem)

    with time_machine.travel(instant, tick=False):
        status, [line], _ = import_certs("--app", "frontend", path)
        _, [as_json], _ = import_certs("--app", "frontend", "--json", path)

    assert status == 0
    assert line.endswith(f"[{label}]")
    assert json.loads(as_json)["state"] == state


# --- service keys ----------------------------------------------------------------------------


def test_a_service_key_fills_the_applications_client_id_tenant_and_domains(tmp_path, leaf):
    key = certs.service_key(
        leaf,
        clientid="9b1c0e7a-client",
        url=OTHER_TENANT + "/",
        domains=("accounts.ondemand.com", "accounts.cloud.sap"),
    )
    path = write(tmp_path, "service-key.json", key)

    status, [line], _ = import_certs("--app", "payments", "--create-app", path)

    app = Application.objects.get(slug="payments")
    cert = app.certificates.get()
    assert status == 0, line
    assert app.client_id == "9b1c0e7a-client"
    assert app.tenant_url == OTHER_TENANT
    assert app.domains == ["accounts.ondemand.com", "accounts.cloud.sap"]
    assert (cert.source_format, cert.tenant) == ("service-key", "othertenant.accounts.ondemand.com")


def test_a_service_key_of_another_client_id_is_refused_naming_both(tmp_path, frontend_app, leaf):
    path = write(tmp_path, "service-key.json", certs.service_key(leaf, clientid="0000-not-frontend", url=""))

    status, [line], _ = import_certs("--app", "frontend", path)

    assert status == 1
    assert line == (
        f"FAILED  {path}: This service key is for client id 0000-not-frontend, but application "
        "'Frontend' has client id 5fd2be25-0e09-4321-8817-4a7b11a2ace2."
    )
    frontend_app.refresh_from_db()
    assert frontend_app.client_id == "5fd2be25-0e09-4321-8817-4a7b11a2ace2"
    assert frontend_app.certificates.count() == 0


def test_a_service_key_of_another_tenant_is_refused_naming_both(tmp_path, frontend_app, leaf):
    key = certs.service_key(leaf, clientid=frontend_app.client_id, url=OTHER_TENANT)
    path = write(tmp_path, "service-key.json", key)

    status, [line], _ = import_certs("--app", "frontend", path)

    assert status == 1
    assert (
        f"for tenant {OTHER_TENANT}, but application 'Frontend' belongs to {frontend_app.tenant_url}." in line
    )
    assert frontend_app.certificates.count() == 0


# --- size limit ------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_reported_as_too_large(tmp_path, settings, frontend_app, leaf, other):
    settings.CERTMGR_MAX_UPLOAD_BYTES = 20000
    padded = write(tmp_path, "a_padded.pem", leaf.pem + b"\n" * 25000)
    fine = write(tmp_path, "b_fine.pem", other.pem)

    status, lines, _ = import_certs("--app", "frontend", tmp_path)

    assert status == 1
    assert lines[0] == (
        f"FAILED  {padded}: The input is {(len(leaf.pem) + 25000) / 1024:.1f} KiB; the limit is 19.5 KiB. "
        "A certificate with its chain is a few kilobytes."
    )
    assert lines[1].startswith(f"OK      {fine}")
    assert frontend_app.certificates.get().fingerprint == other.fingerprint


def test_the_size_limit_is_the_configured_one(tmp_path, frontend_app, leaf):
    """The same padded file imports under the default limit: the setting is what refuses it."""
    path = write(tmp_path, "padded.pem", leaf.pem + b"\n" * 25000)
    assert django_settings.CERTMGR_MAX_UPLOAD_BYTES > path.stat().st_size

    status, _, _ = import_certs("--app", "frontend", path)

    assert status == 0
    assert frontend_app.certificates.get().not_after == certs.EXPIRES


@pytest.mark.parametrize("slug", ["My App!", "new"])
def test_it_refuses_to_create_an_application_with_an_unusable_slug(tmp_path, leaf, slug):
    write(tmp_path, "a.pem", leaf.pem)

    with pytest.raises(CommandError, match=f"Cannot create application '{re.escape(slug)}'"):
        import_certs("--app", slug, "--create-app", tmp_path)

    assert not Application.objects.filter(slug=slug).exists()


@pytest.mark.parametrize("returning_up_to", [50, 1], ids=["keys-returned", "keys-read-back"])
def test_each_certificate_added_is_audited_against_its_own_row(
    tmp_path, frontend_app, monkeypatch, returning_up_to
):
    """Small batches get their new keys from INSERT ... RETURNING, larger ones read them back:
    either way, each result and each audit entry name the row holding that certificate, in this
    application, not the same certificate stored in another one (of no tenant) before."""
    from certmgr.inventory.importer import Importer
    from certmgr.lib import bulk
    from certmgr.models import AuditEvent

    monkeypatch.setattr(bulk, "RETURNING_UP_TO", returning_up_to)
    issued = [certs.issue(f"client {n}", serial=0x2000 + n, key_slot=n % 2) for n in range(4)]
    paths = [
        write(tmp_path, f"{n}.pem", item.pem + (item.key_pem() if n in (0, 3) else b""))
        for n, item in enumerate(issued)
    ]
    elsewhere = Application.objects.create(slug="elsewhere", name="Elsewhere")
    list(Importer(elsewhere, store_keys=False, actor_label="test").import_paths(paths[1:3], None))

    results = list(Importer(frontend_app, store_keys=True, actor_label="test").import_paths(paths, None))

    assert [r.fingerprint for r in results] == [item.fingerprint for item in issued]
    assert [
        (found.fingerprint, found.application_id)
        for found in (Certificate.objects.get(pk=r.certificate_id) for r in results)
    ] == [(item.fingerprint, frontend_app.pk) for item in issued]
    keyed = AuditEvent.objects.filter(action=AuditEvent.Action.KEY_STORED)
    assert sorted(e.certificate.fingerprint for e in keyed) == sorted(
        [issued[0].fingerprint, issued[3].fingerprint]
    )
    assert all(e.certificate.has_private_key for e in keyed)


def test_a_directory_is_read_in_path_order_with_linked_files_and_without_fifos(
    tmp_path, frontend_app, leaf, other
):
    """Files under a directory come in the order of their path components ("a/…" before "a-b/…",
    which a plain string sort would swap); a link to a file counts, a linked directory is not
    entered, and a FIFO is left out rather than read (reading it would wait forever)."""
    bundle = tmp_path / "bundle"
    (bundle / "a").mkdir(parents=True)
    (bundle / "a-b").mkdir()
    first = write(bundle / "a", "z.pem", leaf.pem)
    second = write(bundle / "a-b", "a.der", other.der)
    (bundle / "a-b" / "link.pem").symlink_to(first)
    (bundle / "linked-dir").symlink_to(bundle / "a", target_is_directory=True)
    os.mkfifo(bundle / "a" / "pipe.pem")

    status, lines, err = import_certs("--app", "frontend", bundle)

    assert [line.split()[1] for line in lines] == [str(first), str(second), str(bundle / "a-b" / "link.pem")]
    assert lines[2].startswith("PRESENT")
    assert status == 0, err


def test_a_fifo_named_as_a_file_is_refused_by_name_not_waited_on(tmp_path, frontend_app, leaf):
    """Named on the command line, a FIFO is not a file: reading it would wait for a writer forever."""
    pipe = tmp_path / "pipe.pem"
    os.mkfifo(pipe)
    after = write(tmp_path, "after.pem", leaf.pem)

    def unblock():  # if the import waited on the pipe after all, end the wait so the test fails, not hangs
        time.sleep(3)
        with contextlib.suppress(OSError):  # nobody reading it: the import did not wait
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=unblock, daemon=True).start()
    status, lines, _ = import_certs("--app", "frontend", pipe, after)

    assert lines[0] == f"FAILED  {pipe}: Not a regular file: a pipe, socket or device is not read."
    assert lines[1].startswith(f"OK      {after}")
    assert status == 1


def test_an_application_created_by_the_import_still_meets_its_tenant_and_its_own_duplicates(
    tmp_path, frontend_app, store, leaf, other
):
    """A new application holds nothing, so the import skips looking: but a service key gives it a
    tenant where the certificate is taken, and one certificate twice is present the second time,
    also across stored batches."""
    store(leaf.pem)  # in 'frontend', tenant mytenant
    taken = write(
        tmp_path, "a_taken.json", certs.service_key(leaf, clientid="new-client", url=frontend_app.tenant_url)
    )
    first = write(tmp_path, "b_other.pem", other.pem)
    again = write(tmp_path, "c_other_again.der", other.der)

    status, lines, _ = import_certs("--app", "newcomer", "--create-app", tmp_path)

    assert status == 1
    assert lines[0].startswith(f"FAILED  {taken}: ") and "frontend" in lines[0].lower()
    assert lines[1].startswith(f"OK      {first}")
    assert lines[2].startswith(f"PRESENT {again}")
    assert Application.objects.get(slug="newcomer").certificates.count() == 1


def test_one_certificate_twice_in_a_new_application_is_present_in_the_next_batch(tmp_path, leaf, other):
    from certmgr.inventory.importer import Importer

    app = Application.objects.create(slug="fresh", name="fresh")
    paths = [
        write(tmp_path, name, data)
        for name, data in (("1.pem", leaf.pem), ("2.pem", other.pem), ("3.pem", leaf.pem))
    ]

    results = list(
        Importer(app, store_keys=False, new_application=True).import_paths(paths, None, batch_size=2)
    )

    assert [(r.ok, r.already_present) for r in results] == [(True, False), (True, False), (True, True)]
    assert app.certificates.count() == 2


def test_the_current_directory_names_its_files_as_their_paths_print(
    tmp_path, monkeypatch, frontend_app, leaf
):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "b.pem", leaf.pem)
    write(tmp_path, "a.pem", leaf.pem)
    monkeypatch.chdir(tmp_path)

    status, lines, _ = import_certs("--app", "frontend", ".")

    assert status == 0
    assert [line.split()[1] for line in lines] == ["a.pem", os.path.join("sub", "b.pem")]


def test_import_paths_takes_a_generator_and_names_each_file_in_its_order(tmp_path, frontend_app):
    """import_certs hands the importer its listing as a generator (never all paths at once): each
    result still carries its own file's name, in order, across batches and failures."""
    from certmgr.inventory.importer import Importer

    issued = [certs.issue(f"streamed {n}", serial=0x2100 + n) for n in range(5)]
    paths = [write(tmp_path, f"{n}.pem", b"junk" if n == 2 else item.pem) for n, item in enumerate(issued)]

    importer = Importer(frontend_app, store_keys=False, actor_label="test")
    results = list(importer.import_paths((str(path) for path in paths), None, batch_size=2))

    assert [r.label for r in results] == [str(path) for path in paths]
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert [r.fingerprint for r in results if r.ok] == [
        item.fingerprint for n, item in enumerate(issued) if n != 2
    ]
