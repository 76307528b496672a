"""Otto uploads a certificate: he sees what was found, then saves it, or cancels; nothing else is kept.

Secrets (the file's password, the private key) never come back to the browser and never sit
in the session in clear.
"""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from certmgr.core.facts import format_fingerprint
from certmgr.models import AuditEvent, Certificate
from tests import certs

P12_PASSWORD = "Otto-p12-Secret!"
LEAF_SUBJECT = "CN=frontend-app (P000042),O=Example Corp,C=DE"
INTER_SUBJECT = "CN=Example Client CA,O=Example Corp,C=DE"
ROOT_SUBJECT = "CN=Example Root CA,O=Example Corp,C=DE"
CLIENT_ID = "5fd2be25-0e09-4321-8817-4a7b11a2ace2"
TENANT = "https://mytenant.accounts.ondemand.com"


def text_of(response) -> str:
    """The page as a reader sees it: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


def secrets_in(text: str, item: certs.Issued, password: str = P12_PASSWORD) -> list[str]:
    """Which secrets of ``item`` appear in ``text``: the password, a PEM key, the key's base64."""
    compact = re.sub(r"\s|\\n", "", text)
    key_b64 = [
        base64.b64encode(item.key_der()).decode(),
        "".join(item.key_pem("traditional").decode().split()[4:-4]),
    ]
    found = [password] if password in text else []
    found += re.findall(r"BEGIN [A-Z ]*PRIVATE KEY", text)  # an error may name an END line, never show a key
    found += [f"key base64 {b64[-200:-140]}" for b64 in key_b64 if b64[-200:-140] in compact]
    return found


def session_contents() -> list[str]:
    return [json.dumps(SessionStore().decode(s.session_data)) for s in Session.objects.all()]


def nothing_saved() -> bool:
    stored = AuditEvent.objects.exclude(action=AuditEvent.Action.LOGGED_IN)
    return not Certificate.objects.exists() and not stored.exists()


@pytest.fixture
def otto(client, owner, frontend_app):
    with time_machine.travel(certs.MID_LIFE, tick=False):
        client.force_login(owner)
        yield client


def preview(client, app, *, file=None, text="", password="", store_key=False, url=None):
    data = {"step": "preview", "application": app.pk, "text": text, "password": password}
    if file is not None:
        data["file"] = SimpleUploadedFile(*file)
    if store_key:
        data["store_private_key"] = "on"
    return client.post(url or reverse("upload"), data)


def p12_with_chain() -> tuple[certs.Issued, dict]:
    """The leaf of the CA hierarchy and an upload of it as a .p12 with key and chain."""
    root, inter, leaf = certs.ca_hierarchy()
    p12 = certs.p12(leaf, P12_PASSWORD.encode(), (inter, root))
    return leaf, {"file": ("client.p12", p12), "password": P12_PASSWORD}


def confirm(client, response, step="confirm"):
    return client.post(reverse("upload"), {"step": step, "token": response.context["token"]})


# --- preview, then save ----------------------------------------------------------------------


def test_it_previews_a_p12_with_its_chain_and_saves_nothing_yet(otto, frontend_app):
    leaf, upload = p12_with_chain()

    response = preview(otto, frontend_app, **upload)

    page = text_of(response)
    assert response.status_code == 200
    assert "Nothing is saved yet" in page
    assert LEAF_SUBJECT in page
    assert format_fingerprint(leaf.fingerprint) in page
    assert "2027-01-15 09:00:00 UTC" in page
    chain = re.findall(r'<li><span class="mono">([^<]+)</span> — issued by', response.content.decode())
    assert chain == [LEAF_SUBJECT, INTER_SUBJECT, ROOT_SUBJECT]
    assert "A private key matching the certificate was found" in page
    assert nothing_saved()


def test_it_saves_the_certificate_on_confirm_and_shows_its_page(otto, owner, frontend_app):
    leaf, upload = p12_with_chain()
    shown = preview(otto, frontend_app, **upload)

    response = confirm(otto, shown)

    cert = Certificate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("certificate", args=[cert.pk])
    assert (cert.application, cert.fingerprint, cert.subject) == (
        frontend_app,
        leaf.fingerprint,
        LEAF_SUBJECT,
    )
    assert (cert.not_after, cert.source_format, cert.uploaded_by) == (certs.EXPIRES, "pkcs12", owner)
    assert len(cert.chain_certificates()) == 3
    assert "Certificate stored." in text_of(otto.get(response["Location"]))


