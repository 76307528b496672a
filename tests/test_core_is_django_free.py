"""certmgr.core runs without Django: a batch job or a CLI can parse certificates with it alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Every module of certmgr.core, found on disk, so a new one is covered without editing this test.
_IMPORT_CORE = """
import importlib, pkgutil, sys
import certmgr.core
names = [m.name for m in pkgutil.iter_modules(certmgr.core.__path__, "certmgr.core.")]
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
assert {"certmgr.core.parse", "certmgr.core.tokenflow", "certmgr.core.outbound"} <= set(names), names
assert "django" not in sys.modules, loaded
print("ok")
"""


def test_it_imports_the_core_without_django():
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_CORE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
