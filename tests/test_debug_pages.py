"""With DEBUG on (``./dev run``), a crash while parsing an upload shows Django's debug page: it must
not show the pasted private key, the PKCS#12 bytes or the file's password in any frame's locals."""

from __future__ import annotations

import base64

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from certmgr.core import parse
from tests import certs
from tests.test_upload_flow import P12_PASSWORD, secrets_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def crashing_parser(monkeypatch):
    """A parser bug deep inside the parsing of the upload, after the input reached it."""
    original = parse.parse_certificate_input

    def crash(data, password=None, *args, **kwargs):
        outer_text, outer_password = data, password  # locals of the crashing frame  # noqa: F841
        return original(data, password, *args, **kwargs) and 1 / 0

    monkeypatch.setattr("certmgr.inventory.importer.parse_certificate_input", crash)


@pytest.fixture
def debug_client(settings, owner, frontend_app):
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    with time_machine.travel(certs.MID_LIFE, tick=False):
        client.force_login(owner)
        yield client


def upload(client, app, **data):
    return client.post(reverse("upload"), {"step": "preview", "application": app.pk, **data})


def test_a_parser_crash_on_a_pasted_key_shows_no_key_on_the_debug_page(
    debug_client, frontend_app, leaf, crashing_parser
):
    with time_machine.travel(certs.MID_LIFE, tick=False):
        response = upload(debug_client, frontend_app, text=(leaf.key_pem() + leaf.pem).decode(), password="")

    page = response.content.decode()
    assert response.status_code == 500 and "ZeroDivisionError" in page  # Django's debug page, shown
    assert "outer_text" in page and "********************" in page  # the locals are there, hidden
    assert secrets_in(page, leaf) == []


def test_a_parser_crash_on_a_pkcs12_shows_neither_its_bytes_nor_its_password(
    debug_client, frontend_app, leaf, crashing_parser
):
    p12 = certs.p12(leaf, P12_PASSWORD.encode())
    upload_file = SimpleUploadedFile("client.p12", p12, content_type="application/x-pkcs12")

    with time_machine.travel(certs.MID_LIFE, tick=False):
        response = upload(debug_client, frontend_app, file=upload_file, password=P12_PASSWORD)

    page = response.content.decode()
    assert response.status_code == 500 and "ZeroDivisionError" in page
    assert secrets_in(page, leaf) == []
    assert base64.b64encode(p12)[100:160].decode() not in page
    assert repr(p12[100:140])[2:-1] not in page  # nor as a bytes repr
