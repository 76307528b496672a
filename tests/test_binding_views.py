"""Binding parameters on the certificate page, as downloads and as JSON, twenty days before expiry.

The blocks on the page, in the downloads and in the API are the text bindings.rendered makes,
character for character; the parameters hold the certificate and never a private key, so every
logged-in user (Vera included) may see them.
"""

from __future__ import annotations

import html
import json
import re

import pytest
import time_machine
from django.urls import reverse

from certmgr.bindings import parameters as bindings
from certmgr.core.binding import FORMATS, Target
from tests import certs

NOW = certs.TWENTY_DAYS_BEFORE_EXPIRY
FILENAMES = {
    "json": "params.json",
    "cf": "cf-commands.sh",
    "manifest": "manifest.yml",
    "mta": "mta.yaml",
    "kyma": "servicebinding.yaml",
    "terraform": "binding.tf",
}
API_FIELDS = {"certificate", "fingerprint", "subject", "format", "chain", "parameters", "rendered", "checks"}


@pytest.fixture(autouse=True)
def _twenty_days_before_expiry():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def cert(store, leaf):
    """Otto's self-signed client certificate, stored without a key."""
    return store(leaf.pem)


def page_of(client, cert, query: str = "") -> str:
    response = client.get(reverse("certificate", args=[cert.pk]) + query)
    assert response.status_code == 200
    return response.content.decode()


def blocks(page: str) -> dict[str, str]:
    """format → the text of its <pre><code> block, as the browser reads it."""
    found = re.findall(
        r'<pre class="code" tabindex="0"><code id="code-([a-z]+)">(.*?)</code></pre>', page, re.S
    )
    return {fmt: html.unescape(text) for fmt, text in found}


def checks_listed(page: str) -> list[tuple[str, str, str]]:
    """(rule, level as written, message) of each pre-flight check on the page."""
    rows = re.findall(
        r'<li class="check check-\w+" data-rule="(\w+)"><span class="level[^"]*">([^<]+)</span> '
        r'<span class="check-message">([^<]+)</span>',
        page,
    )
    return [(rule, html.unescape(level), html.unescape(message)) for rule, level, message in rows]


def download_links(page: str) -> dict[str, str]:
    links = re.findall(r'href="(/certificates/\d+/binding\.([a-z]+)[^"]*)"', page)
    return {fmt: html.unescape(href) for href, fmt in links}


def pem_text(*items: certs.Issued) -> str:
    """The ``certificate`` parameter IAS wants for these certificates, in this order."""
    return "\n".join(item.pem.decode("ascii").strip() for item in items)


# --- the panel ---------------------------------------------------------------------------------


def test_the_panel_shows_every_format_exactly_as_rendered(otto, cert, leaf):
    shown = blocks(page_of(otto, cert))

    assert list(shown) == list(FORMATS)
    assert shown == {fmt: bindings.rendered(cert, fmt) for fmt in FORMATS}
    assert json.loads(shown["json"]) == {"credential-type": "X509_PROVIDED", "certificate": pem_text(leaf)}
    assert shown["cf"].startswith("cf create-service-key my-ias-instance my-service-key -c '{")


def test_every_block_is_visible_without_script_and_the_page_has_no_inline_script(otto, cert):
    page = page_of(otto, cert)

    assert re.findall(r'<section class="format"[^>]*>', page) == [
        f'<section class="format" id="format-{fmt}" aria-labelledby="format-{fmt}-title" data-format="{fmt}">'
        for fmt in FORMATS
    ]
    # Only script files: the portal's own on every page, and the panel's.
    assert re.findall(r"<script\b[^>]*>", page) == [
        re.search(r'<script src="/static/certmgr/portal\.[0-9a-f]+\.js" defer>', page)[0],
        re.search(r'<script src="/static/certmgr/binding\.[0-9a-f]+\.js" defer>', page)[0],
    ]
    assert re.search(r"\son[a-z]+=", page) is None  # no inline event handlers
    assert page.count('data-copy="code-') == len(FORMATS)  # a Copy button per block (shown by the script)


def test_the_panel_lists_every_check_with_its_level_in_words(otto, cert):
    listed = checks_listed(page_of(otto, cert))
    words = {"pass": "✓ Pass", "warning": "! Warning", "error": "✕ Error"}

    assert listed == [(c.rule, words[c.level], c.message) for c in bindings.checks(cert, NOW)]
    assert ("expiry", "! Warning", "Expires in 20 days: plan the next rotation now.") in listed
    assert ("self_signed", "! Warning", "Self-signed: IAS must be told to trust it explicitly.") in listed
    assert [level for _, level, _ in listed].count("✓ Pass") == 6


