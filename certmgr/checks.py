import re

from django.conf import settings
from django.core.checks import Error, register

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
