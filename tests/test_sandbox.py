"""The README's run command, minus the web server: `manage.py sandbox` starts the local IAS
stand-in and registers the demo application's certificate, and its health check is green."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dev_env(tmp_path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CERTMGR_", "DATABASE_URL"))}
    return {
        **clean,
        "DJANGO_DEBUG": "1",
        "CERTMGR_LOCAL_DIR": str(tmp_path / "local"),
        "SQLITE_PATH": str(tmp_path / "dev.sqlite3"),
    }


def manage(env, *args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        **kwargs,
    )


def test_the_sandbox_makes_a_demo_application_whose_health_check_is_green(dev_env, tmp_path):
    assert manage(dev_env, "migrate", "--noinput", "-v0").returncode == 0
    assert manage(dev_env, "ensure_dev_admin").returncode == 0
    ports = [str(free_port()), str(free_port())]
    sandbox = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox", "--port", ports[0], "--backend-port", ports[1]],
        cwd=ROOT,
        env=dev_env,
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
        assert ready.read_text().strip() == f"https://127.0.0.1:{ports[0]}"

        check = manage(dev_env, "healthcheck", "demo", "--json")

        assert check.returncode == 0, check.stdout + check.stderr
        result = json.loads(check.stdout)
        assert result["ok"] is True
        assert [step["ok"] for step in result["steps"]] == [True, True, True, True]
        assert "backend accepted the token" in result["steps"][3]["diagnosis"]

        # The development portal logs people on through the stand-in (its client secret in a 0600 file).
        login_file = tmp_path / "local" / "sandbox" / "login-client.json"
        assert oct(login_file.stat().st_mode & 0o777) == "0o600"
        shown = manage(
            dev_env,
            "shell",
            "-v",
            "0",
            "-c",
            "from django.conf import settings as s; from django.urls import reverse; "
            "print(reverse(s.LOGIN_URL), s.CERTMGR_OIDC['issuer'], s.CERTMGR_OIDC['client_id'], s.CERTMGR_LOCAL_LOGIN)",
        )
        assert shown.stdout.split() == [
            "/oidc/authenticate/",
            f"https://127.0.0.1:{ports[0]}",
            "ias-cert-portal-local",
            "admins",
        ], shown.stderr
    finally:
        sandbox.send_signal(signal.SIGTERM)
        out, err = sandbox.communicate(timeout=30)
    assert sandbox.returncode == 0, err
    assert "Demo application 'demo'" in out
    assert "Log on through the stand-in as alice or victor (admin, viewer)" in out
    assert not ready.exists()  # the marker goes with the stand-in
    assert oct((tmp_path / "local" / "sandbox").stat().st_mode & 0o777) == "0o700"


def test_the_sandbox_refuses_to_run_outside_development(dev_env):
    env = {
        **dev_env,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 50,
        "CERTMGR_ENCRYPTION_KEYS": "a" * 43 + "=",
    }
    result = manage(env, "sandbox")
    assert result.returncode != 0
    assert "for development and demos (DJANGO_DEBUG=1) only" in result.stderr
