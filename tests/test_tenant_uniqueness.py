"""IAS accepts a certificate for one application per tenant: the portal refuses a second one."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from certmgr.core.parse import parse_certificate_input
from certmgr.inventory.forms import ApplicationForm
from certmgr.inventory.importer import Importer
from certmgr.models import Application, Certificate
from tests import certs

pytestmark = pytest.mark.django_db

TENANT = "mytenant.accounts.ondemand.com"
OTHER_TENANT_URL = "https://othertenant.accounts.ondemand.com"


def application(slug: str, tenant_url: str = "") -> Application:
    return Application.objects.create(name=slug.title(), slug=slug, tenant_url=tenant_url)


def attempt(app: Application, item: certs.Issued):
    """Import ``item`` into ``app`` through the importer; the verdict, whatever it is."""
    [result] = Importer(app, store_keys=False, actor_label="test").save(
        [("leaf.pem", parse_certificate_input(item.pem))]
    )
    return result


def copy_of(cert: Certificate, app: Application) -> Certificate:
    """The same certificate row for another application, bypassing the importer."""
    fields = {
        f.name: getattr(cert, f.name)
        for f in Certificate._meta.concrete_fields
        if f.name not in ("id", "tenant")
    }
    return Certificate(**{**fields, "application": app})


# --- through the importer --------------------------------------------------------------------


def test_it_refuses_a_certificate_another_application_of_the_tenant_holds(
    frontend_app, backend_app, store, leaf
):
    store(leaf.pem, frontend_app)

    result = attempt(backend_app, leaf)

    assert not result.ok
    assert result.error_code == "tenant_conflict"
    assert result.error == (
        "This certificate is already used by application 'Frontend' (frontend) in the same IAS tenant "
        f"({TENANT}); IAS accepts a certificate for one application per tenant only."
    )
    assert backend_app.certificates.count() == 0


def test_the_first_application_may_import_it_again(frontend_app, backend_app, store, leaf):
    store(leaf.pem, frontend_app)

    result = attempt(frontend_app, leaf)

    assert (result.ok, result.already_present) == (True, True)
    assert Certificate.objects.filter(fingerprint=leaf.fingerprint).count() == 1


def test_it_refuses_it_within_one_import_of_several_files(tmp_path, frontend_app, backend_app, store, leaf):
    store(leaf.pem, frontend_app)
    other = certs.issue("backend-app", key_kind="ec", serial=0x2000)
    (tmp_path / "a.pem").write_bytes(other.pem)
    (tmp_path / "b.pem").write_bytes(leaf.pem)

    results = list(Importer(backend_app, store_keys=False).import_paths(sorted(tmp_path.iterdir()), None))

    assert [(r.ok, r.error_code) for r in results] == [(True, ""), (False, "tenant_conflict")]
    assert list(backend_app.certificates.values_list("fingerprint", flat=True)) == [other.fingerprint]


# --- the database constraint itself ----------------------------------------------------------


def test_the_database_refuses_a_direct_insert_into_another_application_of_the_tenant(
    frontend_app, backend_app, store, leaf
):
    first = store(leaf.pem, frontend_app)

    with pytest.raises(IntegrityError), transaction.atomic():
        copy_of(first, backend_app).save()

    assert backend_app.certificates.count() == 0


def test_moving_a_certificate_to_another_application_carries_its_tenant(frontend_app, store, leaf):
    cert = store(leaf.pem, frontend_app)
    elsewhere = application("elsewhere", OTHER_TENANT_URL)

    cert.application = elsewhere
    cert.save()

    cert.refresh_from_db()
    assert cert.tenant == "othertenant.accounts.ondemand.com"


def test_moving_a_certificate_into_a_tenant_that_already_holds_it_is_refused(
    frontend_app, backend_app, store, leaf
):
    held = store(leaf.pem, frontend_app)
    loose = copy_of(held, application("loose"))  # no tenant: no conflict yet
    loose.save()

    loose.application = backend_app
    with pytest.raises(IntegrityError), transaction.atomic():
        loose.save()


# --- who does not conflict -------------------------------------------------------------------


def test_applications_without_a_tenant_url_do_not_conflict(store, leaf):
    first, second = application("first"), application("second")
    store(leaf.pem, first)

    result = attempt(second, leaf)

    assert result.ok and not result.already_present
    assert list(
        Certificate.objects.filter(fingerprint=leaf.fingerprint).values_list("tenant", flat=True)
    ) == ["", ""]


def test_applications_of_different_tenants_do_not_conflict(frontend_app, store, leaf):
    store(leaf.pem, frontend_app)
    other = application("other", OTHER_TENANT_URL)

    result = attempt(other, leaf)

    assert result.ok and not result.already_present
    assert other.certificates.get().tenant == "othertenant.accounts.ondemand.com"


@pytest.mark.parametrize(
    "spelling",
    [
        "https://MyTenant.Accounts.OnDemand.com",
        "https://mytenant.accounts.ondemand.com/",
        "HTTPS://MYTENANT.ACCOUNTS.ONDEMAND.COM//",
        "mytenant.accounts.ondemand.com",
    ],
)
def test_the_tenant_comparison_ignores_case_and_trailing_slashes(frontend_app, store, leaf, spelling):
    store(leaf.pem, frontend_app)
    same = application("same", spelling)

    result = attempt(same, leaf)

    assert same.tenant == TENANT
    assert (result.ok, result.error_code) == (False, "tenant_conflict")
    with pytest.raises(IntegrityError), transaction.atomic():
        copy_of(frontend_app.certificates.get(), same).save()


# --- changing an application's tenant --------------------------------------------------------


def form_for(app: Application, tenant_url: str) -> ApplicationForm:
    data = {
        "name": app.name,
        "slug": app.slug,
        "tenant_url": tenant_url,
        "client_id": app.client_id,
        "notes": "",
    }
    return ApplicationForm(data=data, instance=app)


@pytest.mark.parametrize(
    "tenant_url", ["https://mytenant.accounts.ondemand.com", "https://MYTENANT.accounts.ondemand.com/"]
)
def test_moving_an_application_into_a_tenant_where_its_certificate_is_used_is_refused(
    frontend_app, store, leaf, tenant_url
):
    store(leaf.pem, frontend_app)
    loose = application("loose")
    store(leaf.pem, loose)

    form = form_for(loose, tenant_url)

    assert not form.is_valid()
    [message] = form.errors["tenant_url"]
    first_bytes = ":".join(leaf.fingerprint[i : i + 2] for i in range(0, 16, 2)).upper()
    assert message == (
        "This certificate is already used by application 'Frontend' (frontend) in the same IAS tenant "
        f"(mytenant.accounts.ondemand.com); IAS accepts a certificate for one application per tenant only. "
        f"(Certificate {first_bytes}…)"
    )
    loose.refresh_from_db()
    assert (loose.tenant_url, loose.certificates.get().tenant) == ("", "")


def test_moving_an_application_into_a_free_tenant_moves_its_certificates_along(frontend_app, store, leaf):
    store(leaf.pem, frontend_app)

    form = form_for(frontend_app, OTHER_TENANT_URL + "/")
    assert form.is_valid(), form.errors
    form.save()

    assert frontend_app.tenant_url == OTHER_TENANT_URL
    assert frontend_app.certificates.get().tenant == "othertenant.accounts.ondemand.com"
    assert attempt(application("back-in-mytenant", "https://mytenant.accounts.ondemand.com"), leaf).ok


def test_an_application_keeping_its_own_tenant_does_not_conflict_with_itself(frontend_app, store, leaf):
    store(leaf.pem, frontend_app)

    assert form_for(frontend_app, "https://mytenant.accounts.ondemand.com").is_valid()


def test_a_service_key_cannot_move_an_application_into_a_tenant_where_its_certificate_is_used(
    frontend_app, store, leaf
):
    store(leaf.pem, frontend_app)
    loose = application("loose")
    store(leaf.pem, loose)
    other = certs.issue("loose-app", key_kind="ec", serial=0x3000)
    key = certs.service_key(other, clientid="loose-client", url="https://mytenant.accounts.ondemand.com")

    [result] = Importer(loose, store_keys=False).save([("sk.json", parse_certificate_input(key))])

    assert (result.ok, result.error_code) == (False, "binding_mismatch")
    assert "already used by application 'Frontend' (frontend)" in result.error
    loose.refresh_from_db()
    assert (loose.tenant_url, loose.client_id) == ("", "")


def test_it_refuses_to_move_a_certificate_in_the_admin_into_a_tenant_that_already_uses_it(
    client, admin_user, frontend_app, backend_app, store, leaf
):
    """Ada moves Frontend's certificate to an app of another tenant that holds it: a message, not a 500."""
    from certmgr.models import Application, Certificate

    elsewhere = Application.objects.create(
        name="Elsewhere", slug="elsewhere", tenant_url="https://other.accounts.ondemand.com"
    )
    cert = store(leaf.pem, frontend_app)
    store(leaf.pem, elsewhere)
    client.force_login(admin_user)
    response = client.post(
        f"/admin/certmgr/certificate/{cert.pk}/change/",
        {"application": elsewhere.pk, "lifecycle": "active"},
    )
    assert response.status_code == 200
    assert "already holds this certificate" in response.content.decode()
    elsewhere2 = Application.objects.create(
        name="Twin", slug="twin", tenant_url="https://OTHER.accounts.ondemand.com/"
    )
    response = client.post(
        f"/admin/certmgr/certificate/{cert.pk}/change/",
        {"application": elsewhere2.pk, "lifecycle": "active"},
    )
    assert response.status_code == 200
    assert "already used by application &#x27;Elsewhere&#x27; (elsewhere)" in response.content.decode()
    assert Certificate.objects.get(pk=cert.pk).application == frontend_app


