"""What both benchmarks need first: portal settings from the environment, Django set up, migrated.

The database is a temporary SQLite file unless DATABASE_URL names one: that must be an empty
scratch database (the benchmark stops otherwise).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cryptography.fernet import Fernet


def set_up_portal(tmp: Path, **extra_env: str) -> None:
    if not os.environ.get("DATABASE_URL"):
        os.environ.pop("VCAP_SERVICES", None)
        os.environ["SQLITE_PATH"] = str(tmp / "bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["DJANGO_SECRET_KEY"] = "bench-" + Fernet.generate_key().decode()
    os.environ["CERTMGR_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    os.environ.update(extra_env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from certmgr.models import Application

    if Application.objects.exists():
        sys.exit("The database already holds applications: give the benchmark an empty scratch database.")
