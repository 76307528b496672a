from django.apps import AppConfig


class CertmgrConfig(AppConfig):
    name = "certmgr"
    verbose_name = "Certificate manager"

    def ready(self):
        from . import checks  # noqa: F401  (registers system checks)
