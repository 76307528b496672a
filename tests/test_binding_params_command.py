"""`manage.py binding_params`: exactly the block on stdout, pre-flight findings on stderr.

Run twenty days before the standard certificate expires unless a test says otherwise.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.core.management import CommandError, call_command

from certmgr.bindings import parameters as bindings
from certmgr.core.binding import FORMATS, Target
from certmgr.models import Certificate
from tests import certs

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parent.parent
SELF_SIGNED = (
    "Self-signed: IAS refuses it unless it was added to the tenant as a trusted CA through an SAP "
    "incident (component BC-IAM-IDS, with the root and intermediate certificates attached)."
)


@pytest.fixture(autouse=True)
def _twenty_days_before_expiry():
    with time_machine.travel(certs.TWENTY_DAYS_BEFORE_EXPIRY, tick=False):
        yield


def binding_params(*args) -> tuple[str, str]:
    """Run the command in-process: (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("binding_params", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def pem_text(*items: certs.Issued) -> str:
    return "\n".join(item.pem.decode("ascii").strip() for item in items)


@pytest.fixture
def cert(store, leaf):
    return store(leaf.pem)


@pytest.mark.parametrize("fmt", FORMATS)
def test_it_prints_exactly_the_block_of_each_format_by_id(cert, fmt):
    out, _ = binding_params(cert.pk, "--format", fmt)

    assert out == bindings.rendered(cert, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_it_finds_the_certificate_by_a_fingerprint_prefix_too(cert, leaf, fmt):
    out, _ = binding_params(leaf.fingerprint[:12], "--format", fmt)

    assert out == bindings.rendered(cert, fmt)


def test_the_json_block_is_the_certificate_alone_and_json_is_the_default(cert, leaf):
    out, _ = binding_params(cert.pk)

    assert json.loads(out) == {"credential-type": "X509_PROVIDED", "certificate": pem_text(leaf)}
    assert out.endswith("}\n") and not out.endswith("\n\n")


def test_a_colon_separated_upper_case_fingerprint_works(cert, leaf):
    colons = ":".join(leaf.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()

    out, _ = binding_params(colons, "--format", "mta")

    assert out == bindings.rendered(cert, "mta")


def test_the_names_go_where_each_tool_wants_them(cert):
    out, _ = binding_params(
        cert.pk, "--format", "cf", "--instance", "ias-prod", "--app", "shop-web", "--key-name", "ci-key"
    )

    assert out == bindings.rendered(
        cert, "cf", target=Target(instance="ias-prod", app="shop-web", key_name="ci-key")
    )
    [command] = [line for line in out.splitlines() if not line.startswith(("#", "set "))]
    assert command.startswith("cf create-service-key ias-prod ci-key -c '{")


@pytest.mark.parametrize("fmt", ["cf", "mta", "terraform-cf"])
def test_cf_target_app_binds_the_app_instead_of_creating_a_key(cert, fmt):
    out, _ = binding_params(cert.pk, "--format", fmt, "--cf-target", "app", "--app", "shop-web")

    assert out == bindings.rendered(cert, fmt, target=Target(app="shop-web", cf_target="app"))
    assert out != bindings.rendered(cert, fmt, target=Target(app="shop-web", cf_target="key"))
    if fmt == "cf":
        [command] = [line for line in out.splitlines() if line.startswith("cf ")]
        assert command.startswith("cf bind-service shop-web my-ias-instance -c '{")


def test_an_unknown_cf_target_is_refused_by_the_parser(cert):
    with pytest.raises(CommandError, match="invalid choice: 'both'"):
        binding_params(cert.pk, "--cf-target", "both")


def test_chain_puts_the_issuers_after_the_certificate(chained):
    cert, (leaf, inter, root) = chained

    alone, _ = binding_params(cert.pk)
    with_chain, _ = binding_params(cert.pk, "--chain")
    terraform, _ = binding_params(cert.pk, "--chain", "--format", "terraform")

    assert json.loads(alone)["certificate"] == pem_text(leaf)
    assert json.loads(with_chain)["certificate"] == pem_text(leaf, inter, root)
    assert terraform == bindings.rendered(cert, "terraform", chain=True)
    assert terraform.count("-----BEGIN CERTIFICATE-----") == 3


def test_pre_flight_findings_go_to_stderr_one_line_each_and_never_to_stdout(cert):
    out, err = binding_params(cert.pk)

    assert err.splitlines() == [
        "warning: expiry: Expires in 20 days: plan the next rotation now.",
        f"warning: trusted_ca: {SELF_SIGNED}",
    ]
    assert "warning" not in out


def binding_params_status(*args) -> tuple[int, str, str]:
    """(exit status, stdout, stderr): the command as a pipeline sees it."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("binding_params", *map(str, args), stdout=out, stderr=err)
    except SystemExit as exit:
        return exit.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_an_error_finding_exits_3_with_the_checks_on_stderr_and_nothing_on_stdout(cert):
    """An expired certificate: a pipeline that binds what it prints would hand IAS what it refuses."""
    with time_machine.travel(certs.AFTER_EXPIRY, tick=False):
        status, out, err = binding_params_status(cert.pk, "--format", "kyma")

    assert (status, out) == (3, "")
    assert err.splitlines() == [
        "error: validity: Expired on 2027-01-15 09:00 UTC.",
        f"warning: trusted_ca: {SELF_SIGNED}",
        "IAS would refuse this certificate (the errors above): no parameters printed; --force prints them anyway.",
    ]


def test_force_prints_the_block_anyway_and_still_reports_the_error(cert):
    with time_machine.travel(certs.AFTER_EXPIRY, tick=False):
        status, out, err = binding_params_status(cert.pk, "--format", "kyma", "--force")

    assert (status, out) == (0, bindings.rendered(cert, "kyma"))
    assert err.splitlines()[0] == "error: validity: Expired on 2027-01-15 09:00 UTC."


def test_warnings_alone_do_not_stop_the_block(cert):
    status, out, _ = binding_params_status(cert.pk)

    assert (status, out) == (0, bindings.rendered(cert, "json"))


def test_a_certificate_that_passes_everything_prints_nothing_on_stderr(chained, settings, tmp_path):
    cert, (_, _, root) = chained
    (tmp_path / "cas.pem").write_bytes(root.pem)
    settings.CERTMGR_IAS_TRUSTED_CAS = str(tmp_path / "cas.pem")  # the suite's root, added to the tenant
    with time_machine.travel(certs.MID_LIFE, tick=False):
        out, err = binding_params(cert.pk)

    assert (err, out) == ("", bindings.rendered(cert, "json"))


@pytest.mark.parametrize(
    "reference",
    ["999999", "deadbeefdeadbeef", "abc", ""],
    ids=["unknown-id", "unknown-fingerprint", "too-short", "empty"],
)
def test_an_unknown_reference_is_a_command_error(cert, reference):
    with pytest.raises(CommandError) as error:
        binding_params(reference)

    assert str(error.value) == (
        f"No single certificate matches {reference!r}: give its id, or at least 8 hex digits "
        "of its SHA-256 fingerprint that match exactly one stored certificate."
    )


def test_a_prefix_two_certificates_share_is_a_command_error_and_a_longer_one_is_not(cert, store, leaf):
    other = store(certs.issue("backend-app (P000042)", key_kind="ec", serial=0x2000).pem)
    # Two real fingerprints sharing 12 hex digits are too rare to generate: make them share 12
    # and differ in the 13th.
    differing = "1" if leaf.fingerprint[12] == "0" else "0"
    Certificate.objects.filter(pk=other.pk).update(fingerprint=leaf.fingerprint[:12] + differing * 52)

    with pytest.raises(CommandError, match="No single certificate matches"):
        binding_params(leaf.fingerprint[:12])
    out, _ = binding_params(leaf.fingerprint[:13])

    assert out == bindings.rendered(cert, "json")


def test_an_unknown_format_is_refused_by_the_parser(cert):
    with pytest.raises(CommandError, match="invalid choice: 'xml'"):
        binding_params(cert.pk, "--format", "xml")


def test_run_as_a_program_it_exits_1_with_the_message_on_stderr(tmp_path):
    """manage.py in a fresh process, against an empty database of its own."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SQLITE_PATH=str(tmp_path / "cli.sqlite3"), DJANGO_DEBUG="0")
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True, capture_output=True)

    done = subprocess.run(
        [*manage, "binding_params", "42"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "CommandError: No single certificate matches '42': give its id, or at least 8 hex digits "
        "of its SHA-256 fingerprint that match exactly one stored certificate."
    )
