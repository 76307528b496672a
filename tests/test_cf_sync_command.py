"""`manage.py cf_sync` as an operator or a cron job runs it: a process with production settings.
--json prints the binding lines and nothing else on stdout; a failure is one line on stderr, no
traceback, and an exit code that says which kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from iasstandin.cfapi import World
from tests.cfworld import PASSWORD, world

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def production(tmp_path_factory, cloud_foundry) -> dict[str, str]:
    """Production-like settings (DEBUG off) on a migrated SQLite file, pointed at the stand-in."""
    directory = tmp_path_factory.mktemp("cf-command")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CERTMGR_", "DATABASE_URL"))}
    env = {
        **clean,
        "DJANGO_SECRET_KEY": "x" * 50,
        "CERTMGR_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "localhost",
        "CERTMGR_LOCAL_DIR": str(directory / "local"),
        "SQLITE_PATH": str(directory / "portal.sqlite3"),
        "CERTMGR_CA_BUNDLE": str(cloud_foundry.ca_file),
    }
    migrated = run(env, "migrate", "--noinput", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    return env


@pytest.fixture
def env(production, cloud_foundry):
    cloud_foundry.reset()
    cloud_foundry.world = World.from_dict(world())
    return {
        **production,
        "CERTMGR_CF_API": cloud_foundry.url,
        "CERTMGR_CF_USERNAME": "scanner",
        "CERTMGR_CF_PASSWORD": PASSWORD,
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def assert_one_clean_line(result: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert line.startswith("CommandError: ") and text in line


def test_json_prints_one_object_per_binding_and_nothing_else(env):
    result = run(env, "cf_sync", "--json")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["instance"] for line in lines] == ["frontend-ias", "frontend-ias", "login-ias", "found-ias"]
    assert all(set(line) == set(lines[0]) for line in lines) and len(lines[0]) == 11
    assert run(env, "cf_sync", "--json").stdout == result.stdout  # and the same again


def test_a_bad_password_is_one_line_and_exit_3(env):
    result = run(env | {"CERTMGR_CF_PASSWORD": "not-the-password"}, "cf_sync", "--json")

    assert_one_clean_line(
        result, 3, "refused the credentials (unauthorized): check CERTMGR_CF_USERNAME/PASSWORD."
    )
    assert "not-the-password" not in result.stderr


def test_a_failing_api_is_one_line_and_exit_4(env, cloud_foundry):
    cloud_foundry.faults.api_status = 500

    assert_one_clean_line(
        run(env, "cf_sync", "--json"), 4, "answered 500 (UnknownError) for /v3/service_offerings"
    )


def test_an_unreachable_api_is_one_line_and_exit_4(env):
    result = run(env | {"CERTMGR_CF_API": "https://127.0.0.1:9"}, "cf_sync")

    assert_one_clean_line(result, 4, "Connection to 127.0.0.1:9 refused")


def test_a_refused_login_host_is_one_line_and_exit_5(env, cloud_foundry):
    cloud_foundry.faults.login_url = "https://login.other.example"

    assert_one_clean_line(run(env, "cf_sync", "--json"), 5, "Refused the login server login.other.example")


def test_without_an_api_there_is_nothing_to_read_exit_2(production):
    assert_one_clean_line(run(production, "cf_sync", "--json"), 2, "CERTMGR_CF_API is not set")
