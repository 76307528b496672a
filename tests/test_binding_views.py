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
    "terraform-cf": "binding-cf.tf",
}
API_FIELDS = {
    "certificate",
    "fingerprint",
    "subject",
    "format",
    "chain",
    "cf_target",
    "parameters",
    "rendered",
    "checks",
    "forced",
}
SELF_SIGNED = (
    "Self-signed: IAS refuses it unless it was added to the tenant as a trusted CA through an SAP "
    "incident (component BC-IAM-IDS, with the root and intermediate certificates attached)."
)


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
        r'<pre class="code" tabindex="0"><code id="code-([a-z-]+)">(.*?)</code></pre>', page, re.S
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
    links = re.findall(r'href="(/certificates/\d+/binding\.([a-z-]+)[^"]*)"', page)
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
    assert (
        shown["cf"].splitlines()[-1].startswith("cf create-service-key my-ias-instance my-service-key -c '{")
    )
    assert "cf bind-service" not in shown["cf"]


def test_every_block_is_visible_without_script_and_the_page_has_no_inline_script(otto, cert):
    page = page_of(otto, cert)

    assert re.findall(r'<section class="format"[^>]*>', page) == [
        f'<section class="format" id="format-{fmt}" aria-labelledby="format-{fmt}-title" data-format="{fmt}">'
        for fmt in FORMATS
    ]
    # Only script files: the portal's own on every page, the panel's, the health check's steps.
    assert re.findall(r"<script\b[^>]*>", page) == [
        re.search(r'<script src="/static/certmgr/portal\.[0-9a-f]+\.js" defer>', page)[0],
        re.search(r'<script src="/static/certmgr/binding\.[0-9a-f]+\.js" defer>', page)[0],
        re.search(r'<script src="/static/certmgr/healthcheck\.[0-9a-f]+\.js" defer>', page)[0],
    ]
    assert re.search(r"\son[a-z]+=", page) is None  # no inline event handlers
    assert page.count('data-copy="code-') == len(FORMATS)  # a Copy button per block (shown by the script)


def test_the_panel_lists_every_check_with_its_level_in_words(otto, cert):
    listed = checks_listed(page_of(otto, cert))
    words = {"pass": "✓ Pass", "warning": "! Warning", "error": "✕ Error"}

    assert listed == [(c.rule, words[c.level], c.message) for c in bindings.checks(cert, NOW)]
    assert ("expiry", "! Warning", "Expires in 20 days: plan the next rotation now.") in listed
    assert ("trusted_ca", "! Warning", SELF_SIGNED) in listed
    assert [level for _, level, _ in listed].count("✓ Pass") == 6


def test_a_weak_key_is_listed_as_an_undocumented_warning_and_counted_in_the_summary(otto, store):
    weak = store(certs.issue("legacy-client", key_kind="rsa1024", serial=0x77).pem)

    page = page_of(otto, weak)

    message = "RSA 1024 bits: IAS may refuse keys under 2048 bits (not documented by SAP)."
    assert ("key_strength", "! Warning", message) in checks_listed(page)
    assert '<p class="checks-summary">0 errors, 3 warnings, 5 passed.</p>' in page


def test_a_switched_off_rule_is_not_listed(otto, store, settings):
    weak = store(certs.issue("legacy-client", key_kind="rsa1024", serial=0x77).pem)
    settings.CERTMGR_PREFLIGHT_DISABLE = ["rsa_min"]

    page = page_of(otto, weak)

    assert "key_strength" not in [rule for rule, _, _ in checks_listed(page)]
    assert '<p class="checks-summary">0 errors, 2 warnings, 5 passed.</p>' in page


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
    assert shown["cf"].splitlines()[-1].startswith("cf create-service-key ias-prod ci-key -c '")
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
    assert "cf create-service-key '<script>alert(1)</script>' my-service-key -c" in shown["cf"]
    app = blocks(page_of(otto, cert, "?cf_target=app&app=a%27b%3B%20rm%20-rf%20~"))["cf"]
    assert "cf bind-service 'a'\"'\"'b; rm -rf ~' my-ias-instance -c" in app


def test_the_download_links_carry_the_options_and_give_the_block_shown(otto, chained):
    cert, _ = chained
    page = page_of(otto, cert, "?chain=1&instance=ias-prod&key=ci-key")

    links = download_links(page)

    assert list(links) == list(FORMATS)
    assert links["kyma"] == f"/certificates/{cert.pk}/binding.kyma?chain=1&instance=ias-prod&key=ci-key"
    for fmt, href in links.items():
        assert otto.get(href).content.decode() == blocks(page)[fmt], fmt


# --- a service key or the app's binding: one or the other --------------------------------------------


def test_the_panel_puts_the_certificate_into_a_service_key_by_default(otto, cert):
    page = page_of(otto, cert)
    shown = blocks(page)

    assert 'value="key" id="binding-cf-target-key" checked>' in page
    assert 'value="app" id="binding-cf-target-app">' in page
    assert [line for line in shown["cf"].splitlines() if line.startswith("cf ")] == [
        line
        for line in bindings.rendered(cert, "cf").splitlines()
        if line.startswith("cf create-service-key")
    ]
    assert "service-keys:" in shown["mta"] and "modules:" not in shown["mta"]
    assert 'type             = "key"' in shown["terraform-cf"]