def test_a_weak_key_is_listed_as_an_error_and_counted_in_the_summary(otto, store):
    weak = store(certs.issue("legacy-client", key_kind="rsa1024", serial=0x77).pem)

    page = page_of(otto, weak)

    assert ("key_strength", "✕ Error", "RSA 1024 bits: IAS needs at least 2048.") in checks_listed(page)
    assert '<p class="checks-summary">1 error, 2 warnings, 5 passed.</p>' in page


def test_the_chain_option_puts_the_issuers_after_the_certificate(otto, chained):
    cert, (leaf, inter, root) = chained

    alone, with_chain = page_of(otto, cert), page_of(otto, cert, "?chain=1")

    assert json.loads(blocks(alone)["json"])["certificate"] == pem_text(leaf)
    assert json.loads(blocks(with_chain)["json"])["certificate"] == pem_text(leaf, inter, root)
    assert blocks(with_chain) == {fmt: bindings.rendered(cert, fmt, chain=True) for fmt in FORMATS}
    assert 'id="binding-chain" checked>' in with_chain
    assert 'id="binding-chain">' in alone


def test_a_certificate_without_stored_issuers_says_the_chain_is_itself(otto, cert):
    page = page_of(otto, cert, "?chain=1")

    assert "no issuers stored: the chain is this certificate alone" in page
    assert blocks(page)["json"] == bindings.rendered(cert, "json")


def test_the_names_fill_the_blocks_and_stay_in_the_form(otto, cert):
    page = page_of(otto, cert, "?instance=ias-prod&app=shop-web&key=ci-key")
    shown = blocks(page)

    target = Target(instance="ias-prod", app="shop-web", key_name="ci-key")
    assert shown == {fmt: bindings.rendered(cert, fmt, target=target) for fmt in FORMATS}
    assert shown["cf"].startswith("cf create-service-key ias-prod ci-key -c '")
    assert shown["cf"].splitlines()[1].startswith("cf bind-service shop-web ias-prod -c '")
    assert shown["terraform"].startswith('resource "btp_subaccount_service_binding" "ci-key" {')
    assert 'name="instance" id="binding-instance" value="ias-prod" placeholder="my-ias-instance"' in page
    assert 'name="key" id="binding-key" value="ci-key" placeholder="my-service-key"' in page


def test_empty_names_keep_the_placeholders(otto, cert):
    shown = blocks(page_of(otto, cert, "?instance=&app=%20&key="))

    assert shown == {fmt: bindings.rendered(cert, fmt) for fmt in FORMATS}


def test_names_are_text_not_markup_or_shell(otto, cert):
    page = page_of(otto, cert, "?instance=%3Cscript%3Ealert(1)%3C/script%3E&app=a%27b%3B%20rm%20-rf%20~")
    shown = blocks(page)

    assert "<script>alert(1)" not in page
    target = Target(instance="<script>alert(1)</script>", app="a'b; rm -rf ~")
    assert shown["cf"] == bindings.rendered(cert, "cf", target=target)
    assert "cf bind-service 'a'\"'\"'b; rm -rf ~' '<script>alert(1)</script>' -c" in shown["cf"]


def test_the_download_links_carry_the_options_and_give_the_block_shown(otto, chained):
    cert, _ = chained
    page = page_of(otto, cert, "?chain=1&instance=ias-prod&key=ci-key")

    links = download_links(page)

    assert list(links) == list(FORMATS)
    assert links["kyma"] == f"/certificates/{cert.pk}/binding.kyma?chain=1&instance=ias-prod&key=ci-key"
    for fmt, href in links.items():
        assert otto.get(href).content.decode() == blocks(page)[fmt], fmt


# --- downloads ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_downloads_as_an_attachment_with_its_own_file_name(otto, cert, fmt):
    response = otto.get(reverse("certificate-binding", args=[cert.pk, fmt]))

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{FILENAMES[fmt]}"'
    assert response["Content-Type"].endswith("; charset=utf-8")
    assert response.content.decode() == bindings.rendered(cert, fmt)


def test_a_download_applies_chain_and_names(otto, chained):
    cert, _ = chained
    url = reverse("certificate-binding", args=[cert.pk, "terraform"]) + "?chain=1&key=ci-key&app=shop"

    body = otto.get(url).content.decode()

    assert body == bindings.rendered(
        cert, "terraform", chain=True, target=Target(key_name="ci-key", app="shop")
    )
    assert body.count("-----BEGIN CERTIFICATE-----") == 3