@pytest.mark.parametrize(
    ("name", "content", "fmt", "key_text"),
    [
        (
            "client.pem",
            lambda c: c.pem + c.key_pem(),
            "pem",
            "A private key matching the certificate was found",
        ),
        ("client.cer", lambda c: c.der, "der", "No private key in the input"),
    ],
)
def test_it_previews_and_saves_pem_and_der_files(otto, frontend_app, leaf, name, content, fmt, key_text):
    shown = preview(otto, frontend_app, file=(name, content(leaf)))
    assert format_fingerprint(leaf.fingerprint) in text_of(shown)
    assert key_text in text_of(shown)
    assert nothing_saved()

    confirm(otto, shown)

    cert = Certificate.objects.get()
    assert (cert.fingerprint, cert.source_format, cert.has_private_key) == (leaf.fingerprint, fmt, False)


def test_it_reads_a_pasted_service_key_and_shows_what_it_says(otto, frontend_app, leaf):
    key = certs.service_key(leaf, clientid=CLIENT_ID, url=TENANT, with_key=True).decode()

    shown = preview(otto, frontend_app, text=key, store_key=True)

    page = text_of(shown)
    assert "Format: service-key" in page
    assert CLIENT_ID in page and TENANT in page
    assert "It will be stored encrypted" in page
    assert secrets_in(page, leaf) == []
    confirm(otto, shown)
    cert = Certificate.objects.get()
    assert (cert.fingerprint, cert.source_format, cert.has_private_key) == (
        leaf.fingerprint,
        "service-key",
        True,
    )


def test_cancel_stores_nothing_and_forgets_the_upload(otto, frontend_app, leaf):
    shown = preview(otto, frontend_app, file=("client.pem", leaf.pem))

    response = confirm(otto, shown, step="cancel")

    assert response["Location"] == reverse("application", args=["frontend"])  # back where it came from
    assert "nothing was stored" in text_of(otto.get(response["Location"]))
    assert "certmgr_pending_upload" not in "".join(session_contents())
    assert confirm(otto, shown).status_code == 302
    assert nothing_saved()


def test_the_token_is_single_use(otto, frontend_app, leaf):
    shown = preview(otto, frontend_app, file=("client.pem", leaf.pem))
    confirm(otto, shown)

    again = confirm(otto, shown)

    assert again["Location"] == reverse("upload")
    assert "expired or was already saved" in text_of(otto.get(again["Location"]))
    assert Certificate.objects.count() == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CERTIFICATE_ADDED).count() == 1


def test_a_forged_token_saves_nothing(otto, frontend_app, leaf):
    preview(otto, frontend_app, file=("client.pem", leaf.pem))

    response = otto.post(reverse("upload"), {"step": "confirm", "token": "guessed"})

    assert response["Location"] == reverse("upload")
    assert nothing_saved()


# --- the private key: kept only when asked, never shown ---------------------------------------


@pytest.mark.parametrize("store_key", [False, True], ids=["unchecked", "checked"])
def test_the_key_is_stored_only_when_asked(otto, frontend_app, leaf, store_key):
    shown = preview(
        otto,
        frontend_app,
        file=("client.p12", certs.p12(leaf, P12_PASSWORD.encode())),
        password=P12_PASSWORD,
        store_key=store_key,
    )
    assert ("will be stored encrypted" in text_of(shown)) is store_key
    assert ("will be discarded" in text_of(shown)) is not store_key

    confirm(otto, shown)

    cert = Certificate.objects.get()
    assert cert.has_private_key is store_key
    assert (
        AuditEvent.objects.filter(certificate=cert, action=AuditEvent.Action.KEY_STORED).exists() is store_key
    )


def with_key(kind: str, leaf: certs.Issued) -> dict:
    """Uploads that carry the private key, protected by P12_PASSWORD where the format allows."""
    if kind == "p12-file":
        return {"file": ("client.p12", certs.p12(leaf, P12_PASSWORD.encode())), "password": P12_PASSWORD}
    if kind == "pem-with-encrypted-key-pasted":
        pem = leaf.pem + leaf.key_pem(password=P12_PASSWORD.encode())
        return {"text": pem.decode(), "password": P12_PASSWORD}
    return {"text": certs.service_key(leaf, clientid=CLIENT_ID, url=TENANT, with_key=True).decode()}


