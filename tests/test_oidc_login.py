"""Login through IAS, end to end: the portal (Django's test client) and the IAS stand-in (real TLS on
127.0.0.1) with a person's login form in between. Users are found by their IAS subject; IAS groups
decide roles at every login; a failed login is named on a page, audited, and logs nobody in."""

from __future__ import annotations

import html
import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.urls import reverse

from certmgr.core.tokenflow import forget_cached_state
from certmgr.models import AuditEvent, ExternalIdentity
from tests import certs
from tests.conftest import log_in_through
from tests.test_standin_oidc import Form

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]

CLIENT_ID = "7a4bb3b8-portal-login"
SECRET = "portal-login-secret-5f1e"
CALLBACK = "http://testserver/oidc/callback/"
PASSWORD = "ias-pass-8817"
TIMEOUT = 5


@pytest.fixture(scope="module")
def people(standin):
    """IAS users: one per role, one without any group; their user_uuids."""
    standin.register_oidc_client(CLIENT_ID, SECRET, [CALLBACK])
    groups = {
        "vicky": ["CertPortalViewers"],
        "adam": ["CertPortalAdmins", "CertPortalViewers"],
        "olga": ["team-frontend"],
        "nora": [],
    }
    return {
        login: standin.add_user(
            login,
            PASSWORD,
            email=f"{login}@example.com",
            given_name=login.title(),
            family_name="Tester",
            groups=g,
        )
        for login, g in groups.items()
    }


@pytest.fixture
def login_settings(ias_settings, ias, people):
    """The portal configured for IAS login with a client secret, as a SECRET identity binding gives."""
    log_in_through(ias_settings, ias, CLIENT_ID, SECRET)
    return ias_settings


class Person:
    """A browser: the portal through Django's test client, IAS through requests (the stand-in's CA)."""

    def __init__(self, client, ias):
        self.client, self.ias = client, ias
        self.idp = requests.Session()
        self.idp.verify = str(ias.ca_file)
        self.idp.trust_env = False

    def to_ias(self, path: str = "/") -> str:
        """Open a portal page anonymously and follow the redirects to IAS; IAS's login URL."""
        response = self.client.get(path)
        assert response.status_code == 302
        start = response["Location"]
        assert urlsplit(start).path == reverse("oidc_authentication_init")
        response = self.client.get(start)
        assert response.status_code == 302
        return response["Location"]

    def log_on_at_ias(self, authorize_url: str, login: str, password: str = PASSWORD) -> str:
        """Fill in IAS's login form; the portal callback URL IAS sends the browser back to."""
        page = self.idp.get(authorize_url, timeout=TIMEOUT, allow_redirects=False)
        assert page.status_code == 200, page.text
        form = Form(page.text)
        [spec] = form.forms
        fields = {name: a.get("value", "") for name, a in form.inputs.items() if a.get("type") == "hidden"}
        fields[form.inputs[form.labels["Email or user name"]]["name"]] = login
        fields[form.inputs[form.labels["Password"]]["name"]] = password
        action = (
            spec["action"] if spec["action"].startswith("https://") else f"{self.ias.url}{spec['action']}"
        )
        back = self.idp.post(action, data=fields, timeout=TIMEOUT, allow_redirects=False)
        assert back.status_code == 302, back.text
        return back.headers["Location"]

    def back_at_portal(self, callback_url: str):
        assert callback_url.startswith(CALLBACK)
        return self.client.get(callback_url[len("http://testserver") :])

    def log_in(self, login: str, path: str = "/"):
        """The whole way: the portal's answer to the callback."""
        return self.back_at_portal(self.log_on_at_ias(self.to_ias(path), login))


@pytest.fixture
def person(client, ias, login_settings):
    forget_cached_state()
    return Person(client, ias)


def text_of(response) -> str:
    return " ".join(html.unescape(response.content.decode()).split())


# --- the way in ------------------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_ias_with_pkce_and_comes_back_to_the_page_asked_for(
    person, frontend_app
):
    authorize = person.to_ias(f"/apps/{frontend_app.slug}/")
    sent = dict(p.split("=", 1) for p in urlsplit(authorize).query.split("&"))

    assert authorize.startswith(f"{person.ias.url}/oauth2/authorize?")
    assert sent["client_id"] == CLIENT_ID and sent["response_type"] == "code"
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert sent["redirect_uri"] == "http%3A%2F%2Ftestserver%2Foidc%2Fcallback%2F"
    assert sent["nonce"] and sent["state"]

    landed = person.back_at_portal(person.log_on_at_ias(authorize, "vicky"))

    assert landed.status_code == 302 and landed["Location"] == f"/apps/{frontend_app.slug}/"
    page = person.client.get(landed["Location"])
    assert page.status_code == 200
    assert "vicky@example.com · viewer" in text_of(page)


