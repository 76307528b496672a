"""Pre-flight: what IAS would say about a certificate before it is bound as X509_PROVIDED
(domain.md), one rule at a time, at the suite's named instants.

The issuer rule (trusted_ca) lives in tests/test_preflight_trust.py; the switches for the rules SAP
does not document are at the end of this file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from certmgr.bindings import parameters as bindings
from certmgr.core.binding import ParameterError, secret, x509_generated
from certmgr.core.facts import certificate_facts
from certmgr.core.preflight import ERROR, PASS, WARNING, Check, preflight, unknown_switches
from tests import certs

RULES = [
    "validity",
    "expiry",
    "tenant_unique",
    "subject_dn_limit",
    "subject_dn_change",
    "key_strength",
    "client_auth",
    "trusted_ca",
]
UNDOCUMENTED = "(not documented by SAP)"
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


def example_chain():
    """The suite's CA-issued leaf with its issuers, and its root as a CA the tenant was told to trust."""
    root, inter, leaf = certs.ca_hierarchy()
    return {"chain": [leaf.cert, inter.cert, root.cert], "trusted_cas": [root.cert]}


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
    assert checks["subject_dn_change"].message.endswith(f"{UNDOCUMENTED}.")


@pytest.mark.parametrize("active", [None, "same"])
def test_the_same_subject_dn_or_no_active_certificate_passes(at, leaf, active):
    active_subject = leaf.subject if active == "same" else None

    assert run(leaf, at(certs.MID_LIFE), active_subject=active_subject)["subject_dn_change"].level == PASS


# --- the certificate itself --------------------------------------------------------------------


def test_an_rsa_1024_key_is_a_warning_labelled_undocumented(at):
    weak = certs.issue(key_kind="rsa1024", serial=0x1024)

    check = run(weak, at(certs.MID_LIFE))["key_strength"]

    assert check == Check(
        "key_strength", WARNING, f"RSA 1024 bits: IAS may refuse keys under 2048 bits {UNDOCUMENTED}."
    )


@pytest.mark.parametrize(("kind", "described"), [("rsa", "RSA 2048"), ("ec", "EC 256"), ("ec384", "EC 384")])
def test_strong_keys_pass(at, kind, described):
    check = run(certs.issue(key_kind=kind), at(certs.MID_LIFE))["key_strength"]

    assert check == Check("key_strength", PASS, f"{described} bits.")


def test_server_auth_only_warns_that_client_auth_is_missing(at):
    server = certs.issue(eku=(ExtendedKeyUsageOID.SERVER_AUTH,))

    check = run(server, at(certs.MID_LIFE))["client_auth"]

    assert check.level == WARNING
    assert "serverAuth" in check.message and "lacks clientAuth" in check.message
    assert check.message.endswith(f"{UNDOCUMENTED}.")


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


def test_a_self_signed_certificate_warns_that_ias_refuses_it(at, leaf):
    check = run(leaf, at(certs.MID_LIFE))["trusted_ca"]

    assert check.level == WARNING
    assert check.message.startswith("Self-signed: IAS refuses it unless")
    assert "component BC-IAM-IDS" in check.message


def test_a_healthy_certificate_passes_everything(at):
    checks = run(ca_issued(), at(certs.MID_LIFE), subject_dns=other_subjects(5), **example_chain())

    assert levels(checks) == dict.fromkeys(RULES, PASS)


# --- on stored certificates (bindings.checks) --------------------------------------------------


@pytest.fixture
def trusted_example_root(settings, tmp_path):
    """The suite's root CA stands in for a CA added to the tenant: CERTMGR_IAS_TRUSTED_CAS."""
    path = tmp_path / "ias-trusted-cas.pem"
    path.write_bytes(certs.ca_hierarchy()[0].pem)
    settings.CERTMGR_IAS_TRUSTED_CAS = str(path)
    return path


@pytest.mark.django_db
def test_stored_healthy_certificate_passes_everything_at_the_frozen_now(at, store, trusted_example_root):
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


# --- switching off the rules SAP does not document ----------------------------------------------

SWITCHED = {"dn_change": "subject_dn_change", "rsa_min": "key_strength", "client_auth": "client_auth"}


def undocumented_failures(at) -> tuple[certs.Issued, dict]:
    """A 1024-bit serverAuth certificate replacing one with another subject DN: all three rules warn."""
    odd = certs.issue("odd-client", key_kind="rsa1024", eku=(ExtendedKeyUsageOID.SERVER_AUTH,), serial=0x77)
    return odd, {"now": at(certs.MID_LIFE), "active_subject": "CN=old-name,O=Example Corp,C=DE"}


@pytest.mark.parametrize("switch", list(SWITCHED))
def test_each_undocumented_rule_can_be_switched_off_alone(at, switch):
    odd, context = undocumented_failures(at)
    every = {c.rule: c for c in preflight(certificate_facts(odd.cert), threshold=THRESHOLD, **context)}

    left = preflight(certificate_facts(odd.cert), threshold=THRESHOLD, disabled=[switch], **context)

    assert {rule: every[rule].level for rule in SWITCHED.values()} == dict.fromkeys(
        SWITCHED.values(), WARNING
    )
    assert all(every[rule].message.endswith(f"{UNDOCUMENTED}.") for rule in SWITCHED.values())
    assert [c.rule for c in left] == [rule for rule in RULES if rule != SWITCHED[switch]]
    assert left == [every[c.rule] for c in left]


def test_all_three_switched_off_leave_the_documented_rules(at):
    odd, context = undocumented_failures(at)

    left = preflight(certificate_facts(odd.cert), threshold=THRESHOLD, disabled=list(SWITCHED), **context)

    assert [c.rule for c in left] == ["validity", "expiry", "tenant_unique", "subject_dn_limit", "trusted_ca"]


@pytest.mark.django_db
@pytest.mark.parametrize("switch", list(SWITCHED))
def test_stored_a_switch_in_the_settings_takes_its_rule_off_the_panel(at, store, settings, switch):
    store(certs.issue("frontend-old").pem)
    odd = store(certs.issue("odd-client", key_kind="rsa1024", eku=(ExtendedKeyUsageOID.SERVER_AUTH,)).pem)
    odd.lifecycle = "staged"
    odd.save(update_fields=["lifecycle"])
    now = at(certs.MID_LIFE)
    before = {c.rule: c.level for c in bindings.checks(odd, now=now)}

    settings.CERTMGR_PREFLIGHT_DISABLE = [switch]
    after = {c.rule: c.level for c in bindings.checks(odd, now=now)}

    assert {rule: before[rule] for rule in SWITCHED.values()} == dict.fromkeys(SWITCHED.values(), WARNING)
    assert after == {rule: level for rule, level in before.items() if rule != SWITCHED[switch]}


def test_unknown_switch_names_are_reported():
    assert unknown_switches(["dn_change", "rsa-min", "self_signed", "client_auth"]) == [
        "rsa-min",
        "self_signed",
    ]


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