@pytest.mark.parametrize("store_key", [False, True], ids=["discarded", "stored"])
@pytest.mark.parametrize("kind", ["p12-file", "pem-with-encrypted-key-pasted", "service-key-pasted"])
def test_neither_password_nor_key_reaches_a_page_or_the_session(otto, frontend_app, leaf, kind, store_key):
    responses = [otto.get(reverse("upload"))]
    responses.append(preview(otto, frontend_app, store_key=store_key, **with_key(kind, leaf)))
    sessions = session_contents()
    responses.append(confirm(otto, responses[-1]))
    responses.append(otto.get(responses[-1]["Location"]))

    assert any("certmgr_pending_upload" in s for s in sessions)
    assert Certificate.objects.get().has_private_key is store_key
    for text in [text_of(r) for r in responses] + sessions:
        assert secrets_in(text, leaf) == []


def test_the_secret_check_would_see_a_key_on_a_page(leaf):
    assert secrets_in(leaf.key_pem().decode(), leaf) != []
    assert secrets_in(html.escape(json.dumps(leaf.key_pem("traditional").decode())), leaf) != []
    assert secrets_in(f"value={P12_PASSWORD}", leaf) == [P12_PASSWORD]


# --- bad input: a message on the page, nothing saved, never a 500 -----------------------------


