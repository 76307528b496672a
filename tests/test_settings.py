"""Configuration comes from the environment, and bad configuration stops startup with a hint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from portal import vcap
from tests import certs

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "CERTMGR_", "VCAP_", "DATABASE_URL"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_refuses_to_start_without_an_encryption_key_when_debug_is_off():
    result = _manage("check", DJANGO_SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "CERTMGR_ENCRYPTION_KEYS is not set" in result.stderr
    assert "Fernet.generate_key()" in result.stderr  # the hint says how to make one


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off():
    result = _manage("check", CERTMGR_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_it_reports_a_malformed_encryption_key_as_a_system_check_error_with_a_hint():
    result = _manage("check", DJANGO_SECRET_KEY="x" * 50, CERTMGR_ENCRYPTION_KEYS="not-a-fernet-key")
    assert result.returncode != 0
    assert "certmgr.E001" in result.stderr
    assert "Encryption key #1" in result.stderr
    assert "not-a-fernet-key" not in result.stderr  # the key itself is never echoed


def test_it_creates_development_secrets_once_and_keeps_them(tmp_path):
    env = {"DJANGO_DEBUG": "1", "CERTMGR_LOCAL_DIR": str(tmp_path / "local")}
    assert _manage("check", **env).returncode == 0
    key_file = tmp_path / "local" / "encryption-key"
    first = key_file.read_text()
    Fernet(first.strip())  # a usable Fernet key
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert _manage("check", **env).returncode == 0
    assert key_file.read_text() == first


def test_it_reads_a_postgresql_binding_from_vcap_services(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "VCAP_SERVICES",
        json.dumps(
            {
                "postgresql-db": [
                    {
                        "label": "postgresql-db",
                        "name": "cert-portal-db",
                        "credentials": {
                            "hostname": "pg.internal.example",
                            "port": "5432",
                            "dbname": "portal",
                            "username": "u1",
                            "password": "p1",
                            "sslrootcert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                        },
                    }
                ]
            }
        ),
    )
    config = vcap.postgres_database()
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "pg.internal.example",
        "5432",
        "portal",
        "u1",
    )
    assert config["OPTIONS"]["sslmode"] == "verify-full"
    assert Path(config["OPTIONS"]["sslrootcert"]).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_it_names_the_missing_credential_of_a_broken_postgresql_binding(monkeypatch):
    monkeypatch.setenv(
        "VCAP_SERVICES", json.dumps({"postgresql-db": [{"label": "postgresql-db", "credentials": {}}]})
    )
    with pytest.raises(ImproperlyConfigured, match="lacks the credential 'dbname'"):
        vcap.postgres_database()


def test_it_has_no_database_binding_without_vcap_services(monkeypatch):
    monkeypatch.delenv("VCAP_SERVICES", raising=False)
    assert vcap.postgres_database() is None


def _production(**env: str) -> dict[str, str]:
    return {"DJANGO_SECRET_KEY": "x" * 50, "CERTMGR_ENCRYPTION_KEYS": Fernet.generate_key().decode(), **env}


def test_it_reports_a_ca_bundle_that_cannot_be_read(tmp_path):
    result = _manage("check", **_production(CERTMGR_CA_BUNDLE=str(tmp_path / "missing.pem")))
    assert result.returncode != 0
    assert "certmgr.E003" in result.stderr and "cannot be read" in result.stderr

    (tmp_path / "empty.pem").write_text("no certificate here\n")
    result = _manage("check", **_production(CERTMGR_CA_BUNDLE=str(tmp_path / "empty.pem")))
    assert "certmgr.E003" in result.stderr and "holds no PEM certificate" in result.stderr


def test_it_reports_tenant_hosts_that_are_urls_or_carry_a_port():
    result = _manage(
        "check", **_production(CERTMGR_TENANT_HOSTS="ok.example.com,https://x.example.com,y.example.com:443")
    )
    assert result.returncode != 0
    assert "certmgr.E004" in result.stderr
    assert (
        "https://x.example.com, y.example.com:443" in result.stderr and "ok.example.com," not in result.stderr
    )


def test_tenant_hosts_and_a_readable_ca_bundle_pass_the_checks(tmp_path, standin):
    (tmp_path / "ca.pem").write_bytes(standin.ca_pem)
    result = _manage(
        "check",
        **_production(
            CERTMGR_TENANT_HOSTS="ias.example.com,*.ias.example.org,127.0.0.1,::1",
            CERTMGR_CA_BUNDLE=str(tmp_path / "ca.pem"),
        ),
    )
    assert result.returncode == 0, result.stderr


def test_it_refuses_notice_thresholds_that_are_not_days():
    result = _manage("check", **_production(CERTMGR_NOTICE_THRESHOLDS="30,soon"))
    assert result.returncode != 0
    assert "CERTMGR_NOTICE_THRESHOLDS: 'soon' is not a whole number of days" in result.stderr


def test_it_reports_an_ias_trusted_cas_file_that_is_missing_empty_or_corrupt(tmp_path):
    result = _manage("check", **_production(CERTMGR_IAS_TRUSTED_CAS=str(tmp_path / "missing.pem")))
    assert result.returncode != 0
    assert "certmgr.E005" in result.stderr and "cannot be read" in result.stderr
    assert "SAP incident, component BC-IAM-IDS" in result.stderr  # the hint

    (tmp_path / "empty.pem").write_text("no certificate here\n")
    result = _manage("check", **_production(CERTMGR_IAS_TRUSTED_CAS=str(tmp_path / "empty.pem")))
    assert "certmgr.E005" in result.stderr and "holds no PEM certificate" in result.stderr

    (tmp_path / "corrupt.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    )
    result = _manage("check", **_production(CERTMGR_IAS_TRUSTED_CAS=str(tmp_path / "corrupt.pem")))
    assert "certmgr.E005" in result.stderr and "cannot be decoded" in result.stderr


def test_it_reports_unknown_preflight_switches_with_the_known_ones_as_hint():
    result = _manage("check", **_production(CERTMGR_PREFLIGHT_DISABLE="dn_change,rsa-min,selfsigned"))
    assert result.returncode != 0
    assert "certmgr.E006" in result.stderr
    assert "unknown pre-flight rules: rsa-min, selfsigned." in result.stderr
    assert "dn_change, rsa_min, client_auth" in result.stderr


def test_a_trusted_cas_file_and_known_switches_pass_the_checks(tmp_path):
    root, inter, _ = certs.ca_hierarchy()
    (tmp_path / "cas.pem").write_bytes(root.pem + inter.pem)
    result = _manage(
        "check",
        **_production(
            CERTMGR_IAS_TRUSTED_CAS=str(tmp_path / "cas.pem"),
            CERTMGR_PREFLIGHT_DISABLE="dn_change, rsa_min,client_auth",
        ),
    )
    assert result.returncode == 0, result.stderr


def test_it_refuses_an_outbound_allow_list_entry_that_is_no_host_or_network():
    result = _manage("check", **_production(CERTMGR_OUTBOUND_ALLOW="*.apps.internal,10.0.0.1/8"))
    assert result.returncode != 0
    assert "CERTMGR_OUTBOUND_ALLOW: '10.0.0.1/8' is not a network" in result.stderr

    result = _manage("check", **_production(CERTMGR_OUTBOUND_ALLOW="https://backend.internal"))
    assert "CERTMGR_OUTBOUND_ALLOW: 'https://backend.internal' is not a host name" in result.stderr


def test_an_outbound_allow_list_of_hosts_domains_and_networks_is_taken():
    code = "from django.conf import settings; print(','.join(settings.CERTMGR_OUTBOUND_ALLOW))"
    result = _manage(
        "shell",
        "-c",
        code,
        **_production(CERTMGR_OUTBOUND_ALLOW=" Backend.Internal, *.apps.internal,10.0.0.0/8,"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "backend.internal,*.apps.internal,10.0.0.0/8"
