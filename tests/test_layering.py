"""The house rules of the layout, read from the code's own imports (an AST walk, no import runs).

- ``certmgr/core/`` is Django-free: it imports neither Django nor anything of certmgr outside core;
- ``iasstandin/`` checks the portal, so it shares nothing with it: no certmgr, no portal, and not
  the libraries the portal validates tokens and calls IAS with (jwt, requests, urllib3);
- no view sends through a notification channel: a notice goes through the ledger;
- models import no web helpers (views, forms, lib/, request/response machinery).

A failure names the file, the line and the rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

WEB_HELPERS = ("django.http", "django.shortcuts", "django.contrib.messages", "django.views", "certmgr.lib")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in ``path``, relative ones made absolute; ``from a import b``
    yields both ``a`` and ``a.b`` (b may be a module)."""
    package = _module_name(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _is_view(rel: str) -> bool:
    """views.py, or a module of a views/ package (the API's: one module per resource)."""
    return rel.startswith("certmgr/") and (Path(rel).name == "views.py" or "/views/" in rel)


def _is_models(rel: str) -> bool:
    return rel.startswith("certmgr/") and Path(rel).name == "models.py"


def violations(root: Path) -> list[str]:
    found = {}
    for path in sorted(root.glob("certmgr/**/*.py")) + sorted(root.glob("iasstandin/**/*.py")):
        rel = path.relative_to(root).as_posix()
        for line, module in imports(root, path):
            rule = _broken_rule(rel, module)
            if rule:  # one report per line: ``from a import b`` is checked as a and as a.b
                found.setdefault((rel, line), f"{rel}:{line}: imports {module}: {rule}")
    return [found[key] for key in sorted(found)]


def _broken_rule(rel: str, module: str) -> str:
    if rel.startswith("certmgr/core/"):
        if _under(module, "django"):
            return "certmgr/core is Django-free"
        if _under(module, "certmgr") and not _under(module, "certmgr.core"):
            return "certmgr/core imports nothing of certmgr outside core"
    if rel.startswith("iasstandin/") and _under(module, "certmgr", "portal", "jwt", "requests", "urllib3"):
        return "the stand-in shares no code with what it checks"
    if _is_view(rel) and _under(module, "certmgr.notifications.channels"):
        return "views do not send through channels; notices go through the ledger"
    if _is_models(rel) and (
        _under(module, *WEB_HELPERS) or module.endswith((".views", ".forms")) or ".views." in module
    ):
        return "models import no web helpers"
    return ""


def test_the_code_keeps_the_layering_rules():
    assert violations(ROOT) == []


# --- the test of the test: each rule catches a forbidden import, with file and line --------------

BREACHES = {
    "certmgr/core/leaky.py": ("from django.conf import settings\n", "certmgr/core is Django-free"),
    "certmgr/core/upward.py": (
        "import json\nfrom ..models import Certificate\n",
        "certmgr/core imports nothing of certmgr outside core",
    ),
    "iasstandin/cheat.py": (
        "from certmgr.core.tokenflow import thumbprint\n",
        "the stand-in shares no code with what it checks",
    ),
    "iasstandin/borrowed.py": ("import jwt\n", "the stand-in shares no code with what it checks"),
    "certmgr/inventory/views.py": (
        "from ..notifications import channels\n",
        "views do not send through channels; notices go through the ledger",
    ),
    "certmgr/api/views/bindings.py": (
        "from ...notifications.channels import channel_for\n",
        "views do not send through channels; notices go through the ledger",
    ),
    "certmgr/healthcheck/models.py": ("from ..lib.viewkit import param\n", "models import no web helpers"),
    "certmgr/access/models.py": ("from django.http import HttpResponse\n", "models import no web helpers"),
}


@pytest.mark.parametrize("rel", sorted(BREACHES))
def test_a_forbidden_import_is_reported_with_file_line_and_rule(tmp_path, rel):
    source, rule = BREACHES[rel]
    for package in ("certmgr", "certmgr/core", "iasstandin", Path(rel).parent.as_posix()):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    (tmp_path / rel).write_text(source)

    [reported] = violations(tmp_path)

    line = source.count("\n")
    assert reported.startswith(f"{rel}:{line}: imports ")
    assert reported.endswith(rule)


def test_allowed_imports_are_not_reported(tmp_path):
    files = {
        "certmgr/core/parse.py": "from cryptography import x509\nfrom .errors import InputError\n",
        "certmgr/notifications/views.py": "from . import ledger\nfrom .models import Notice\n",
        "certmgr/inventory/models.py": "from django.db import models\nfrom ..core.expiry import days_left\n",
        "iasstandin/app.py": "from OpenSSL import SSL\nfrom .jwt import sign\n",
    }
    for rel, source in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(source)

    assert violations(tmp_path) == []
