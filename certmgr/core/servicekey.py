"""Read the certificate out of a cf service key, a binding's credentials, VCAP_SERVICES or a
Kubernetes Secret of the SAP BTP service operator (core/k8ssecret.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate

from . import k8ssecret
from .errors import InputError

ATTESTED = (
    "no certificate to manage: attested by the Zero Trust Identity Service (credential-type "
    "X509_ATTESTED), which gives the application its certificate; there is nothing to store or renew here."
)

# VCAP_SERVICES is five levels deep. Python's decoder recurses per level and would raise
# RecursionError near 1,000, so the depth is measured before decoding.
MAX_JSON_DEPTH = 32
# A string, or an unterminated one up to the end: always a match, so the scan stays linear.
_STRING = re.compile(r'"(?:[^"\\]++|\\[\s\S])*+(?:"|\\?\Z)')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]++")


@dataclass(frozen=True)
class Binding:
    """What an identity binding says about the IAS application it belongs to."""

    source: str  # service-key, vcap-services or kubernetes-secret
    certificate: str
    key: str | None = field(default=None, repr=False)
    client_id: str = ""
    tenant_url: str = ""
    domains: tuple[str, ...] = ()
    credential_type: str = ""
    certificate_expires_at: str = ""
    name: str = ""
    app_tid: str = ""  # the tenant's id (formerly zone_uuid)
    certurl: str = ""


def looks_like_json(text: str) -> bool:
    return text.startswith("{") or (text.startswith("Getting key") and "{" in text)


def looks_like_binding(text: str) -> bool:
    """JSON (service key, VCAP_SERVICES, a Secret from kubectl -o json) or a Secret as kubectl's YAML."""
    return looks_like_json(text) or k8ssecret.looks_like_yaml(text)


def extract(text: str) -> Binding:
    document = _load_json(text) if looks_like_json(text) else k8ssecret.load_yaml(text)
    if not isinstance(document, dict):
        raise _not_a_binding()
    if k8ssecret.is_list(document):
        raise InputError(
            InputError.AMBIGUOUS,
            f"This is a list of {len(document['items'])} Kubernetes objects: export the binding's "
            "Secret alone (kubectl get secret NAME -o yaml).",
        )
    if k8ssecret.is_secret(document):
        creds = k8ssecret.credentials(document)
        return _from_credentials(creds, "kubernetes-secret", k8ssecret.secret_name(document))
    if "credentials" in document and isinstance(document["credentials"], dict):
        return _from_credentials(document["credentials"], "service-key", document.get("name", ""))
    if _identity_bindings(document):
        return _from_vcap(document)
    if "certificate" in document or "clientid" in document:
        return _from_credentials(document, "service-key", "")
    raise _not_a_binding()


