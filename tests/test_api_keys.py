"""No key material in any API answer, for the admin who may download keys on the pages included:
every answer is searched for the stored keys in PEM, DER, hex and base64 forms (as the database
dump is in test_keys_at_rest.py), and for the PKCS#12 password that came with one."""

from __future__ import annotations

import base64

import pytest

from certmgr.core.binding import FORMATS
from tests import certs
from tests.apiclient import Api, make_token
from tests.test_keys_at_rest import secrets_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]
P12_PASSWORD = "p12-pass-never-answered"


def leaks(answers: list[bytes], items: dict) -> list[str]:
    found = []
    for kind, item in items.items():
        for name, needle in secrets_of(item).items():
            found += [f"{kind}: {name} in answer {i}" for i, body in enumerate(answers) if needle in body]
    return found + [
        f"password in answer {i}" for i, body in enumerate(answers) if P12_PASSWORD.encode() in body
    ]


def test_no_api_answer_holds_a_stored_key_or_its_password(
    client, admin_user, checked_app, client_cert, store, ias
):
    ec = certs.issue("ec-client (P000042)", key_kind="ec", serial=0x2000)
    staged = certs.issue("frontend-app (P000042)", key_slot=4, serial=0x4343)
    ias.register(checked_app.client_id, staged.pem)
    store(ec.key_pem() + ec.pem, checked_app, store_keys=True)
    api = Api(client, make_token(admin_user, write=True))
    answers = []

    def keep(response):
        assert response.status_code < 400, response.content
        answers.append(response.content)
        return response.json()

    upload = keep(
        api.post(
            "certificates/",
            {
                "application": checked_app.slug,
                "pkcs12": base64.b64encode(certs.p12(staged, P12_PASSWORD.encode())).decode(),
                "password": P12_PASSWORD,
                "staged": True,
                "store_private_key": True,
            },
        )
    )
    new = upload["certificate"]["id"]
    keep(api.post(f"applications/{checked_app.slug}/health-checks/", {"certificate": str(new)}))
    keep(api.post(f"applications/{checked_app.slug}/health-checks/"))
    for listed in keep(api.get("certificates/"))["results"]:
        keep(api.get(f"certificates/{listed['id']}/"))
        for fmt in FORMATS:
            keep(api.get(f"certificates/{listed['id']}/parameters/", {"format": fmt, "chain": "true"}))
    for path in (
        "applications/",
        f"applications/{checked_app.slug}/",
        f"applications/{checked_app.slug}/health-checks/",
        "openapi.json",
    ):
        keep(api.get(path))
    keep(api.post(f"certificates/{new}/promote/"))

    assert all(b"-----BEGIN CERTIFICATE-----" in body for body in answers[:1])
    assert leaks(answers, {"rsa": client_cert, "ec": ec, "staged": staged}) == []