def test_an_unknown_format_or_certificate_is_not_found(otto, cert):
    assert otto.get(f"/certificates/{cert.pk}/binding.xml").status_code == 404
    assert otto.get(f"/certificates/{cert.pk}/binding.").status_code == 404
    assert otto.get(reverse("certificate-binding", args=[cert.pk + 1, "json"])).status_code == 404
    assert otto.post(reverse("certificate-binding", args=[cert.pk, "json"])).status_code == 405


# --- the JSON endpoint -------------------------------------------------------------------------


def api(client, cert_pk: int, query: str = ""):
    return client.get(reverse("api-certificate-binding", args=[cert_pk]) + query)


def test_the_api_gives_parameters_rendered_block_and_checks(otto, chained):
    cert, (leaf, inter, root) = chained

    response = api(otto, cert.pk, "?format=kyma&chain=1&instance=ias-prod&app=shop&key=ci-key")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == API_FIELDS
    assert body["certificate"] == cert.pk
    assert body["fingerprint"] == leaf.fingerprint
    assert body["subject"] == leaf.subject
    assert body["format"] == "kyma"
    assert body["chain"] is True
    assert body["parameters"] == {
        "credential-type": "X509_PROVIDED",
        "certificate": pem_text(leaf, inter, root),
    }
    target = Target(instance="ias-prod", app="shop", key_name="ci-key")
    assert body["rendered"] == bindings.rendered(cert, "kyma", chain=True, target=target)
    assert body["checks"] == [
        {"rule": c.rule, "level": c.level, "message": c.message} for c in bindings.checks(cert, NOW)
    ]


def test_the_api_defaults_to_json_without_the_chain(otto, chained):
    cert, (leaf, _, _) = chained

    body = api(otto, cert.pk).json()

    assert (body["format"], body["chain"]) == ("json", False)
    assert body["parameters"]["certificate"] == pem_text(leaf)
    assert json.loads(body["rendered"]) == body["parameters"]
    assert {
        "rule": "expiry",
        "level": "warning",
        "message": "Expires in 20 days: plan the next rotation now.",
    } in (body["checks"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?format=xml", "Unknown format 'xml': use one of json, cf, manifest, mta, kyma, terraform."),
        ("?format=", "Unknown format '': use one of json, cf, manifest, mta, kyma, terraform."),
        ("?chain=yes", "chain must be 0 (the certificate alone) or 1 (with its issuers)."),
    ],
)
def test_the_api_refuses_a_bad_option_with_a_json_error(otto, cert, query, message):
    response = api(otto, cert.pk, query)

    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_the_api_answers_an_unknown_certificate_with_a_json_404(otto, cert):
    response = api(otto, cert.pk + 1)

    assert response.status_code == 404
    assert response.json() == {"error": f"No certificate with id {cert.pk + 1}."}


def test_the_api_sends_an_anonymous_caller_to_the_login_page(client, cert):
    url = reverse("api-certificate-binding", args=[cert.pk])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


# --- who may see them, and what never appears --------------------------------------------------


def test_vera_who_owns_nothing_sees_the_parameters_too(vera, cert):
    page = page_of(vera, cert)

    assert blocks(page) == {fmt: bindings.rendered(cert, fmt) for fmt in FORMATS}
    assert "Download private key" not in page
    assert vera.get(reverse("certificate-binding", args=[cert.pk, "cf"])).status_code == 200
    assert api(vera, cert.pk, "?format=mta").json()["rendered"] == bindings.rendered(cert, "mta")


def test_no_page_download_or_answer_ever_holds_the_stored_private_key(client, admin_user, store, leaf):
    """Even for Ada, who may download the key, and with the key stored next to the certificate."""
    cert = store(certs.p12(leaf, b"pw"), password="pw", store_keys=True)
    assert cert.has_private_key
    key_line = leaf.key_pem().decode().splitlines()[1]  # the first line of the key's body
    client.force_login(admin_user)

    answers = [page_of(client, cert), page_of(client, cert, "?chain=1")]
    for fmt in FORMATS:
        answers.append(client.get(reverse("certificate-binding", args=[cert.pk, fmt]) + "?chain=1"))
        answers.append(api(client, cert.pk, f"?format={fmt}&chain=1"))
    texts = [a if isinstance(a, str) else a.content.decode() for a in answers]

    assert all("-----BEGIN CERTIFICATE-----" in text for text in texts)
    assert [text for text in texts if "PRIVATE KEY" in text or key_line in text] == []
