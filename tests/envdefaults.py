"""Loaded as a plugin (``-p tests.envdefaults``, run pytest as ``python -m pytest``) so it runs
before pytest-django imports the settings. Test-only configuration.

Tests run with DEBUG off, like production, so the settings need a secret key and an
encryption key; each test run gets fresh ones that exist only in this process.
"""

import os

from cryptography.fernet import Fernet

os.environ.setdefault("DJANGO_SECRET_KEY", "test-" + Fernet.generate_key().decode())
os.environ.setdefault("CERTMGR_ENCRYPTION_KEYS", Fernet.generate_key().decode())
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ["DJANGO_DEBUG"] = "0"
# The test client and the browser tests' live server speak plain http: no https redirect, no
# secure-only cookies, no HSTS (production keeps the default, on). Tests of the production
# settings run manage.py or gunicorn in a subprocess without it.
os.environ["DJANGO_SECURE"] = "0"
os.environ.pop("VCAP_APPLICATION", None)
