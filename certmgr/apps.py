from django.apps import AppConfig


class CertmgrConfig(AppConfig):
    name = "certmgr"
    verbose_name = "Certificate manager"

    def ready(self):
        from . import accounts, checks  # noqa: F401  (login audit signals; system checks)
