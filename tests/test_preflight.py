"""Pre-flight: what IAS would say about a certificate before it is bound as X509_PROVIDED
(domain.md), one rule at a time, at the suite's named instants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from certmgr.bindings import parameters as bindings
from certmgr.core.binding import ParameterError, secret, x509_generated
from certmgr.core.facts import certificate_facts
from certmgr.core.preflight import ERROR, PASS, WARNING, Check, preflight
from tests import certs

RULES = [
    "validity",
    "expiry",
    "tenant_unique",
    "subject_dn_limit",
    "subject_dn_change",
    "key_strength",
    "client_auth",
    "self_signed",
]
THRESHOLD = timedelta(days=30)


@pytest.fixture
def at(time_machine):
    """Freeze the clock at a named instant; the instant, as the checks' "now"."""

    def _at(instant: datetime) -> datetime:
        time_machine.move_to(instant, tick=False)
        return datetime.now(UTC)

    return _at


def run(item: certs.Issued, now: datetime, **context) -> dict[str, Check]:
    checks = preflight(certificate_facts(item.cert), now=now, threshold=THRESHOLD, **context)
    assert [c.rule for c in checks] == RULES
    return {c.rule: c for c in checks}


def levels(checks: dict[str, Check]) -> dict[str, str]:
    return {rule: check.level for rule, check in checks.items()}


def ca_issued() -> certs.Issued:
    return certs.ca_hierarchy()[2]


# --- validity and expiry ---------------------------------------------------------------------


def test_an_expired_certificate_is_an_error(at, leaf):
    check = run(leaf, at(certs.AFTER_EXPIRY))["validity"]

    assert check == Check("validity", ERROR, "Expired on 2027-01-15 09:00 UTC.")


def test_a_certificate_not_yet_valid_is_an_error(at, leaf):
    checks = run(leaf, at(certs.BEFORE_ISSUE))

    assert checks["validity"] == Check("validity", ERROR, "Not valid before 2026-01-15 09:00 UTC.")
    assert checks["expiry"].level == PASS


def test_a_certificate_valid_now_passes_validity(at, leaf):
    assert run(leaf, at(certs.MID_LIFE))["validity"] == Check("validity", PASS, "Valid now.")


def test_a_certificate_inside_the_warning_window_warns_to_rotate(at, leaf):
    checks = run(leaf, at(certs.TWENTY_DAYS_BEFORE_EXPIRY))

    assert checks["expiry"] == Check("expiry", WARNING, "Expires in 20 days: plan the next rotation now.")
    assert checks["validity"].level == PASS


def test_a_certificate_far_from_expiry_does_not_warn(at, leaf):
    assert run(leaf, at(certs.MID_LIFE))["expiry"].level == PASS


# --- one application per tenant ----------------------------------------------------------------


def test_a_certificate_another_application_of_the_tenant_uses_is_an_error_naming_it(at, leaf):
    check = run(leaf, at(certs.MID_LIFE), tenant_holder="Backend")["tenant_unique"]

    assert check.level == ERROR
    assert "'Backend'" in check.message


def test_a_certificate_no_other_application_uses_passes_the_tenant_rule(at, leaf):
    assert run(leaf, at(certs.MID_LIFE))["tenant_unique"].level == PASS


# --- subject DNs -------------------------------------------------------------------------------


def other_subjects(n: int) -> frozenset[str]:
    return frozenset(f"CN=client-{i:02d},O=Example Corp,C=DE" for i in range(n))


def test_twenty_distinct_subject_dns_pass(at, leaf):
    check = run(leaf, at(certs.MID_LIFE), subject_dns=other_subjects(19))["subject_dn_limit"]

    assert check == Check("subject_dn_limit", PASS, "20 of 20 distinct subject DNs.")


def test_twenty_one_distinct_subject_dns_are_an_error(at, leaf):
    check = run(leaf, at(certs.MID_LIFE), subject_dns=other_subjects(20))["subject_dn_limit"]

    assert check.level == ERROR
    assert check.message.startswith("21 distinct subject DNs")


def test_a_subject_dn_already_counted_is_not_counted_twice(at, leaf):
    subjects = other_subjects(19) | {leaf.subject}

    assert run(leaf, at(certs.MID_LIFE), subject_dns=subjects)["subject_dn_limit"].level == PASS


def test_a_subject_dn_different_from_the_active_certificates_warns_of_replication(at, leaf):
    checks = run(leaf, at(certs.MID_LIFE), active_subject="CN=old-name,O=Example Corp,C=DE")

    assert checks["subject_dn_change"].level == WARNING
    assert "24 h" in checks["subject_dn_change"].message


@pytest.mark.parametrize("active", [None, "same"])
def test_the_same_subject_dn_or_no_active_certificate_passes(at, leaf, active):
    active_subject = leaf.subject if active == "same" else None

    assert run(leaf, at(certs.MID_LIFE), active_subject=active_subject)["subject_dn_change"].level == PASS


# --- the certificate itself --------------------------------------------------------------------


def test_an_rsa_1024_key_is_an_error(at):
    weak = certs.issue(key_kind="rsa1024", serial=0x1024)

    check = run(weak, at(certs.MID_LIFE))["key_strength"]

    assert check == Check("key_strength", ERROR, "RSA 1024 bits: IAS needs at least 2048.")


@pytest.mark.parametrize(("kind", "described"), [("rsa", "RSA 2048"), ("ec", "EC 256"), ("ec384", "EC 384")])
def test_strong_keys_pass(at, kind, described):
    check = run(certs.issue(key_kind=kind), at(certs.MID_LIFE))["key_strength"]

    assert check == Check("key_strength", PASS, f"{described} bits.")


