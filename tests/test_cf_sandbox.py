"""`./dev run`'s landscape, minus the web server: `manage.py sandbox` also runs a Cloud Foundry
stand-in whose bindings hold the demo certificate and a forgotten X509_GENERATED service key, and
`cf_sync` finds both, the forgotten one red on the demo's page."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_sandbox import free_port

ROOT = Path(__file__).resolve().parent.parent


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )


def test_the_sandbox_world_holds_the_demo_certificate_and_a_forgotten_key(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CERTMGR_", "DATABASE_URL"))}
    env = {
        **clean,
        "DJANGO_DEBUG": "1",
        "CERTMGR_LOCAL_DIR": str(tmp_path / "local"),
        "SQLITE_PATH": str(tmp_path / "dev.sqlite3"),
    }
    assert manage(env, "migrate", "--noinput", "-v0").returncode == 0
    assert manage(env, "ensure_dev_admin").returncode == 0
    ports = [str(free_port()) for _ in range(4)]
    args = ["--port", ports[0], "--backend-port", ports[1], "--cf-port", ports[2], "--uaa-port", ports[3]]
    sandbox = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = tmp_path / "local" / "sandbox" / "ready"
        for _ in range(120):
            if ready.exists() or sandbox.poll() is not None:
                break
            time.sleep(0.25)
        password = (tmp_path / "local" / "admin-password").read_text().strip()
        landscape = {
            **env,
            "CERTMGR_CF_API": f"https://127.0.0.1:{ports[2]}",
            "CERTMGR_CF_USERNAME": "cf-scanner",
            "CERTMGR_CF_PASSWORD": password,
        }

        synced = manage(landscape, "cf_sync", "--json")

        assert synced.returncode == 0, synced.stderr
        lines = [json.loads(line) for line in synced.stdout.splitlines()]
        assert [
            (line["app"] or line["binding"], line["credential_type"], line["application"]) for line in lines
        ] == [
            ("demo-frontend", "X509_PROVIDED", "demo"),
            ("test-key-forgotten", "X509_GENERATED", "demo"),
        ]  # and the xsuaa instance is not there
        shown = manage(
            landscape,
            "shell",
            "-v",
            "0",
            "-c",
            "from certmgr.models import Application; from certmgr.landscape.drift import application_drift; "
            "print(*[s.verdict for s in application_drift(Application.objects.get(slug='demo')).states])",
        )
        assert shown.stdout.split() == ["in_use", "superseded"], shown.stderr
    finally:
        sandbox.send_signal(signal.SIGTERM)
        out, err = sandbox.communicate(timeout=30)
    assert sandbox.returncode == 0, err
    assert f"Cloud Foundry API stand-in: https://127.0.0.1:{ports[2]}" in out
    world = tmp_path / "local" / "sandbox" / "cf-world.json"
    assert oct(world.stat().st_mode & 0o777) == "0o600"  # it holds the forgotten key