def test_the_first_login_creates_a_user_linked_to_the_ias_subject_and_audits_it(person, people):
    person.log_in("vicky")

    user = get_user_model().objects.get(username="vicky@example.com")
    assert (user.first_name, user.last_name, user.email) == ("Vicky", "Tester", "vicky@example.com")
    assert not user.has_usable_password()  # IAS only: nothing to guess on the local login
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject, identity.groups) == (
        person.ias.url,
        f"user_uuid:{people['vicky']}",
        ["CertPortalViewers"],
    )
    actions = list(AuditEvent.objects.filter(actor=user).order_by("at", "pk").values_list("action", "detail"))
    assert actions == [
        (
            "roles_changed",
            "new IAS user → viewer (groups: ias:CertPortalViewers) (from IAS groups: CertPortalViewers)",
        ),
        ("logged_in", "through IAS"),
    ]


def test_the_admin_group_makes_an_admin_who_reaches_the_audit_log(person):
    person.log_in("adam")

    user = get_user_model().objects.get(username="adam@example.com")
    assert user.is_superuser and user.is_staff
    assert person.client.get(reverse("audit-log")).status_code == 200


def test_an_owner_group_manages_its_application_and_only_looks_at_others(person, frontend_app, backend_app):
    frontend_app.owner_groups.add(Group.objects.create(name="ias:team-frontend"))

    person.log_in("olga")

    assert person.client.get(reverse("application-edit", args=[frontend_app.slug])).status_code == 200
    assert person.client.get(reverse("application", args=[backend_app.slug])).status_code == 200
    assert person.client.get(reverse("application-edit", args=[backend_app.slug])).status_code == 403


def test_someone_in_no_portal_group_is_logged_in_but_sees_nothing(person, frontend_app):
    landed = person.log_in("nora")
    page = person.client.get(landed["Location"])

    assert page.status_code == 403
    assert "your account has no role in the portal" in text_of(page)
    assert "CertPortalViewers" in text_of(page)
    assert frontend_app.name not in text_of(page)
    assert person.client.get(reverse("certificates")).status_code == 403


def test_groups_are_read_again_at_every_login(person, ias, people):
    person.log_in("adam")
    person.client.post(reverse("logout"))
    ias.add_user("adam", PASSWORD, email="adam@example.com", given_name="Adam", groups=["CertPortalViewers"])
    try:
        person.log_in("adam")
    finally:
        ias.add_user("adam", PASSWORD, email="adam@example.com", given_name="Adam",
                     groups=["CertPortalAdmins", "CertPortalViewers"])  # fmt: skip

    user = get_user_model().objects.get(username="adam@example.com")
    assert not user.is_superuser and not user.is_staff
    assert get_user_model().objects.filter(email="adam@example.com").count() == 1
    assert person.client.get(reverse("audit-log")).status_code == 403
    change = AuditEvent.objects.filter(action="roles_changed", actor=user).order_by("-at", "-pk").first()
    assert change.detail.startswith("admin (groups: ias:CertPortalAdmins, ias:CertPortalViewers) → viewer")


def test_a_local_account_with_the_same_email_is_never_taken_over(person, admin_user):
    admin_user.email = "vicky@example.com"
    admin_user.save()

    person.log_in("vicky")

    vicky = get_user_model().objects.get(ias_identity__isnull=False)
    assert vicky.pk != admin_user.pk and not vicky.is_superuser
    admin_user.refresh_from_db()
    assert admin_user.is_superuser and admin_user.check_password("ada-pass-123")


def test_a_login_lasts_a_working_day_so_group_changes_in_ias_arrive_the_same_day(person):
    person.log_in("vicky")

    session = Session.objects.get()
    assert session.expire_date == certs.MID_LIFE + timedelta(hours=8)


def test_no_token_is_kept_in_the_session_or_the_database(person):
    person.log_in("vicky")

    issued = person.ias.issued_tokens
    assert issued
    sessions = json.dumps([s.get_decoded() for s in Session.objects.all()])
    stored = json.dumps(list(AuditEvent.objects.values()), default=str)
    for token in issued:
        signature = token.rsplit(".", 1)[1]
        assert signature not in sessions and signature not in stored
    assert SECRET not in sessions and SECRET not in stored


# --- a login that fails is named, audited, and logs nobody in -----------------------------------------


