"""Real receivers on 127.0.0.1 for notices: an SMTP server and an HTTPS endpoint that record
what arrives, so tests count notices where a person (or a chat) would see them."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests import certs


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: object  # email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])


class _Collector:
    def __init__(self, receiver: SmtpReceiver):
        self.receiver = receiver

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if address in self.receiver.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.receiver.lock:
            self.receiver.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; ``mails`` in arrival order."""

    def __init__(self):
        self.mails: list[Mail] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


@dataclass
class Delivery:
    path: str
    headers: dict
    body: bytes


@dataclass
class _Script:
    statuses: list[int] = field(default_factory=list)  # answered in order; then 200


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver: HttpsReceiver = self.server.receiver
        with receiver.lock:
            receiver.deliveries.append(Delivery(self.path, dict(self.headers), body))
            status = receiver.script.statuses.pop(0) if receiver.script.statuses else 200
        payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class HttpsReceiver:
    """An HTTPS endpoint on 127.0.0.1 (https://localhost:PORT) with its own CA in ``ca_file``."""

    def __init__(self, directory: Path):
        ca = certs.issue("receiver test CA", ca=True, eku=(), key_slot=21, serial=0x7100)
        server = certs.issue(
            "localhost", issuer=ca, sans=("localhost",), eku=(ExtendedKeyUsageOID.SERVER_AUTH,), key_slot=22
        )
        self.ca_file = directory / "receiver-ca.pem"
        self.ca_file.write_bytes(ca.pem)
        (directory / "receiver.pem").write_bytes(server.key_pem() + server.pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(directory / "receiver.pem")
        self.deliveries: list[Delivery] = []
        self.script = _Script()
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.receiver = self
        self._server.socket = self.context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://localhost:{self._server.server_address[1]}"

    def __enter__(self) -> HttpsReceiver:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