def test_server_auth_only_warns_that_client_auth_is_missing(at):
    server = certs.issue(eku=(ExtendedKeyUsageOID.SERVER_AUTH,))

    check = run(server, at(certs.MID_LIFE))["client_auth"]

    assert check.level == WARNING
    assert "serverAuth" in check.message and "lacks clientAuth" in check.message


@pytest.mark.parametrize(
    "eku",
    [
        (),
        (ExtendedKeyUsageOID.CLIENT_AUTH,),
        (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    ],
)
def test_no_extended_key_usage_or_one_with_client_auth_passes(at, eku):
    assert run(certs.issue(eku=eku), at(certs.MID_LIFE))["client_auth"].level == PASS


def test_a_self_signed_certificate_warns(at, leaf):
    assert run(leaf, at(certs.MID_LIFE))["self_signed"].level == WARNING


def test_a_ca_issued_certificate_passes_and_names_its_issuer(at):
    check = run(ca_issued(), at(certs.MID_LIFE))["self_signed"]

    assert check == Check("self_signed", PASS, "Issued by CN=Example Client CA,O=Example Corp,C=DE.")


def test_a_healthy_certificate_passes_everything(at):
    checks = run(ca_issued(), at(certs.MID_LIFE), subject_dns=other_subjects(5))

    assert levels(checks) == dict.fromkeys(RULES, PASS)


# --- on stored certificates (bindings.checks) --------------------------------------------------


@pytest.mark.django_db
def test_stored_healthy_certificate_passes_everything_at_the_frozen_now(at, store):
    root, inter, leaf = certs.ca_hierarchy()
    cert = store(leaf.pem + inter.pem + root.pem)

    at(certs.MID_LIFE)
    assert levels({c.rule: c for c in bindings.checks(cert)}) == dict.fromkeys(RULES, PASS)
    at(certs.TWENTY_DAYS_BEFORE_EXPIRY)
    assert {c.rule: c.level for c in bindings.checks(cert)}["expiry"] == WARNING


@pytest.mark.django_db
def test_stored_a_certificate_another_application_of_the_tenant_holds_is_an_error_naming_it(
    at, store, frontend_app, backend_app, leaf
):
    """Backend considers the certificate Frontend (same tenant) already uses: the database would
    refuse to store it, so the candidate is checked before it is saved."""
    from certmgr.models import Certificate

    held = store(leaf.pem, frontend_app)
    fields = {f.name: getattr(held, f.name) for f in Certificate._meta.concrete_fields if f.name != "id"}
    candidate = Certificate(**{**fields, "application": backend_app, "tenant": backend_app.tenant})

    checks = {c.rule: c for c in bindings.checks(candidate, now=at(certs.MID_LIFE))}

    assert checks["tenant_unique"].level == ERROR
    assert "'Frontend'" in checks["tenant_unique"].message
    assert {c.rule: c.level for c in bindings.checks(held)}["tenant_unique"] == PASS


@pytest.mark.django_db
def test_stored_subject_dns_of_the_application_count_but_retired_ones_do_not(at, store, frontend_app, leaf):
    from certmgr.models import Certificate

    cert = store(leaf.pem)
    made_up = [Certificate(application=frontend_app, **certs.made_up_facts(n)) for n in range(20)]
    Certificate.objects.bulk_create(made_up)
    at(certs.MID_LIFE)

    assert {c.rule: c for c in bindings.checks(cert)}["subject_dn_limit"].level == ERROR
    Certificate.objects.filter(pk=made_up[0].pk).update(lifecycle=Certificate.Lifecycle.RETIRED)
    check = {c.rule: c for c in bindings.checks(cert)}["subject_dn_limit"]
    assert check == Check("subject_dn_limit", PASS, "20 of 20 distinct subject DNs.")


@pytest.mark.django_db
def test_stored_a_staged_certificate_with_a_new_subject_dn_warns(at, store, frontend_app):
    from certmgr.models import Certificate

    store(certs.issue("frontend-old").pem)
    staged = store(certs.issue("frontend-new", key_kind="ec").pem)
    staged.lifecycle = Certificate.Lifecycle.STAGED
    staged.save(update_fields=["lifecycle"])

    checks = {c.rule: c.level for c in bindings.checks(staged, now=at(certs.MID_LIFE))}

    assert checks["subject_dn_change"] == WARNING


# --- parameters for the other credential types -------------------------------------------------


@pytest.mark.parametrize("key_length", [2048, 4096])
@pytest.mark.parametrize("validity", [1, 30])
def test_x509_generated_takes_the_documented_key_lengths_and_validities(key_length, validity):
    assert x509_generated(key_length=key_length, validity=validity) == {
        "credential-type": "X509_GENERATED",
        "key-length": key_length,
        "validity": validity,
        "validity-type": "DAYS",
    }


def test_x509_generated_defaults_to_2048_bits_for_30_days():
    assert x509_generated() == x509_generated(key_length=2048, validity=30)


def test_x509_generated_takes_an_app_identifier_of_20_characters():
    assert x509_generated(app_identifier="a" * 20)["app-identifier"] == "a" * 20
    assert "app-identifier" not in x509_generated()


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"key_length": 1024}, "key-length"),
        ({"key_length": 3072}, "key-length"),
        ({"validity": 0}, "validity"),
        ({"validity": 31}, "validity"),
        ({"app_identifier": "a" * 21}, "app-identifier"),
    ],
)
def test_x509_generated_refuses_what_ias_refuses(kwargs, says):
    with pytest.raises(ParameterError, match=says):
        x509_generated(**kwargs)


def test_secret_is_the_credential_type_alone():
    assert secret() == {"credential-type": "SECRET"}
