"""Real receivers on 127.0.0.1 for notices: an SMTP server and an HTTPS endpoint that record
what arrives, so tests count notices where a person (or a chat) would see them.

Both can be told to answer otherwise: the SMTP server refuses the addresses in ``refuse`` (a set,
or a dict of address to reply); the HTTPS endpoint answers its ``script`` in order (whole answers
queued with ``answer()``, then bare ``statuses``), then 200, each after ``delay`` seconds."""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests import certs

LONG_AGO, FAR_AHEAD = datetime(2020, 1, 1, tzinfo=UTC), datetime(2049, 12, 31, tzinfo=UTC)


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
        refuse = self.receiver.refuse
        if address in refuse:
            return refuse[address] if isinstance(refuse, dict) else "550 5.1.1 no such mailbox"
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
        self.refuse: set[str] | dict[str, str] = set()  # a dict gives each address its own reply
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
    headers: Message  # as they arrived; names are case-insensitive
    body: bytes

    def json(self):
        return json.loads(self.body)


Answer = tuple[int, bytes, dict[str, str]]  # status, body, headers


@dataclass
class _Script:
    answers: list[Answer] = field(default_factory=list)  # answered in order first (see answer())
    statuses: list[int] = field(default_factory=list)  # then these, with a JSON body; then 200

    def next(self) -> Answer:
        if self.answers:
            return self.answers.pop(0)
        status = self.statuses.pop(0) if self.statuses else 200
        payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
        return status, payload, {"Content-Type": "application/json"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - http.server's name
        self.do_GET()

    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver: HttpsReceiver = self.server.receiver
        with receiver.lock:
            receiver.deliveries.append(Delivery(self.path, self.headers, body))
            status, payload, headers = receiver.script.next()
        time.sleep(receiver.delay)
        self.send_response(status)
        for name, value in {"Content-Length": str(len(payload)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    """Quiet about a client that gave up and left (a test of timeouts, of an untrusted certificate)."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError):
            super().handle_error(request, client_address)


def server_context(directory: Path, sans: tuple[str, ...] = ("localhost",)) -> ssl.SSLContext:
    """A TLS server context for ``sans``, issued by the receivers' CA (written to receiver-ca.pem)."""
    # TLS checks validity against the real clock, whatever time a test travels to.
    valid = {"key_kind": "ec", "not_before": LONG_AGO, "not_after": FAR_AHEAD}
    ca = certs.issue("receiver test CA", ca=True, eku=(), key_slot=21, serial=0x7100, **valid)
    server = certs.issue(
        sans[0], issuer=ca, sans=sans, eku=(ExtendedKeyUsageOID.SERVER_AUTH,), key_slot=22, **valid
    )
    (directory / "receiver-ca.pem").write_bytes(ca.pem)
    (directory / "receiver.pem").write_bytes(server.key_pem() + server.pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "receiver.pem")
    return context


class HttpsReceiver:
    """An HTTPS endpoint on 127.0.0.1 (https://localhost:PORT) with its own CA in ``ca_file``.

    ``sans``: the names its certificate holds (a test resolver may map them to 127.0.0.1).
    """

    def __init__(self, directory: Path, sans: tuple[str, ...] = ("localhost",)):
        self.context = server_context(directory, sans)
        self.ca_file = directory / "receiver-ca.pem"
        self.deliveries: list[Delivery] = []
        self.script = _Script()
        self.delay = 0.0  # seconds each answer waits
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self._server.socket = self.context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"https://localhost:{self.port}"

    def answer(self, *answers: int | Answer) -> None:
        """Queue answers: a status (with an empty body) or (status, body, headers)."""
        with self.lock:
            for answer in answers:
                self.script.answers.append((answer, b"", {}) if isinstance(answer, int) else answer)

    def __enter__(self) -> HttpsReceiver:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