BAD_INPUT = {
    "wrong-password": (
        {"file": ("c.p12", "P12"), "password": "wrong"},
        "Wrong password for this PKCS#12 file.",
    ),
    "no-password": (
        {"file": ("c.p12", "P12")},
        "This PKCS#12 file is password-protected: enter the password",
    ),
    "truncated-text": ({"text": "TRUNCATED"}, "The PEM block 'CERTIFICATE' is truncated"),
    "truncated-file": ({"file": ("c.pem", "TRUNCATED")}, "The PEM block 'CERTIFICATE' is truncated"),
    "mismatched-key": ({"file": ("c.pem", "MISMATCH")}, "The private key does not match the certificate"),
    "garbage-file": (
        {"file": ("a.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))},
        "This is not a certificate",
    ),
    "garbage-text": ({"text": "hello, this is not a certificate"}, "This is not a certificate"),
    "empty-file": ({"file": ("c.pem", b"")}, "The submitted file is empty."),
    "blank-text": ({"text": "   \n  "}, "The input is empty: choose a file or paste a certificate."),
    "nothing": ({}, "The input is empty: choose a file or paste a certificate."),
    "file-and-text": ({"file": ("c.pem", "PEM"), "text": "PEM"}, "Choose a file or paste text, not both."),
}


@pytest.mark.parametrize(("upload", "message"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_named_on_the_page_and_nothing_is_saved(otto, frontend_app, leaf, upload, message):
    other = certs.issue("someone else", key_slot=7)
    content = {
        "P12": certs.p12(leaf, P12_PASSWORD.encode()),
        "PEM": leaf.pem,
        "TRUNCATED": leaf.pem[:300],
        "MISMATCH": leaf.pem + other.key_pem(),
    }
    if "file" in upload:
        name, data = upload["file"]
        upload = {**upload, "file": (name, content.get(data, data))}
    if "text" in upload:
        upload = {**upload, "text": content.get(upload["text"], upload["text"].encode()).decode()}

    response = preview(otto, frontend_app, **upload)

    assert response.status_code == 200
    assert message in text_of(response)
    assert "token" not in response.context
    assert nothing_saved()
    assert secrets_in(text_of(response), leaf) + secrets_in(text_of(response), other) == []


@pytest.mark.parametrize("as_file", [True, False], ids=["file", "pasted-text"])
def test_input_over_the_size_limit_is_refused_with_both_sizes(otto, frontend_app, leaf, settings, as_file):
    settings.CERTMGR_MAX_UPLOAD_BYTES = 2048
    big = leaf.pem.decode() + "\n" + "x" * 2048

    response = preview(
        otto, frontend_app, **({"file": ("big.pem", big.encode())} if as_file else {"text": big})
    )

    assert response.status_code == 200
    assert re.search(r"The input is 3\.\d KiB; the limit is 2\.0 KiB\.", text_of(response))
    assert nothing_saved()


def test_pasted_text_is_kept_after_an_error_but_the_password_is_not(otto, frontend_app, leaf):
    truncated = leaf.pem.decode()[:300]

    response = preview(otto, frontend_app, text=truncated, password=P12_PASSWORD)

    form_html = html.unescape(
        re.search(r"<textarea[^>]*>(.*?)</textarea>", response.content.decode(), re.S)[1]
    )
    assert form_html.strip() == truncated.strip()
    assert P12_PASSWORD not in text_of(response)


def pasted_with_a_foreign_key(kind: str, leaf: certs.Issued, other: certs.Issued) -> str:
    """Text whose private key does not fit, in the shapes people paste."""
    if kind == "pem":
        return (leaf.pem + other.key_pem("traditional")).decode()
    if kind == "service-key":
        document = json.loads(certs.service_key(leaf, clientid=CLIENT_ID, url=TENANT))
        document["credentials"]["key"] = other.key_pem().decode()
        return json.dumps(document, indent=2)
    if kind == "key-only":
        return other.key_pem().decode()
    if kind == "bare-base64-key":
        return base64.encodebytes(other.key_der()).decode()
    return (leaf.pem + other.key_pem()[:200]).decode()  # a truncated key block


@pytest.mark.parametrize("kind", ["pem", "service-key", "key-only", "bare-base64-key", "truncated-key"])
def test_a_pasted_private_key_is_not_sent_back_after_an_error(otto, frontend_app, leaf, kind):
    other = certs.issue("someone else", key_slot=7)

    response = preview(otto, frontend_app, text=pasted_with_a_foreign_key(kind, leaf, other))

    page = text_of(response)
    assert response.status_code == 200
    assert "The private key was taken out of the text" in page
    assert secrets_in(page, other) == []
    if kind in {"pem", "service-key", "truncated-key"}:
        assert leaf.pem.decode().split("\n")[1] in page.replace("\\n", "\n")  # the certificate is kept
    assert nothing_saved()


# --- who may upload where ---------------------------------------------------------------------


def test_a_viewer_is_offered_no_application(client, viewer, frontend_app):
    client.force_login(viewer)

    response = client.get(reverse("upload"))

    assert response.status_code == 200
    assert "You do not own any application yet" in text_of(response)
    assert "Frontend" not in text_of(response)


def test_a_viewer_cannot_upload_to_frontend(client, viewer, frontend_app, leaf):
    client.force_login(viewer)

    direct = preview(client, frontend_app, file=("client.pem", leaf.pem))
    via_app = preview(
        client,
        frontend_app,
        file=("client.pem", leaf.pem),
        url=reverse("application-upload", args=[frontend_app.slug]),
    )

    assert direct.status_code == 200
    assert "You do not own any application yet" in text_of(direct)
    assert "token" not in direct.context
    assert via_app.status_code == 403  # visible to her, not hers to change
    assert nothing_saved()


def test_a_viewer_owning_another_application_is_offered_only_that_one(
    client, viewer, frontend_app, backend_app, leaf
):
    backend_app.owners.add(viewer)
    client.force_login(viewer)

    suggested = client.get(reverse("search-applications"), {"q": "", "scope": "managed"}).json()
    page = client.get(reverse("upload"))
    response = preview(client, frontend_app, file=("client.pem", leaf.pem))

    assert [app["name"] for app in suggested["applications"]] == ["Backend"]
    assert page.context["form"]["application"].value() == "backend"  # her only one, filled in
    assert f"None of the applications you manage matches “{frontend_app.pk}”" in text_of(response)
    assert nothing_saved()


def test_a_certificate_held_by_another_application_of_the_tenant_is_refused(
    otto, frontend_app, backend_app, leaf, store
):
    store(leaf.pem, backend_app)
    shown = preview(otto, frontend_app, file=("client.pem", leaf.pem))
    assert "already used by application 'Backend' (backend)" in text_of(shown)
    assert "Save certificate" not in text_of(shown)

    response = otto.get(confirm(otto, shown)["Location"])  # a hand-made confirm is refused too

    assert "already used by application 'Backend' (backend)" in text_of(response)
    assert not Certificate.objects.filter(application=frontend_app).exists()
    assert not AuditEvent.objects.filter(application=frontend_app).exists()


def test_a_preview_left_for_more_than_fifteen_minutes_must_be_uploaded_again(
    client, owner, frontend_app, leaf
):
    """The stash holds a sealed key: it does not wait in the session for ever."""
    with time_machine.travel(certs.MID_LIFE, tick=False):
        client.force_login(owner)
        shown = preview(client, frontend_app, text=(leaf.pem + leaf.key_pem()).decode(), store_key=True)
    with time_machine.travel(certs.MID_LIFE + timedelta(minutes=16), tick=False):
        response = client.get(confirm(client, shown)["Location"])

    assert "That upload has expired or was already saved" in text_of(response)
    assert nothing_saved()
