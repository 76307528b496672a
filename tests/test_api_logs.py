"""An API token never reaches a log: not the portal's own (through its configured handlers, filters
and JSON formatter), not gunicorn's access log, not the development server's request lines, even
when a caller puts it into a URL by mistake; and only its prefix is named in the audit log."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
from gunicorn.glogging import Logger, SafeAtoms

from certmgr.models import AuditEvent
from portal.logjson import AccessLogRedactor, JsonFormatter
from tests.apiclient import Api, make_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("mid_life")]
GUNICORN_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'  # gunicorn.conf.py's


@pytest.fixture
def portal_logs():
    """Everything the portal's configured log handlers write (the console handler: its filters and
    its JSON formatter, as in production), into one buffer."""
    buffer = io.StringIO()
    handlers = {handler for name in ("", "django") for handler in logging.getLogger(name).handlers}
    streams = {
        handler: handler.setStream(buffer)
        for handler in handlers
        if isinstance(handler, logging.StreamHandler)
    }
    assert streams, "the portal's console handler was not found"
    yield buffer
    for handler, stream in streams.items():
        handler.setStream(stream)


def test_no_call_writes_the_token_into_the_portals_logs(client, owner, frontend_app, leaf, portal_logs):
    token = make_token(owner, write=True)
    secret = token.split("_", 2)[2]
    api = Api(client, token)

    api.get("applications/")
    api.get("nowhere/" + token + "/")  # the token pasted into a path
    api.get("applications/", {"token": token})
    api.post("certificates/", {"application": "frontend", "pem": "not a certificate"})
    Api(client, token[:-1] + ("A" if token[-1] != "A" else "B")).get("applications/")  # a wrong one
    client.get("/api/v1/applications/", headers={"Authorization": f"Bearer {token}x"})

    text = portal_logs.getvalue()
    assert "Not Found: /api/v1/nowhere/" + token[:12] + "_…/" in text
    assert "Unauthorized: /api/v1/applications/" in text
    assert secret not in text and token not in text
    audit = " ".join(AuditEvent.objects.values_list("actor_label", flat=True))
    assert token[:12] in audit and secret not in audit


def gunicorn_line(environ: dict, headers: list[tuple[str, str]]) -> str:
    """The access log line gunicorn writes for a request, through the portal's redactor and JSON."""

    class Response:
        status, sent, headers = "200 OK", 42, []

    class Request:
        pass

    Request.headers = headers
    logger = object.__new__(Logger)  # its atoms only; no logging set up
    atoms = SafeAtoms(Logger.atoms(logger, Response(), Request(), environ, timedelta(milliseconds=3)))
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, GUNICORN_FORMAT, (), None)
    record.args = atoms  # a mapping, as gunicorn passes it
    AccessLogRedactor().filter(record)
    return JsonFormatter().format(record)


def test_gunicorns_access_log_shows_neither_the_header_nor_a_token_in_the_url(owner):
    token = "cmp_1a2b3c4d_" + "S" * 43
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/api/v1/x/{token}/?token={token}",
        "PATH_INFO": f"/api/v1/x/{token}/",
        "QUERY_STRING": f"token={token}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
    }

    line = gunicorn_line(environ, [("AUTHORIZATION", f"Bearer {token}")])

    assert json.loads(line)["message"] == '127.0.0.1 "GET /api/v1/x/cmp_1a2b3c4d_…/ HTTP/1.1" 200 42 3ms "-"'
    assert "S" * 43 not in line


def test_the_development_servers_request_lines_mask_a_token_in_the_url(caplog):
    token = "cmp_1a2b3c4d_" + "S" * 43
    server = logging.getLogger("django.server")
    server.addHandler(caplog.handler)  # it does not propagate to the root logger
    try:
        server.info('"%s" %s %s', f"GET /api/v1/applications/?token={token} HTTP/1.1", 401, 0)
    finally:
        server.removeHandler(caplog.handler)

    assert [r.getMessage() for r in caplog.records] == [
        '"GET /api/v1/applications/?token=cmp_1a2b3c4d_… HTTP/1.1" 401 0'
    ]
