from django.apps import AppConfig


class CertmgrConfig(AppConfig):
    name = "certmgr"
    verbose_name = "Certificate manager"

    def ready(self):
        from . import checks  # noqa: F401  (system checks)
        from .access import local_login  # noqa: F401  (login audit signals)