@pytest.mark.parametrize(
    ("fault", "value", "named"),
    [
        (
            "id_token_issuer",
            "https://evil.accounts.ondemand.com",
            "was issued by 'https://evil.accounts.ondemand.com'",
        ),
        ("id_token_audience", "someone-else", "is meant for 'someone-else', not for the portal"),
        ("id_token_nonce", "replayed-nonce", "nonce mismatch"),
        ("id_token_sign_with_unknown_key", True, "which the tenant's JWKS does not publish"),
        ("id_token_lifetime", -600, "The id_token expired at"),
    ],
)
def test_an_id_token_that_fails_a_check_is_refused_with_its_reason(person, ias, fault, value, named):
    setattr(ias.faults, fault, value)

    response = person.log_in("adam")

    assert response.status_code == 403
    assert "The IAS login did not complete" in text_of(response)
    assert named in text_of(response)
    assert person.client.get("/").status_code == 302  # still anonymous: back to IAS
    assert not get_user_model().objects.filter(email="adam@example.com").exists()
    failed = AuditEvent.objects.get(action="login_failed")
    assert named in failed.detail and failed.remote_addr == "127.0.0.1"


def test_a_wrong_client_secret_is_named_as_the_portals_own_problem(person, login_settings):
    login_settings.CERTMGR_OIDC = {**login_settings.CERTMGR_OIDC, "client_secret": "not-the-secret"}

    response = person.log_in("vicky")

    assert response.status_code == 403
    assert "IAS refused the portal's own client secret (invalid_client)" in text_of(response)
    assert "not-the-secret" not in text_of(response)
    assert "not-the-secret" not in json.dumps(list(AuditEvent.objects.values_list("detail", flat=True)))


def test_a_wrong_password_at_ias_never_reaches_the_portal(person):
    authorize = person.to_ias()
    page = person.idp.get(authorize, timeout=TIMEOUT)
    form = Form(page.text)
    fields = {name: a.get("value", "") for name, a in form.inputs.items() if a.get("type") == "hidden"}
    fields[form.inputs[form.labels["Email or user name"]]["name"]] = "vicky"
    fields[form.inputs[form.labels["Password"]]["name"]] = "wrong"
    action = form.forms[0]["action"]
    action = action if action.startswith("https://") else f"{person.ias.url}{action}"

    again = person.idp.post(action, data=fields, timeout=TIMEOUT, allow_redirects=False)

    assert again.status_code in (200, 401) and "Password" in again.text  # IAS shows its form again
    assert not get_user_model().objects.filter(email="vicky@example.com").exists()


def test_a_callback_from_another_browser_session_is_explained_not_a_crash(person, client):
    callback = person.log_on_at_ias(person.to_ias(), "vicky")
    client.cookies.clear()  # the callback arrives in a browser that did not start this login

    response = client.get(callback[len("http://testserver") :])

    assert response.status_code == 403
    assert "does not belong to this browser session" in text_of(response)
    assert not get_user_model().objects.filter(email="vicky@example.com").exists()


def test_a_code_used_twice_logs_in_only_once(person, client):
    callback = person.log_on_at_ias(person.to_ias(), "vicky")
    first = person.back_at_portal(callback)
    person.client.post(reverse("logout"))

    second = person.back_at_portal(callback)

    assert first.status_code == 302
    assert second.status_code == 403
    assert person.client.get("/").status_code == 302


def test_an_error_sent_back_by_ias_is_shown(person):
    person.to_ias()
    state = next(iter(person.client.session["oidc_states"]))

    response = person.client.get(
        reverse("oidc_authentication_callback"),
        {
            "error": "access_denied",
            "error_description": "The user is not assigned to the application",
            "state": state,
        },
    )

    assert response.status_code == 403
    assert "IAS ended the login: The user is not assigned to the application" in text_of(response)
    assert AuditEvent.objects.filter(action="login_failed").count() == 1


# --- the portal authenticating with its certificate (X509 identity bindings) ---------------------------


@pytest.fixture
def certificate_client(ias, login_settings):
    item = certs.issue("ias-cert-portal (login)", key_slot=2, serial=0x5150)
    ias.register_oidc_client("cert-portal-x509", None, [CALLBACK])
    ias.register("cert-portal-x509", item.pem)
    login_settings.CERTMGR_OIDC = {
        **login_settings.CERTMGR_OIDC,
        "client_id": "cert-portal-x509",
        "client_secret": None,
        "certificate_pem": item.pem,
        "key_pem": item.key_pem(),
    }
    login_settings.OIDC_RP_CLIENT_ID = "cert-portal-x509"
    yield item
    ias.unregister("cert-portal-x509")


