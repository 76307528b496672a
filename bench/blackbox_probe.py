"""Prometheus blackbox_exporter's two-step probe of an IAS tenant, for bench/healthcheck_bench.py (issue 18).

Per application: GET the tenant's OpenID discovery document, then POST a client-credentials form to
the token endpoint with the application's client certificate (mTLS), expecting 200 and an
``access_token``. ``Blackbox`` runs the exporter on 127.0.0.1 with a module per client (it takes
client certificates from its config only) and probes through /probe, one probe at a time.
``blackbox_binary`` is None where the Debian package ``prometheus-blackbox-exporter`` is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import requests
import yaml

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 10.0  # seconds until /-/healthy must answer
STOP_TIMEOUT = 5.0  # seconds between terminate and kill
PROBE_TIMEOUT = 10  # seconds, the modules' timeout
SUCCESS = re.compile(r"^probe_success 1$", re.MULTILINE)
DURATION = re.compile(r"^probe_duration_seconds (\S+)$", re.MULTILINE)
LOG_LINK = re.compile(r"logs\?id=(\d+)")  # the history page lists the newest probe first
# In a probe's log: errors, and a wrong status code (level info); "Probe failed" adds nothing.
REASON = re.compile(r'level=(?:error (msg="(?!Probe failed").*)|info (msg="Invalid.*))$', re.MULTILINE)


def blackbox_binary() -> str | None:
    """The exporter's path, or None if it is not installed."""
    return shutil.which("prometheus-blackbox-exporter")


def _http_module(tls_config: dict[str, str], **http: object) -> dict[str, object]:
    ip = {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": False}
    http = {**http, "valid_status_codes": [200], "tls_config": tls_config, **ip}
    return {"prober": "http", "timeout": f"{PROBE_TIMEOUT}s", "http": http}


class Blackbox:
    """The exporter with a module per client, on a free port of 127.0.0.1, while the context lasts."""

    def __init__(
        self,
        directory: Path,
        tenant_url: str,
        token_endpoint: str,
        ca_file: Path,
        key_file: Path,
        clients: list[tuple[str, Path]],
    ):
        """``clients``: (client id, client certificate PEM file); every certificate is for ``key_file``."""
        self.directory = Path(directory)
        self.discovery_url = tenant_url.rstrip("/") + "/.well-known/openid-configuration"
        self.token_endpoint = token_endpoint
        self.ca_file, self.key_file, self.clients = Path(ca_file), Path(key_file), list(clients)
        self.config_file = self.directory / "blackbox.yml"
        self.log_file = self.directory / "blackbox.log"
        self.probe_seconds = 0.0  # the exporter's probe_duration_seconds, summed over the last pass
        self._process: subprocess.Popen[bytes] | None = None
        self._session: requests.Session | None = None
        self._base = ""

    def config(self) -> dict[str, object]:
        """The exporter's configuration: ``discovery``, and ``token_<index>`` per client."""
        ca = {"ca_file": str(self.ca_file)}
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        modules = {"discovery": _http_module(ca, method="GET")}
        for index, (client_id, cert_file) in enumerate(self.clients):
            tls = {**ca, "cert_file": str(cert_file), "key_file": str(self.key_file)}
            body = urlencode({"grant_type": "client_credentials", "client_id": client_id})
            modules[f"token_{index}"] = _http_module(
                tls, method="POST", headers=form, body=body, fail_if_body_not_matches_regexp=["access_token"]
            )
        return {"modules": modules}

    def __enter__(self) -> Blackbox:
        binary = blackbox_binary()
        if binary is None:
            raise RuntimeError("prometheus-blackbox-exporter is not installed")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False), "utf-8")
        with socket.socket() as sock:  # a free port; the exporter binds it a moment later
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        self._base = f"http://{LOOPBACK}:{port}"
        args = [binary, f"--config.file={self.config_file}", f"--web.listen-address={LOOPBACK}:{port}"]
        # 0.23 ignores proxy variables (only proxy_url counts); dropped all the same.
        env = {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy between us and 127.0.0.1
        try:
            self._wait_healthy()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self._process is not None and self._session is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                if self._session.get(f"{self._base}/-/healthy", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet
            time.sleep(0.05)
        state = "exited" if self._process.poll() is not None else f"not healthy after {START_TIMEOUT:g} s"
        log = self.log_file.read_text("utf-8", errors="replace").strip()
        raise RuntimeError(f"blackbox_exporter {state}; its log:\n{log}")

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._session is not None:
            self._session.close()
            self._session = None

    def _probe(self, module: str, target: str, client_id: str) -> float:
        """One probe through /probe; its probe_duration_seconds, or RuntimeError if it failed."""
        assert self._session is not None, "use Blackbox as a context manager"
        params = {"module": module, "target": target}
        response = self._session.get(f"{self._base}/probe", params=params, timeout=PROBE_TIMEOUT + 5)
        if response.status_code != 200 or not SUCCESS.search(response.text):
            reason = self._failure_reason() or f"/probe answered HTTP {response.status_code}"
            raise RuntimeError(f"blackbox probe {module} of client {client_id} failed: {reason} ({target})")
        duration = DURATION.search(response.text)
        return float(duration.group(1)) if duration else 0.0

    def _failure_reason(self) -> str:
        """Why the exporter's latest probe (the newest on its history page) failed, from its log."""
        assert self._session is not None
        latest = LOG_LINK.search(self._session.get(f"{self._base}/", timeout=5).text)
        if latest is None:
            return ""
        debug = self._session.get(f"{self._base}/logs", params={"id": latest.group(1)}, timeout=5).text
        return "; ".join(error or status for error, status in REASON.findall(debug))

    def probe_all(self) -> float:
        """Discovery, then token, for every client in turn; the wall-clock seconds of the pass."""
        start, total = time.perf_counter(), 0.0
        for index, (client_id, _) in enumerate(self.clients):
            total += self._probe("discovery", self.discovery_url, client_id)
            total += self._probe(f"token_{index}", self.token_endpoint, client_id)
        self.probe_seconds = total
        return time.perf_counter() - start