def _load_json(text: str) -> object:
    if text.startswith("Getting key"):  # `cf service-key` prints a status line first
        text = text[text.index("{") :]
    if json_depth(text) > MAX_JSON_DEPTH:
        raise InputError(
            InputError.TOO_COMPLEX,
            f"The JSON input is nested more than {MAX_JSON_DEPTH} levels deep; a service key is a few.",
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            InputError.CORRUPT,
            f"The input looks like JSON but is not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}).",
        ) from None
    except RecursionError:
        raise InputError(InputError.CORRUPT, "The input nests too deeply to be a binding.") from None


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text``, brackets inside strings not counted."""
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    return max(accumulate(1 if b in "[{" else -1 for b in brackets), default=0)


def check_expiry(binding: Binding, not_after: datetime) -> tuple[str, ...]:
    if not binding.certificate_expires_at:
        return ()
    try:
        stated = datetime.fromisoformat(binding.certificate_expires_at.replace("Z", "+00:00"))
    except ValueError:
        return (f"certificate_expires_at '{binding.certificate_expires_at}' is not ISO 8601.",)
    if stated.tzinfo is None or abs(stated - not_after) > timedelta(seconds=1):
        return (
            f"The binding says the certificate expires at {binding.certificate_expires_at}, "
            f"but the certificate itself says {not_after.isoformat()}.",
        )
    return ()


def _identity_bindings(document: dict) -> list[dict]:
    found = []
    for entries in document.values():
        if isinstance(entries, list):
            found += [e for e in entries if isinstance(e, dict) and e.get("label") == "identity"]
    return found


def _from_vcap(document: dict) -> Binding:
    bindings = _identity_bindings(document)
    with_cert = [b for b in bindings if isinstance(b.get("credentials"), dict)]
    with_cert = [b for b in with_cert if b["credentials"].get("certificate")]
    if not with_cert and any(_attested(b.get("credentials")) for b in bindings):
        raise InputError(InputError.ATTESTED_BINDING, f"VCAP_SERVICES: {ATTESTED}")
    if not with_cert:
        raise InputError(
            InputError.NO_CERTIFICATE_IN_BINDING,
            "VCAP_SERVICES holds no identity binding with a certificate "
            "(credential-type X509_GENERATED or X509_PROVIDED).",
        )
    if len({str(b["credentials"]["certificate"]) for b in with_cert}) > 1:
        names = ", ".join(f"'{b.get('name', '?')}'" for b in with_cert)
        raise InputError(
            InputError.AMBIGUOUS,
            f"VCAP_SERVICES holds {len(with_cert)} identity bindings with certificates "
            f"({names}); import the service key of one of them.",
        )
    chosen = with_cert[0]
    return _from_credentials(chosen["credentials"], "vcap-services", chosen.get("name", ""))


def _attested(creds: object) -> bool:
    return isinstance(creds, dict) and str(creds.get("credential-type", "")).upper() == "X509_ATTESTED"


def _from_credentials(creds: dict, source: str, name: str) -> Binding:
    if _attested(creds):
        raise InputError(InputError.ATTESTED_BINDING, f"This binding has {ATTESTED}")
    certificate = creds.get("certificate")
    if not certificate:
        kind = creds.get("credential-type") or ("SECRET" if "clientsecret" in creds else "")
        detail = f" (credential-type {kind})" if kind else ""
        raise InputError(
            InputError.NO_CERTIFICATE_IN_BINDING,
            f"This service key holds no certificate{detail}. Only X509_GENERATED and "
            "X509_PROVIDED bindings carry one.",
        )
    if not isinstance(certificate, str):
        raise _not_a_binding()
    domains = creds.get("domains") or ([creds["domain"]] if creds.get("domain") else [])
    if not isinstance(domains, list):
        domains = []
    client_id, url = str(creds.get("clientid", "")), str(creds.get("url", "")).rstrip("/")
    certurl = str(creds.get("certurl", "")).rstrip("/")
    app_tid = str(creds.get("app_tid") or creds.get("zone_uuid") or "")
    if max(len(client_id), len(app_tid)) > 200 or not all(_https_url(u) for u in (url, certurl) if u):
        raise InputError(
            InputError.CORRUPT,
            "The service key's 'clientid', 'app_tid', 'url' or 'certurl' is not usable: 'url' and 'certurl' "
            "must be an https URL, all at most 200 characters.",
        )
    return Binding(
        source=source,
        certificate=certificate,
        key=creds.get("key") if isinstance(creds.get("key"), str) else None,
        client_id=client_id,
        tenant_url=url,
        domains=tuple(d for d in domains if isinstance(d, str) and len(d) <= 253),
        credential_type=str(creds.get("credential-type", "")),
        certificate_expires_at=str(creds.get("certificate_expires_at", "")),
        name=str(name),
        app_tid=app_tid,
        certurl=certurl,
    )


def _https_url(url: str) -> bool:
    return len(url) <= 200 and url.startswith("https://")


def _not_a_binding() -> InputError:
    return InputError(
        InputError.NOT_A_CERTIFICATE,
        "This is not a service key: expected an object with 'certificate' (and usually "
        "'clientid', 'url', 'domains'), a binding with 'credentials', VCAP_SERVICES, or a "
        "Kubernetes Secret of the SAP BTP service operator.",
    )
