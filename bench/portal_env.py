"""What the benchmarks share: portal settings from the environment, Django set up, migrated; a timer.

The database is a temporary SQLite file unless DATABASE_URL names one: that must be an empty
scratch database (the benchmark stops otherwise).
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

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


def timed(action: Callable[[], object], runs: int) -> float:
    """Median seconds of ``runs`` calls, after one warm-up call."""
    action()
    times = []
    for _ in range(runs):
        start = perf_counter()
        action()
        times.append(perf_counter() - start)
    return statistics.median(times)