@pytest.mark.parametrize(
    "alias", ["https://mytenant.accounts.cloud.sap", "https://mytenant.accounts.ondemand.com:443/"]
)
def test_one_tenant_under_its_other_domain_or_with_its_port_is_still_the_same_tenant(
    frontend_app, store, leaf, alias
):
    """IAS serves a tenant under accounts.ondemand.com and accounts.cloud.sap alike."""
    from certmgr.inventory.importer import Importer
    from certmgr.models import Application

    store(leaf.pem, frontend_app)
    twin = Application.objects.create(name="Twin", slug="twin", tenant_url=alias)

    [result] = Importer(twin, store_keys=False).save([("again", parse_certificate_input(leaf.pem))])

    assert not result.ok
    assert "already used by application 'Frontend' (frontend)" in result.error


def test_the_admin_refuses_a_tenant_change_that_would_clash_with_a_message(
    client, admin_user, frontend_app, store, leaf
):
    from certmgr.models import Application

    store(leaf.pem, frontend_app)
    loose = Application.objects.create(name="Loose", slug="loose")
    store(leaf.pem, loose)
    client.force_login(admin_user)

    response = client.post(
        f"/admin/certmgr/application/{loose.pk}/change/",
        {
            "name": "Loose",
            "slug": "loose",
            "tenant_url": "https://mytenant.accounts.ondemand.com",
            "domains": "[]",
        },
    )

    assert response.status_code == 200
    assert "already used by application &#x27;Frontend&#x27; (frontend)" in response.content.decode()
    loose.refresh_from_db()
    assert loose.tenant_url == ""