def test_with_an_x509_binding_the_portal_redeems_the_code_with_its_certificate(
    person, ias, certificate_client
):
    landed = person.log_in("vicky")

    assert landed.status_code == 302
    assert person.client.get("/").status_code == 200
    [redeemed] = [r for r in ias.token_requests if r.client_id == "cert-portal-x509"]
    assert redeemed.status == 200 and redeemed.thumbprint  # mutual TLS, no secret


def test_an_unregistered_login_certificate_is_named(person, ias, certificate_client):
    ias.unregister("cert-portal-x509")

    response = person.log_in("vicky")

    assert response.status_code == 403
    assert "IAS refused the portal's own client certificate (invalid_client)" in text_of(response)


# --- the local login: break-glass admins only, once IAS login is configured ----------------------------


def test_the_login_page_offers_ias_first_and_the_local_form_for_break_glass_admins(client, login_settings):
    page = text_of(client.get(reverse("login")))

    assert "Log on with SAP Cloud Identity Services" in page
    assert "For break-glass admin accounts only" in page


def test_a_local_account_that_is_not_an_admin_must_use_ias(client, login_settings, owner, admin_user):
    refused = client.post(reverse("login"), {"username": "otto", "password": "otto-pass-123"})
    admitted = client.post(reverse("login"), {"username": "ada", "password": "ada-pass-123"})

    assert refused.status_code == 200
    assert "Please enter a correct username and password" in text_of(refused)  # no hint it was right
    assert AuditEvent.objects.filter(
        action="login_failed",
        actor_label="otto",
        detail="local password login refused: not a break-glass admin",
    ).exists()
    assert admitted.status_code == 302
    assert AuditEvent.objects.filter(
        action="logged_in", actor=admin_user, detail="with a local password"
    ).exists()


def test_a_wrong_local_password_is_audited_without_the_password(client, login_settings, admin_user):
    client.post(reverse("login"), {"username": "ada", "password": "guess-1234"})

    failed = AuditEvent.objects.get(action="login_failed")
    assert failed.actor_label == "ada" and "guess-1234" not in failed.detail


def test_the_local_login_can_be_switched_off(client, login_settings, admin_user):
    login_settings.CERTMGR_LOCAL_LOGIN = "off"

    page = client.get(reverse("login"))
    refused = client.post(reverse("login"), {"username": "ada", "password": "ada-pass-123"})

    assert 'name="password"' not in page.content.decode()
    assert refused.status_code == 200 and client.get("/").status_code == 302


def test_logging_out_ends_on_a_page_that_does_not_log_straight_back_in(person):
    person.log_in("vicky")

    response = person.client.post(reverse("logout"))

    assert response.status_code == 302 and response["Location"] == reverse("logged-out")
    page = person.client.get(response["Location"])
    assert page.status_code == 200 and "You are logged out of the portal" in text_of(page)
    assert person.client.get("/").status_code == 302


# --- what the security review found, kept found ------------------------------------------------------


def test_a_login_ends_at_a_fixed_time_however_busy_the_session_is(person):
    person.log_in("vicky")
    with time_machine.travel(certs.MID_LIFE + timedelta(hours=7), tick=False):
        person.client.get(reverse("oidc_authentication_init"))  # writes to the session
        assert person.client.get("/").status_code == 200

    with time_machine.travel(certs.MID_LIFE + timedelta(hours=8, minutes=1), tick=False):
        assert person.client.get("/").status_code == 302


def test_an_ias_account_given_a_password_still_cannot_use_the_local_login(person):
    person.log_in("adam")
    adam = get_user_model().objects.get(username="adam@example.com")
    adam.set_password("local-pass-123")
    adam.save()
    person.client.post(reverse("logout"))

    refused = person.client.post(
        reverse("login"), {"username": "adam@example.com", "password": "local-pass-123"}
    )

    assert refused.status_code == 200 and person.client.get(reverse("audit-log")).status_code == 302
    assert AuditEvent.objects.filter(detail="local password login refused: an IAS account").exists()


def test_the_admin_sites_login_follows_the_same_rules(client, login_settings, admin_user):
    login_settings.CERTMGR_LOCAL_LOGIN = "off"

    client.post(reverse("admin:login"), {"username": "ada", "password": "ada-pass-123"})

    assert client.get(reverse("admin:index")).status_code == 302


def test_an_ias_group_does_not_inherit_a_local_group_of_the_same_name(person):
    local = Group.objects.create(name="CertPortalViewers")
    local.permissions.add(Permission.objects.get(codename="add_application"))

    person.log_in("vicky")

    assert person.client.get(reverse("application-create")).status_code == 403
    vicky = get_user_model().objects.get(username="vicky@example.com")
    assert sorted(vicky.groups.values_list("name", flat=True)) == ["ias:CertPortalViewers"]


