"""A small threaded HTTPS/1.1 server on pyOpenSSL that hands each request to a plain callable.

pyOpenSSL rather than Python's ssl module because IAS accepts any client certificate in the
handshake and decides per request (an unregistered certificate gets HTTP 401, not a TLS alert);
Python's ssl module has no verify callback, so it can either demand a trusted chain or not ask.
"""

from __future__ import annotations

import email.message
import http
import io
import json
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from cryptography import x509
from OpenSSL import SSL

log = logging.getLogger("iasstandin")

MAX_BODY = 1 << 20
# An idle keep-alive connection (or a stalled handshake) is dropped after this; the kernel enforces
# it (SO_RCVTIMEO), because a Python socket timeout would make the socket non-blocking underneath
# pyOpenSSL, which then raises WantReadError instead of waiting.
IDLE_SECONDS = 60
_QUIET = (SSL.Error, OSError)  # handshake failures, resets, EOFs and idle timeouts


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: str
    headers: email.message.Message
    body: bytes
    peer_cert: x509.Certificate | None  # the client certificate of the TLS handshake


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode("utf-8")
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})


# An app answers a request; None means: close the connection without any answer.
App = Callable[[Request], Response | None]


def server_context(cert: x509.Certificate, key) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    ctx.check_privatekey()
    # Ask for a client certificate, take whatever comes (or nothing); the routes judge it.
    ctx.set_verify(SSL.VERIFY_PEER, lambda *_: True)
    # OpenSSL refuses to resume sessions of a client-verifying server without a session id context.
    ctx.set_session_id(b"iasstandin")
    return ctx


class _Raw(io.RawIOBase):
    """A readable file over an SSL.Connection, so http.server can parse from it."""

    def __init__(self, conn: SSL.Connection):
        self.conn = conn

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self.conn.recv_into(buffer)
        except (SSL.ZeroReturnError, SSL.SysCallError):
            return 0  # the peer closed (cleanly or not): end of stream either way


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "IAS-stand-in"
    sys_version = ""
    server: TlsServer

    def setup(self) -> None:
        self.connection = self.request
        self.request.set_accept_state()
        self.request.do_handshake()
        # Fixed for the connection's life (no renegotiation), so read it once, not per request.
        self.peer_cert = self.request.get_peer_certificate(as_cryptography=True)
        self.rfile = io.BufferedReader(_Raw(self.request))
        self.wfile = self  # http.server writes its error pages through write()

    def write(self, data: bytes) -> int:
        self.request.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass

    def finish(self) -> None:
        pass  # the server closes the connection

    def log_message(self, format, *args) -> None:  # http.server calls it so; quiet by default
        log.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        request = Request(self.command, path, query, self.headers, body, self.peer_cert)
        response = self.server.answer(request)
        if response is None:
            self.close_connection = True
            self.server.drop(self.request)
            return
        self._send(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.send_error(411, "Send a Content-Length, not a chunked body")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.send_error(400 if length < 0 else 413)
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        try:
            phrase = http.HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Status"
        head = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            f"Content-Length: {len(response.body)}",
        ]
        head += [f"{name}: {value}" for name, value in response.headers.items()]
        if self.close_connection:
            head.append("Connection: close")
        # One write per response: headers and body in one TLS record, no Nagle stall between them.
        self.request.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)


class TlsServer:
    """One listener; a thread accepts, a daemon thread per connection serves keep-alive requests."""

    def __init__(self, address: str, port: int, context: SSL.Context):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self._listener = socket.create_server((address, port), family=family, backlog=128)
        self._listener.setblocking(False)
        self._context = context
        self._app: App | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name=f"iasstandin:{port}", daemon=True)
        self.port = self._listener.getsockname()[1]

    def start(self, app: App) -> None:
        """Serve ``app``; given only now because the app needs the port (it is in the URLs)."""
        self._app = app
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cut open connections (their threads then end on their own), return."""
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread.ident is not None:
            self._thread.join(timeout=1)
        with self._lock:
            for sock in self._open:
                _shutdown(sock)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def answer(self, request: Request) -> Response | None:
        try:
            return self._app(request)
        except Exception:  # noqa: BLE001 - a bug in a route must show up as a 500, not a hung client
            log.exception("iasstandin: error answering %s %s", request.method, request.path)
            return Response.json(500, {"error": "server_error", "error_description": "stand-in bug"})

    def drop(self, conn: SSL.Connection) -> None:
        _shutdown(conn.get_app_data())

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    self._accept()

    def _accept(self) -> None:
        try:
            sock, address = self._listener.accept()
        except OSError:
            return  # e.g. the client gave up before we got to it
        sock.setblocking(True)  # pyOpenSSL needs a blocking socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        idle = struct.pack("ll", IDLE_SECONDS, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, idle)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, idle)
        with self._lock:
            self._open.add(sock)
        threading.Thread(target=self._serve, args=(sock, address), daemon=True).start()

    def _serve(self, sock: socket.socket, address) -> None:
        conn = SSL.Connection(self._context, sock)
        conn.set_app_data(sock)  # for drop(): pyOpenSSL does not hand out its socket
        try:
            _Handler(conn, address, self)
            conn.shutdown()
        except _QUIET:
            pass  # that connection ends; the server goes on
        finally:
            with self._lock:
                self._open.discard(sock)
            sock.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer or by us
