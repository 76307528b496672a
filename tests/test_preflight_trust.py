"""Pre-flight, the issuer rule: IAS takes an X509_PROVIDED certificate only from a CA the tenant
trusts (SAP-docs/btp-cloud-identity-services, "Configure Certificates for API Authentication"): by
default eight CAs SAP names; any other CA, a self-signed certificate included, only after an SAP
incident (component BC-IAM-IDS). CAs added that way are listed in CERTMGR_IAS_TRUSTED_CAS.

SAP's CAs are not ours to sign with: test CAs named like them stand in for the name rule, and the
suite's own CA stands in for a CA added to the tenant. Time is frozen in the middle of the leaf's life.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from certmgr.bindings import parameters as bindings
from certmgr.core.facts import certificate_facts
from certmgr.core.iastrust import DEFAULT_TRUSTED_CAS
from certmgr.core.preflight import PASS, WARNING, Check, preflight
from tests import certs

NOW = certs.MID_LIFE
INCIDENT = "component BC-IAM-IDS"


@pytest.fixture(autouse=True)
def _mid_life(time_machine):
    time_machine.move_to(NOW, tick=False)


def ca(cn: str, *, issuer: certs.Issued | None = None, slot: int = 201, serial: int = 0x201, org="SAP SE"):
    return certs.issue(
        cn, ca=True, eku=(), issuer=issuer, key_slot=slot, serial=serial, org=org,
        not_after=certs.ISSUED + timedelta(days=3650),
    )  # fmt: skip


def leaf_under(issuer: certs.Issued, *, slot: int = 203, serial: int = 0x203) -> certs.Issued:
    return certs.issue("frontend-app (P000042)", issuer=issuer, key_slot=slot, serial=serial)


def trust_check(*chain: certs.Issued, trusted: tuple[certs.Issued, ...] = ()) -> Check:
    """The trusted_ca check of ``chain[0]`` uploaded with ``chain[1:]``, leaf first."""
    checks = preflight(
        certificate_facts(chain[0].cert),
        now=NOW,
        threshold=timedelta(days=30),
        chain=[item.cert for item in chain],
        trusted_cas=[item.cert for item in trusted],
    )
    return {check.rule: check for check in checks}["trusted_ca"]


# --- IAS's default CAs, by name --------------------------------------------------------------------


def test_a_leaf_uploaded_alone_under_a_default_ca_passes_naming_it():
    root = ca("SAP Cloud Root CA")
    client_ca = ca("SAP Cloud Platform Client CA", issuer=root, slot=202, serial=0x202)

    check = trust_check(leaf_under(client_ca))

    assert check == Check(
        "trusted_ca", PASS, "Issued under SAP Cloud Platform Client CA, a CA IAS trusts by default."
    )


@pytest.mark.parametrize("name", DEFAULT_TRUSTED_CAS)
def test_each_ca_sap_documents_counts_by_its_common_name(name):
    issuer = ca(name, slot=204, serial=0x204)

    assert trust_check(leaf_under(issuer)).level == PASS


def test_a_whole_chain_up_to_a_default_root_passes():
    root = ca("DigiCert Global Root CA", slot=205, serial=0x205, org="DigiCert Inc")
    inter = ca("Example Issuing CA", issuer=root, slot=206, serial=0x206, org="Example Corp")
    leaf = leaf_under(inter)

    check = trust_check(leaf, inter, root)

    assert check == Check(
        "trusted_ca", PASS, "Issued under DigiCert Global Root CA, a CA IAS trusts by default."
    )


@pytest.mark.parametrize("cn", ["SAP Cloud Root CA 2", "Not SAP Global Root CA", "ConnectivityCA (test)"])
def test_a_name_that_only_contains_a_default_name_does_not_count(cn):
    check = trust_check(leaf_under(ca(cn, slot=207, serial=0x207)))

    assert check.level == WARNING


# --- any other CA: the incident route ------------------------------------------------------------


def test_a_chain_ending_at_another_ca_warns_naming_it_and_the_incident_route():
    root, inter, leaf = certs.ca_hierarchy()

    check = trust_check(leaf, inter, root)

    assert check.level == WARNING
    assert check.message.startswith(
        "The chain ends at 'CN=Example Root CA,O=Example Corp,C=DE', not a CA IAS trusts by default: "
        "IAS refuses the certificate unless that CA was added to the tenant through an SAP incident"
    )
    assert INCIDENT in check.message


def test_a_leaf_uploaded_without_its_issuers_names_the_issuer_it_ends_at():
    _, _, leaf = certs.ca_hierarchy()

    check = trust_check(leaf)

    assert check.level == WARNING
    assert "The chain ends at 'CN=Example Client CA,O=Example Corp,C=DE'" in check.message


def test_a_self_signed_certificate_is_refused_unless_its_ca_was_added():
    check = trust_check(certs.issue())

    assert check == Check(
        "trusted_ca",
        WARNING,
        "Self-signed: IAS refuses it unless it was added to the tenant as a trusted CA through an SAP "
        "incident (component BC-IAM-IDS, with the root and intermediate certificates attached).",
    )


def test_a_self_signed_certificate_named_like_a_default_ca_is_still_self_signed():
    impostor = certs.issue("SAP Global Root CA", org="SAP AG", key_slot=208, serial=0x208)

    check = trust_check(impostor)

    assert check.level == WARNING and check.message.startswith("Self-signed:")


# --- CAs added to the tenant (CERTMGR_IAS_TRUSTED_CAS): by key ---------------------------------------


def test_a_chain_to_a_ca_added_to_the_tenant_passes_naming_it():
    root, inter, leaf = certs.ca_hierarchy()

    check = trust_check(leaf, inter, root, trusted=(root,))

    assert check == Check(
        "trusted_ca",
        PASS,
        "Issued under CN=Example Root CA,O=Example Corp,C=DE, a CA added to the tenant's trust.",
    )


def test_a_leaf_alone_passes_when_its_issuing_ca_was_added():
    _, inter, leaf = certs.ca_hierarchy()

    assert trust_check(leaf, trusted=(inter,)).level == PASS


def test_a_ca_with_the_added_name_but_another_key_does_not_count():
    """Only the name of a listed CA is copied: the leaf's signature does not verify under its key."""
    _, inter, _ = certs.ca_hierarchy()
    lookalike = ca("Example Client CA", slot=209, serial=0x209, org="Example Corp")
    assert lookalike.cert.subject == inter.cert.subject

    check = trust_check(leaf_under(lookalike, slot=210, serial=0x210), trusted=(inter,))

    assert check.level == WARNING