def test_groups_given_in_the_portal_survive_the_next_ias_login(person):
    person.log_in("olga")
    olga = get_user_model().objects.get(username="olga@example.com")
    olga.groups.add(Group.objects.create(name="auditors"))
    person.client.post(reverse("logout"))

    person.log_in("olga")

    assert sorted(olga.groups.values_list("name", flat=True)) == ["auditors", "ias:team-frontend"]


def test_which_groups_make_viewers_is_read_from_the_settings_at_once(person, login_settings):
    person.log_in("vicky")
    assert person.client.get("/").status_code == 200

    login_settings.CERTMGR_VIEWER_GROUPS = ["NewViewers"]

    assert person.client.get("/").status_code == 403


def test_losing_every_group_is_recorded_as_losing_the_role(person, ias):
    person.log_in("vicky")
    person.client.post(reverse("logout"))
    ias.add_user("vicky", PASSWORD, email="vicky@example.com", given_name="Vicky", groups=[])
    try:
        person.log_in("vicky")
    finally:
        ias.add_user(
            "vicky", PASSWORD, email="vicky@example.com", given_name="Vicky", groups=["CertPortalViewers"]
        )

    change = AuditEvent.objects.filter(action="roles_changed").order_by("-at", "-pk").first()
    assert change.detail.startswith("viewer (groups: ias:CertPortalViewers) → no role")


def test_roles_of_someone_who_stopped_logging_in_lapse_digests_included(person, frontend_app, store, leaf):
    from certmgr.access.roles import role_of
    from certmgr.notifications import ledger as notify

    store(leaf.pem, frontend_app)
    person.log_in("adam")
    adam = get_user_model().objects.get(username="adam@example.com")
    soon = certs.EXPIRES - timedelta(days=20)
    assert role_of(adam) == "admin" and notify.digest_certificates(adam, soon).exists()

    with time_machine.travel(certs.MID_LIFE + timedelta(days=31), tick=False):
        lapsed = get_user_model().objects.get(pk=adam.pk)
        assert role_of(lapsed) is None
        assert not notify.digest_certificates(lapsed, soon).exists()


def test_an_error_link_from_elsewhere_neither_logs_out_nor_writes_in_anyones_name(person):
    person.log_in("vicky")

    response = person.client.get(
        reverse("oidc_authentication_callback"),
        {"error": "access_denied", "error_description": "Call 555-0100 now"},
    )

    assert response.status_code == 403 and "555-0100" not in text_of(response)
    assert person.client.get("/").status_code == 200  # still logged in
    assert not AuditEvent.objects.filter(action="login_failed").exists()


def test_a_login_certificate_that_does_not_match_its_key_is_named_not_a_crash(
    person, certificate_client, login_settings
):
    other = certs.issue("someone else", key_slot=5, serial=0x5151)
    login_settings.CERTMGR_OIDC = {**login_settings.CERTMGR_OIDC, "key_pem": other.key_pem()}

    response = person.log_in("vicky")

    assert response.status_code == 403
    assert "could not be loaded together" in text_of(response)


def test_password_guessing_on_the_local_login_is_throttled(client, login_settings, admin_user):
    for n in range(10):
        client.post(reverse("login"), {"username": "ada", "password": f"guess-{n}"})

    right = client.post(reverse("login"), {"username": "ada", "password": "ada-pass-123"})

    assert "Too many failed logins" in text_of(right)
    assert client.get("/").status_code == 302
    with time_machine.travel(certs.MID_LIFE + timedelta(minutes=16), tick=False):
        assert (
            client.post(reverse("login"), {"username": "ada", "password": "ada-pass-123"}).status_code == 302
        )


def test_an_account_deactivated_in_the_portal_cannot_log_in_through_ias(person):
    person.log_in("vicky")
    person.client.post(reverse("logout"))
    get_user_model().objects.filter(username="vicky@example.com").update(is_active=False)

    response = person.log_in("vicky")

    assert response.status_code == 403
    assert "This portal account is deactivated." in text_of(response)
    assert person.client.get("/").status_code == 302


def test_admins_see_who_logs_in_through_ias_with_their_groups(person, client, admin_user):
    person.log_in("olga")
    client.force_login(admin_user)

    page = client.get(reverse("admin:certmgr_externalidentity_changelist"))

    assert page.status_code == 200
    assert "olga@example.com" in text_of(page) and "team-frontend" in text_of(page)
