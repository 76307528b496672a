import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register

from .core import iastrust, preflight
from .core.keyvault import KeyVault, VaultError


@register()
def encryption_keys(app_configs, **kwargs):
    try:
        KeyVault(settings.CERTMGR_ENCRYPTION_KEYS)
    except VaultError as exc:
        return [
            Error(
                str(exc),
                hint='Generate a key with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="certmgr.E001",
            )
        ]
    return []


@register()
def upload_limit(app_configs, **kwargs):
    if settings.CERTMGR_MAX_UPLOAD_BYTES < 16 * 1024:
        return [
            Error(
                f"CERTMGR_MAX_UPLOAD_BYTES={settings.CERTMGR_MAX_UPLOAD_BYTES} is too small for a certificate chain.",
                hint="Use at least 16384 (the default is 1048576).",
                id="certmgr.E002",
            )
        ]
    return []


# A host name, an IP address, or *.domain; no scheme, no port.
_HOST_PATTERN = re.compile(r"(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[?[0-9A-Fa-f:]+\]?")


@register()
def ca_bundle(app_configs, **kwargs):
    path = settings.CERTMGR_CA_BUNDLE
    if not path:
        return []
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror})"
    else:
        problem = "" if b"-----BEGIN CERTIFICATE-----" in text else "holds no PEM certificate"
    if not problem:
        return []
    return [
        Error(
            f"CERTMGR_CA_BUNDLE={path} {problem}.",
            hint="Point it at a PEM file of the CA certificates to trust for tenant and backend TLS, or unset it.",
            id="certmgr.E003",
        )
    ]


@register()
def tenant_hosts(app_configs, **kwargs):
    bad = [host for host in settings.CERTMGR_TENANT_HOSTS if not _HOST_PATTERN.fullmatch(host)]
    if not bad:
        return []
    return [
        Error(
            f"CERTMGR_TENANT_HOSTS has entries that are not host names or *.domain patterns: {', '.join(bad)}.",
            hint="Use a comma-separated list such as mytenant.example.com,*.ias.example.com (no scheme, no port).",
            id="certmgr.E004",
        )
    ]


@register()
def ias_trusted_cas(app_configs, **kwargs):
    path = settings.CERTMGR_IAS_TRUSTED_CAS
    if not path:
        return []
    try:
        with open(path, "rb") as handle:
            iastrust.load_trusted_cas(handle.read())
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror})"
    except ValueError as exc:
        problem = str(exc)
    else:
        return []
    return [
        Error(
            f"CERTMGR_IAS_TRUSTED_CAS={path} {problem}.",
            hint="Point it at a PEM file of the CA certificates added to the IAS tenant's trust "
            "(by an SAP incident, component BC-IAM-IDS), or unset it: IAS's default CAs are known by name.",
            id="certmgr.E005",
        )
    ]


@register()
def preflight_switches(app_configs, **kwargs):
    unknown = preflight.unknown_switches(settings.CERTMGR_PREFLIGHT_DISABLE)
    if not unknown:
        return []
    return [
        Error(
            f"CERTMGR_PREFLIGHT_DISABLE names unknown pre-flight rules: {', '.join(unknown)}.",
            hint=f"Use a comma-separated list of {', '.join(preflight.SWITCHES)} (the rules SAP does not document).",
            id="certmgr.E006",
        )
    ]


_CF_SETTINGS = (
    "CERTMGR_CF_USERNAME",
    "CERTMGR_CF_PASSWORD",
    "CERTMGR_CF_CLIENT_ID",
    "CERTMGR_CF_CLIENT_SECRET",
    "CERTMGR_CF_ORGS",
    "CERTMGR_CF_SPACES",
    "CERTMGR_CF_HOSTS",
)


@register()
def cloud_foundry(app_configs, **kwargs):
    """The landscape's connection: an https API, one way of logging in, a sane interval."""
    api = settings.CERTMGR_CF_API
    if not api:
        stray = [name for name in _CF_SETTINGS if getattr(settings, name)]
        if not stray:
            return []
        return [
            Warning(
                f"{', '.join(stray)} set, but CERTMGR_CF_API is not: the landscape is not read.",
                hint="Set CERTMGR_CF_API to the Cloud Foundry API, e.g. https://api.cf.eu10.hana.ondemand.com.",
                id="certmgr.W030",
            )
        ]
    return _cf_api(api) + _cf_login() + _cf_schedule()


def _cf_api(api: str) -> list[Error]:
    parts = urlsplit(api)
    if parts.scheme == "https" and parts.hostname and parts.path in ("", "/") and not parts.query:
        return []
    return [
        Error(
            f"CERTMGR_CF_API={api} is not the https address of a Cloud Foundry API.",
            hint="Use the URL `cf api` shows, e.g. https://api.cf.eu10.hana.ondemand.com (https, no path).",
            id="certmgr.E031",
        )
    ]


def _cf_login() -> list[Error]:
    user = (settings.CERTMGR_CF_USERNAME, settings.CERTMGR_CF_PASSWORD)
    client = (settings.CERTMGR_CF_CLIENT_ID, settings.CERTMGR_CF_CLIENT_SECRET)
    if any(user) and any(client):
        problem = (
            "both a user (CERTMGR_CF_USERNAME/PASSWORD) and a client (CERTMGR_CF_CLIENT_ID/SECRET) are set"
        )
    elif any(user) and not all(user):
        problem = "CERTMGR_CF_USERNAME and CERTMGR_CF_PASSWORD go together"
    elif any(client) and not all(client):
        problem = "CERTMGR_CF_CLIENT_ID and CERTMGR_CF_CLIENT_SECRET go together"
    elif not any(user) and not any(client):
        problem = "no credentials are set"
    else:
        return []
    return [
        Error(
            f"The Cloud Foundry login is unclear: {problem}.",
            hint="Set either a technical user (CERTMGR_CF_USERNAME + CERTMGR_CF_PASSWORD, password grant "
            "like the cf CLI) or a UAA client (CERTMGR_CF_CLIENT_ID + CERTMGR_CF_CLIENT_SECRET).",
            id="certmgr.E032",
        )
    ]


def _cf_schedule() -> list[Error]:
    errors = []
    if not 5 <= settings.CERTMGR_CF_SYNC_MINUTES <= 7 * 24 * 60:
        errors.append(
            Error(
                f"CERTMGR_CF_SYNC_MINUTES={settings.CERTMGR_CF_SYNC_MINUTES} is outside 5 to 10080 minutes.",
                hint="The default, 60, reads the landscape once an hour.",
                id="certmgr.E033",
            )
        )
    bad = [host for host in settings.CERTMGR_CF_HOSTS if not _HOST_PATTERN.fullmatch(host)]
    if bad:
        errors.append(
            Error(
                f"CERTMGR_CF_HOSTS has entries that are not host names or *.domain patterns: {', '.join(bad)}.",
                hint="List login servers that are not siblings of the API host, e.g. login.example.com (no scheme, no port).",
                id="certmgr.E034",
            )
        )
    return errors