def test_a_self_signed_certificate_added_as_its_own_ca_passes():
    own = certs.issue()

    assert trust_check(own, trusted=(own,)).level == PASS


# --- on stored certificates, with the setting --------------------------------------------------------


@pytest.fixture
def trusted_cas_file(settings, tmp_path):
    def _point_at(*items: certs.Issued):
        path = tmp_path / "ias-trusted-cas.pem"
        path.write_bytes(b"".join(item.pem for item in items))
        settings.CERTMGR_IAS_TRUSTED_CAS = str(path)
        return path

    return _point_at


def stored_trust(cert) -> Check:
    return {check.rule: check for check in bindings.checks(cert)}["trusted_ca"]


@pytest.mark.django_db
def test_stored_a_chain_to_the_ca_in_the_setting_passes(store, trusted_cas_file):
    root, inter, leaf = certs.ca_hierarchy()
    cert = store(leaf.pem + inter.pem + root.pem)
    trusted_cas_file(root)

    assert stored_trust(cert).level == PASS


@pytest.mark.django_db
def test_stored_another_ca_in_the_setting_leaves_the_warning_and_an_edit_of_the_file_counts(
    store, trusted_cas_file
):
    root, inter, leaf = certs.ca_hierarchy()
    cert = store(leaf.pem + inter.pem + root.pem)
    trusted_cas_file(certs.issue("Other Root CA", ca=True, eku=(), key_slot=211, serial=0x211))

    assert stored_trust(cert).level == WARNING
    trusted_cas_file(root)
    assert stored_trust(cert).level == PASS


@pytest.mark.django_db
def test_stored_a_setting_whose_file_went_missing_falls_back_to_the_defaults(store, settings, tmp_path):
    root, inter, leaf = certs.ca_hierarchy()
    cert = store(leaf.pem + inter.pem + root.pem)
    settings.CERTMGR_IAS_TRUSTED_CAS = str(tmp_path / "gone.pem")

    check = stored_trust(cert)

    assert check.level == WARNING and INCIDENT in check.message
