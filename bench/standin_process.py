"""The IAS stand-in in a process of its own, for the benchmarks.

In the benchmark's own process the stand-in's TLS handshakes and token signing share the GIL (and
the cores) with the checker it answers, so a pool of checkers waiting on a slow IAS could not
overlap their waits as they do against a real tenant. Here it runs as a separate process (started
with ``spawn``: no state of the benchmark copied into it), controlled over a pipe: register a
client's certificate, count the token requests it answered.

    with StandInProcess(latency=0.05) as standin:
        standin.register("client-id", cert_pem)
        standin.url, standin.backend_url, standin.ca_pem
        total, answered_200 = standin.token_counts()
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

START_TIMEOUT = 30  # seconds for the child to start the stand-in and report its addresses


def _serve(conn: Connection, host: str, latency: float) -> None:
    from iasstandin import StandIn

    with StandIn(host=host, latency=latency) as standin:
        conn.send((standin.url, standin.backend_url, standin.ca_pem))
        while True:
            command, *args = conn.recv()
            if command == "register":
                standin.register(*args)
                conn.send(None)
            elif command == "count":
                entries = list(standin.token_requests)
                conn.send((len(entries), sum(entry.status == 200 for entry in entries)))
            else:  # "stop"
                conn.send(None)
                return


class StandInProcess:
    """The stand-in (tenant and backend) in its own process on ``host``; every answer ``latency``
    seconds late."""

    def __init__(self, host: str = "127.0.0.1", latency: float = 0.0):
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, host, latency), daemon=True)
        self.url = self.backend_url = ""
        self.ca_pem = b""

    def __enter__(self) -> StandInProcess:
        self._process.start()
        if not self._conn.poll(START_TIMEOUT):
            self._process.kill()
            raise RuntimeError(f"the stand-in process did not start within {START_TIMEOUT} s")
        self.url, self.backend_url, self.ca_pem = self._conn.recv()
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._call("stop")
        except (OSError, EOFError):
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _call(self, *command):
        self._conn.send(command)
        return self._conn.recv()

    def register(self, client_id: str, certificate_pem: bytes) -> None:
        self._call("register", client_id, certificate_pem)

    def token_counts(self) -> tuple[int, int]:
        """Token requests the stand-in has seen since it started, and how many it answered 200."""
        return self._call("count")