def test_choosing_the_app_switches_every_cloud_foundry_form_and_the_links_keep_it(otto, cert):
    page = page_of(otto, cert, "?cf_target=app&app=shop-web#binding")
    shown = blocks(page)

    target = Target(app="shop-web", cf_target="app")
    assert shown == {fmt: bindings.rendered(cert, fmt, target=target) for fmt in FORMATS}
    assert 'value="app" id="binding-cf-target-app" checked>' in page
    assert [line.split(" -c ")[0] for line in shown["cf"].splitlines() if line.startswith("cf ")] == [
        "cf bind-service shop-web my-ias-instance"
    ]
    assert "modules:" in shown["mta"] and "service-keys" not in shown["mta"]
    assert 'type             = "app"' in shown["terraform-cf"]
    assert shown["kyma"] == bindings.rendered(cert, "kyma")  # not a Cloud Foundry form
    links = download_links(page)
    assert links["cf"] == f"/certificates/{cert.pk}/binding.cf?cf_target=app&app=shop-web"
    assert otto.get(links["cf"]).content.decode() == shown["cf"]


def test_an_unknown_cf_target_on_the_page_keeps_the_service_key(otto, cert):
    assert blocks(page_of(otto, cert, "?cf_target=both")) == blocks(page_of(otto, cert))


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


# --- the JSON endpoint: /api/v1/certificates/<id>/parameters/, and its deprecated old path ---------


def api(client, cert_pk: int, query: str = ""):
    """Through the old path, as its callers do: it redirects to the API's parameters."""
    return client.get(reverse("api-certificate-binding", args=[cert_pk]) + query, follow=True)


def test_the_old_json_path_redirects_to_the_api_with_its_query_and_says_it_is_deprecated(otto, cert):
    response = otto.get(reverse("api-certificate-binding", args=[cert.pk]) + "?format=cf&chain=1")

    assert response.status_code == 301
    new = reverse("api-parameters", args=[cert.pk])
    assert response["Location"] == new + "?format=cf&chain=1"
    assert response["Deprecation"] == "true"
    assert response["Link"] == f'<{new}>; rel="successor-version"'


def test_the_api_gives_parameters_rendered_block_and_checks(otto, chained):
    cert, (leaf, inter, root) = chained

    response = api(otto, cert.pk, "?format=kyma&chain=1&instance=ias-prod&app=shop&key=ci-key")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == API_FIELDS
    assert body["forced"] is False
    assert body["certificate"] == cert.pk
    assert body["fingerprint"] == leaf.fingerprint
    assert body["subject"] == leaf.subject
    assert body["format"] == "kyma"
    assert body["chain"] is True
    assert body["cf_target"] == "key"
    assert body["parameters"] == {
        "credential-type": "X509_PROVIDED",
        "certificate": pem_text(leaf, inter, root),
    }
    target = Target(instance="ias-prod", app="shop", key_name="ci-key")
    assert body["rendered"] == bindings.rendered(cert, "kyma", chain=True, target=target)
    assert body["checks"] == [
        {"rule": c.rule, "level": c.level, "message": c.message} for c in bindings.checks(cert, NOW)
    ]


@pytest.mark.parametrize("cf_target", ["key", "app"])
@pytest.mark.parametrize("fmt", ["cf", "mta", "terraform-cf"])
def test_the_api_renders_every_cloud_foundry_form_for_the_chosen_target(otto, cert, fmt, cf_target):
    body = api(otto, cert.pk, f"?format={fmt}&cf_target={cf_target}").json()

    assert body["cf_target"] == cf_target
    assert body["rendered"] == bindings.rendered(cert, fmt, target=Target(cf_target=cf_target))


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
        (
            "?format=xml",
            "Unknown format 'xml': use one of json, cf, manifest, mta, kyma, terraform, terraform-cf.",
        ),
        ("?format=", "Unknown format '': use one of json, cf, manifest, mta, kyma, terraform, terraform-cf."),
        ("?chain=yes", "Use true or false (or 1 or 0)."),
        ("?cf_target=both", "cf_target must be key (a service key) or app (an app's binding)."),
    ],
)
def test_the_api_refuses_a_bad_option_with_a_problem(otto, cert, query, message):
    response = api(otto, cert.pk, query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    field = query[1:].partition("=")[0]
    assert response.json()["detail"] == f"{field}: {message}"
    assert response.json()["errors"] == {field: [message]}


def test_the_api_answers_an_unknown_certificate_with_a_problem_404(otto, cert):
    response = api(otto, cert.pk + 1)

    assert response.status_code == 404
    assert response.json()["detail"] == f"No certificate with id {cert.pk + 1}."
    assert response.json()["code"] == "not_found"


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
