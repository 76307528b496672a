from django.conf import settings
from django.core.checks import Error, register

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
