"""certmgr.core.outbound: the URL policy, failure naming, the key file, the size cap, and what
requests must not do on its own (read the environment, add CAs, follow or read redirects, keep cookies).

Unit tests build exceptions in the shapes requests and urllib3 raise them; nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import tempfile
import threading
import time
from http.client import RemoteDisconnected

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from certmgr.core import outbound
from certmgr.core.outbound import (
    DEFAULT_TENANT_HOSTS,
    HttpPolicy,
    OutboundError,
    check_url,
    describe,
    host_matches,
    is_loopback,
)
from tests import certs

URL = "https://tenant.accounts.ondemand.com/oauth2/token"
POLICY = HttpPolicy(connect_timeout=3, read_timeout=7)


# --- host_matches ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a.accounts.ondemand.com", True),
        ("my-tenant.accounts.ondemand.com", True),
        ("x.y.accounts.ondemand.com", True),
        ("A.Accounts.OnDemand.COM", True),
        ("a.accounts.ondemand.com.", True),
        ("accounts.ondemand.com", False),
        ("accounts.ondemand.com.", False),
        (".accounts.ondemand.com", False),
        ("evilaccounts.ondemand.com", False),
        ("a.accounts.ondemand.com.evil.com", False),
        ("a.accounts.ondemand.co", False),
        ("", False),
    ],
)
def test_host_matches_a_wildcard_only_below_the_domain(host, expected):
    assert host_matches(host, ("*.accounts.ondemand.com",)) is expected


def test_host_matches_patterns_case_insensitively_and_exact_hosts_exactly():
    assert host_matches("a.accounts.cloud.sap", (" *.Accounts.Cloud.SAP ",)) is True
    assert host_matches("127.0.0.1", ("127.0.0.1",)) is True
    assert host_matches("127.0.0.10", ("127.0.0.1",)) is False
    assert host_matches("sub.127.0.0.1", ("127.0.0.1",)) is False
    assert host_matches("Tenant.Example.COM", ("tenant.example.com",)) is True
    assert host_matches("a.accounts.ondemand.com", ()) is False


def test_the_default_allow_list_covers_the_ias_domains_only():
    assert host_matches("t.accounts.ondemand.com", DEFAULT_TENANT_HOSTS)
    assert host_matches("t.accounts.cloud.sap", DEFAULT_TENANT_HOSTS)
    assert host_matches("t.accounts400.ondemand.com", DEFAULT_TENANT_HOSTS)
    assert not host_matches("127.0.0.1", DEFAULT_TENANT_HOSTS)
    assert not host_matches("t.ondemand.com", DEFAULT_TENANT_HOSTS)


# --- is_loopback ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("0.0.0.0", False),  # noqa: S104 - a string under test, nothing binds
        ("::", False),
        ("localhost.evil.com", False),
        ("evil-localhost", False),
        ("", False),
    ],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


# --- check_url ----------------------------------------------------------------------------------


def refused(url: str, policy: HttpPolicy = POLICY, *, tenant: bool = True) -> OutboundError:
    with pytest.raises(OutboundError) as caught:
        check_url(url, policy, tenant=tenant)
    return caught.value


@pytest.mark.parametrize(
    ("url", "tenant", "policy"),
    [
        ("https://t.accounts.ondemand.com/.well-known/openid-configuration", True, POLICY),
        ("HTTPS://T.ACCOUNTS.ONDEMAND.COM/x", True, POLICY),
        ("https://t.accounts.ondemand.com:443/x", True, POLICY),
        ("https://backend.example.com/hello", False, POLICY),  # backends need not be tenants
        ("http://127.0.0.1:8000/hello", False, HttpPolicy(allow_http_loopback=True)),
        ("http://localhost:8000/hello", False, HttpPolicy(allow_http_loopback=True)),
        ("http://[::1]:8000/hello", False, HttpPolicy(allow_http_loopback=True)),
        (
            "http://127.0.0.1:8443/",
            True,
            HttpPolicy(tenant_hosts=("127.0.0.1",), allow_http_loopback=True),
        ),
    ],
)
def test_check_url_lets_through(url, tenant, policy):
    assert check_url(url, policy, tenant=tenant) is None


@pytest.mark.parametrize(
    ("url", "policy", "code", "words"),
    [
        ("http://t.accounts.ondemand.com/x", POLICY, "http_refused", ("plain http", "only https")),
        ("http://127.0.0.1:8000/", POLICY, "http_refused", ("only to this machine", "development")),
        (
            "http://10.0.0.1/",
            HttpPolicy(tenant_hosts=("10.0.0.1",), allow_http_loopback=True),
            "http_refused",
            ("10.0.0.1",),
        ),
        (
            "http://localhost.evil.com/",
            HttpPolicy(tenant_hosts=("*.evil.com",), allow_http_loopback=True),
            "http_refused",
            ("only https",),
        ),
        ("ftp://t.accounts.ondemand.com/x", POLICY, "bad_url", ("ftp", "only https")),
        ("file:///etc/passwd", POLICY, "bad_url", ("not an absolute url",)),
        ("/oauth2/token", POLICY, "bad_url", ("not an absolute url",)),
        ("t.accounts.ondemand.com/oauth2/token", POLICY, "bad_url", ("not an absolute url",)),
        ("", POLICY, "bad_url", ("not an absolute url",)),
        ("https:///path-only", POLICY, "bad_url", ("not an absolute url",)),
        ("https://127.0.0.1/", POLICY, "host_not_allowed", ("127.0.0.1", "CERTMGR_TENANT_HOSTS")),
        ("https://accounts.ondemand.com/", POLICY, "host_not_allowed", ("accounts.ondemand.com",)),
        ("https://t.accounts.ondemand.com@evil.com/", POLICY, "bad_url", ("ambiguous",)),
        ("https://evil.com#@t.accounts.ondemand.com/", POLICY, "host_not_allowed", ("evil.com",)),
        ("https://evil.com?@t.accounts.ondemand.com/", POLICY, "host_not_allowed", ("evil.com",)),
    ],
)
def test_check_url_refuses(url, policy, code, words):
    error = refused(url, policy)

    assert error.code == code
    for word in words:
        assert word.lower() in error.diagnosis.lower(), (word, error.diagnosis)


def test_plain_http_to_loopback_is_refused_unless_allowed():
    assert refused("http://127.0.0.1/", tenant=False).code == "http_refused"
    assert check_url("http://127.0.0.1/", HttpPolicy(allow_http_loopback=True), tenant=False) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com\\@t.accounts.ondemand.com/oauth2/token",
        "https://evil.example.com\\.t.accounts.ondemand.com/oauth2/token",
    ],
)
def test_check_url_refuses_what_urllib3_would_send_elsewhere(url):
    # urlsplit sees an allowed host here; urllib3 (which makes the call) connects to evil.example.com.
    assert refused(url).code in {"bad_url", "host_not_allowed"}


def test_a_disguised_url_opens_no_connection_to_a_host_outside_the_allow_list():
    policy = HttpPolicy(connect_timeout=0.3, read_timeout=0.3)  # 127.0.0.1 is not allowed
    with socket.create_server(("127.0.0.1", 0)) as outsider:
        url = f"https://127.0.0.1:{outsider.getsockname()[1]}\\@t.accounts.ondemand.com/x"
        with pytest.raises(OutboundError):
            outbound.request(outbound.pool(outbound.server_context(policy)), "GET", url, policy, tenant=True)
        outsider.settimeout(0.1)
        try:
            outsider.accept()[0].close()
            reached = True
        except TimeoutError:
            reached = False

    assert reached is False


# --- describe ---------------------------------------------------------------------------------------


def caused(outer: BaseException, inner: BaseException) -> BaseException:
    """``raise outer from inner``."""
    outer.__cause__ = inner
    return outer


def ssl_error(cls=ssl.SSLError, reason: str = "TLSV1_ALERT_UNKNOWN_CA", **attrs) -> ssl.SSLError:
    """An ssl error as the C module makes it: errno, message, and library/reason attributes."""
    error = cls(1, f"[SSL: {reason}] {reason.lower().replace('_', ' ')} (_ssl.c:1006)")
    error.library, error.reason = "SSL", reason
    for name, value in attrs.items():
        setattr(error, name, value)
    return error


def gaierror() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def connect_timeout() -> requests.exceptions.ConnectTimeout:
    """What requests raises when the TCP connection is not made within the connect timeout."""
    timeout = caused(ConnectTimeoutError(None, "timed out (connect timeout=3)"), TimeoutError("timed out"))
    return requests.exceptions.ConnectTimeout(MaxRetryError(None, URL, reason=timeout))


def refused_connection() -> NewConnectionError:
    return caused(
        NewConnectionError(None, "Failed to establish a new connection"), ConnectionRefusedError(111)
    )


def test_describe_names_a_gaierror_anywhere_in_the_chain_dns():
    error = caused(OSError("could not connect"), caused(RuntimeError("wrapped"), gaierror()))

    code, diagnosis = describe(error, URL, POLICY)

    assert code == "dns"
    assert "tenant.accounts.ondemand.com" in diagnosis and "does not resolve" in diagnosis


def test_describe_finds_the_gaierror_in_args_and_reason():
    in_args = ProtocolError("Connection aborted.", gaierror())
    in_reason = MaxRetryError(None, URL, reason=in_args)

    assert describe(in_args, URL, POLICY)[0] == "dns"
    assert describe(in_reason, URL, POLICY)[0] == "dns"


def test_describe_names_urllib3s_name_resolution_error_dns():
    # What urllib3 raises (retries=False): NameResolutionError(...) from gaierror.
    error = caused(NameResolutionError("tenant.accounts.ondemand.com", None, gaierror()), gaierror())

    assert describe(error, URL, POLICY)[0] == "dns"


def test_a_host_that_does_not_resolve_is_dns(monkeypatch):
    # No DNS traffic: the lookup itself is replaced by one that fails like a resolver would.
    real = socket.getaddrinfo

    def lookup(host, *args, **kwargs):
        if host == "tenant.accounts.ondemand.com":
            raise gaierror()
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    policy = HttpPolicy(connect_timeout=0.5, read_timeout=0.5)

    with pytest.raises(OutboundError) as caught:
        outbound.request(outbound.pool(outbound.server_context(policy)), "GET", URL, policy, tenant=True)

    assert caught.value.code == "dns"


def test_describe_names_urllib3s_refused_connection_refused():
    refusal = ConnectionRefusedError(111, "Connection refused")
    error = caused(NewConnectionError(None, "Failed to establish a new connection"), refusal)

    code, diagnosis = describe(error, URL, POLICY)

    assert code == "refused"
    assert "refused" in diagnosis


def test_describe_names_an_unreachable_host_a_connection_failure_not_a_timeout():
    unreachable = OSError(113, "No route to host")
    error = caused(NewConnectionError(None, "Failed to establish a new connection"), unreachable)

    assert describe(error, URL, POLICY)[0] == "connection"


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (connect_timeout(), "timeout", ("Connecting to", "3 s")),
        (
            requests.exceptions.ReadTimeout(
                caused(ReadTimeoutError(None, URL, "Read timed out."), TimeoutError())
            ),
            "timeout",
            ("did not answer within 7 s",),
        ),
        (  # while streaming the body, requests raises a read timeout as a ConnectionError
            requests.exceptions.ConnectionError(
                caused(ReadTimeoutError(None, URL, "Read timed out."), TimeoutError())
            ),
            "timeout",
            ("did not answer within 7 s",),
        ),
        (
            requests.exceptions.ConnectionError(MaxRetryError(None, URL, reason=refused_connection())),
            "refused",
            ("nothing listens",),
        ),
        (
            requests.exceptions.ConnectionError(
                MaxRetryError(
                    None, URL, caused(NewConnectionError(None, "x"), OSError(113, "No route to host"))
                )
            ),
            "connection",
            ("Could not talk to", ": OSError."),
        ),
        (caused(ProtocolError("aborted"), TimeoutError("timed out")), "timeout", ("within 7 s",)),
        (
            ProtocolError("Connection aborted.", RemoteDisconnected("closed without response")),
            "closed",
            ("closed the connection",),
        ),
        (
            ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer")),
            "closed",
            ("closed the connection",),
        ),
        (caused(OSError("x"), BrokenPipeError(32, "broken pipe")), "closed", ("closed",)),
        (ConnectionRefusedError(111, "Connection refused"), "refused", ("nothing listens",)),
        (OSError(113, "No route to host"), "connection", ("Could not talk to", "OSError")),
        (ValueError("something else"), "unexpected_error", ("ValueError",)),
    ],
    ids=lambda value: None,
)
def test_describe_names_transport_failures(error, code, words):
    got, diagnosis = describe(error, URL, POLICY)

    assert got == code, diagnosis
    assert "tenant.accounts.ondemand.com" in diagnosis
    for word in words:
        assert word in diagnosis


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (
            ssl_error(
                ssl.SSLCertVerificationError,
                "CERTIFICATE_VERIFY_FAILED",
                verify_message="unable to get local issuer certificate",
                verify_code=20,
            ),
            "untrusted_server",
            ("not trusted", "unable to get local issuer certificate"),
        ),
        (ssl_error(), "tls_alert", ("alert 'unknown ca'",)),
        (Urllib3SSLError(ssl_error()), "tls_alert", ("alert 'unknown ca'",)),
        (
            requests.exceptions.SSLError(MaxRetryError(None, URL, reason=Urllib3SSLError(ssl_error()))),
            "tls_alert",
            ("alert 'unknown ca'",),
        ),
        (ssl_error(reason="SSLV3_ALERT_HANDSHAKE_FAILURE"), "tls_alert", ("'handshake failure'",)),
        (ssl_error(ssl.SSLEOFError, "UNEXPECTED_EOF_WHILE_READING"), "closed", ("TLS handshake",)),
        (ssl_error(reason="WRONG_VERSION_NUMBER"), "tls", ("wrong version number",)),
    ],
    ids=["untrusted", "alert", "alert-in-urllib3", "alert-in-requests", "handshake-failure", "eof", "tls"],
)
def test_describe_names_tls_failures(error, code, words):
    got, diagnosis = describe(error, URL, POLICY)

    assert got == code, diagnosis
    for word in words:
        assert word in diagnosis


@pytest.mark.parametrize(
    ("reason", "code", "words"),
    [
        ("TLSV1_ALERT_UNKNOWN_CA", "tls_alert", ("alert 'unknown ca'",)),
        ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "tls_alert", ("alert 'certificate required'",)),
        ("UNEXPECTED_EOF_WHILE_READING", "closed", ("during the TLS handshake",)),
        ("WRONG_VERSION_NUMBER", "tls", ("(wrong version number)",)),
        ("", "tls", ("no reason given",)),
    ],
)
def test_tls_failures_are_named_by_their_reason(reason, code, words):
    got, diagnosis = outbound._tls_failure(ssl_error(reason=reason), "tenant:443")

    assert got == code
    for word in words:
        assert word in diagnosis


def test_describe_survives_an_ssl_error_without_a_reason():
    assert describe(ssl.SSLError("made in Python"), URL, POLICY)[0] == "tls"


def test_describe_survives_a_cycle_in_the_chain():
    first, second = OSError("first"), ValueError("second")
    first.__context__, second.__context__ = second, first

    assert describe(first, URL, POLICY)[0] == "connection"


# --- the key file ------------------------------------------------------------------------------------


@pytest.fixture
def no_memfd(monkeypatch, tmp_path):
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_without_memfd_the_key_file_is_0600_in_a_0700_directory_and_removed(no_memfd):
    with outbound._key_file(b"secret bytes") as path:
        assert path.startswith(str(no_memfd) + os.sep)
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
        with open(path, "rb") as key_file:
            assert key_file.read() == b"secret bytes"

    assert not os.path.exists(path)
    assert list(no_memfd.iterdir()) == []


def test_without_memfd_the_key_file_is_removed_when_the_block_fails(no_memfd):
    with pytest.raises(ssl.SSLError), outbound._key_file(b"secret bytes"):
        raise ssl.SSLError("loading failed")

    assert list(no_memfd.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux only")
def test_with_memfd_the_key_file_is_memory_and_closed_afterwards(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    with outbound._key_file(b"secret bytes") as path:
        assert path.startswith("/proc/self/fd/")
        assert os.readlink(path).startswith("/memfd:certmgr-client-key")
        with open(path, "rb") as key_file:
            assert key_file.read() == b"secret bytes"

    try:
        target = os.readlink(path)
    except OSError:
        target = None
    assert target is None or not target.startswith("/memfd:certmgr-client-key")
    assert list(tmp_path.iterdir()) == []


def _key_der(item: certs.Issued) -> bytes:
    return item.key_der()


@pytest.fixture(scope="module")
def client_pair():
    return certs.issue("outbound-check (P000333)", key_slot=33, serial=0x3333)


def test_client_context_loads_the_certificate_and_key(client_pair):
    context = outbound.client_context(HttpPolicy(), client_pair.pem, _key_der(client_pair))

    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True


def test_client_context_refuses_a_key_that_does_not_match(client_pair, no_memfd):
    other = certs.issue("outbound-other (P000334)", key_slot=36, serial=0x3636)

    with pytest.raises(OutboundError) as caught:
        outbound.client_context(HttpPolicy(), client_pair.pem, _key_der(other))

    assert caught.value.code == "bad_key"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__ is True
    assert list(no_memfd.iterdir()) == []


def test_an_unreadable_ca_bundle_is_named(tmp_path):
    with pytest.raises(OutboundError) as caught:
        outbound.server_context(HttpPolicy(ca_bundle=str(tmp_path / "missing.pem")))

    assert caught.value.code == "ca_bundle"
    assert "missing.pem" in caught.value.diagnosis


# --- request() against the stand-in ------------------------------------------------------------------


def stand_in_policy(ias, **changes) -> HttpPolicy:
    values = {"tenant_hosts": ("127.0.0.1",), "ca_bundle": str(ias.ca_file), "connect_timeout": 1}
    return HttpPolicy(**{"read_timeout": 1, **values, **changes})


def get(ias, path: str, policy: HttpPolicy) -> outbound.Response:
    manager = outbound.pool(outbound.server_context(policy))
    return outbound.request(manager, "GET", ias.url + path, policy, tenant=True)


def test_the_size_cap_is_inclusive(ias):
    size = len(get(ias, "/oauth2/certs", stand_in_policy(ias)).body)

    at_cap = get(ias, "/oauth2/certs", stand_in_policy(ias, max_response_bytes=size))
    with pytest.raises(OutboundError) as caught:
        get(ias, "/oauth2/certs", stand_in_policy(ias, max_response_bytes=size - 1))

    assert len(at_cap.body) == size
    assert caught.value.code == "too_large"
    assert f"more than {size - 1:,} bytes" in caught.value.diagnosis


def test_a_redirect_is_reported_with_its_location_and_not_followed(ias):
    ias.faults.redirect = {"/oauth2/certs": "/.well-known/openid-configuration"}

    with pytest.raises(OutboundError) as caught:
        get(ias, "/oauth2/certs", stand_in_policy(ias))

    assert (caught.value.code, caught.value.status) == ("redirect", 302)
    assert "redirecting to /.well-known/openid-configuration: not followed" in caught.value.diagnosis


def test_error_statuses_are_responses_not_errors(ias):
    response = get(ias, "/no-such-path", stand_in_policy(ias))

    assert response.status == 404
    assert b"not_found" in response.body
    assert "body" not in repr(response)  # bodies may hold tokens: not in a repr


def test_an_untrusted_server_is_named_and_a_refused_port_too(ias):
    policy = stand_in_policy(ias, ca_bundle=None)
    with pytest.raises(OutboundError) as untrusted:
        get(ias, "/oauth2/certs", policy)
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(OutboundError) as refused_port:
        outbound.request(
            outbound.pool(outbound.server_context(policy)),
            "GET",
            f"https://127.0.0.1:{port}/",
            policy,
            tenant=True,
        )

    assert untrusted.value.code == "untrusted_server"
    assert "unable to get local issuer certificate" in untrusted.value.diagnosis
    assert refused_port.value.code == "refused"


# --- what requests must not do on its own --------------------------------------------------------


def test_a_request_adds_nothing_to_the_contexts_ca_store(ias):
    # requests would load certifi's bundle (or REQUESTS_CA_BUNDLE) into the context it is given.
    policy = stand_in_policy(ias)
    context = outbound.server_context(policy)
    before = (context.cert_store_stats(), context.get_ca_certs())
    manager = outbound.pool(context)

    for path in ("/.well-known/openid-configuration", "/oauth2/certs"):
        assert outbound.request(manager, "GET", ias.url + path, policy, tenant=True).status == 200

    assert (context.cert_store_stats(), context.get_ca_certs()) == before
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True


@pytest.fixture
def receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.1 whose certificate names backend.example.com and localhost."""
    from tests.receivers import HttpsReceiver

    with HttpsReceiver(tmp_path, sans=("localhost", "backend.example.com")) as running:
        yield running


def receiver_policy(receiver, **changes) -> HttpPolicy:
    values = {"ca_bundle": str(receiver.ca_file), "outbound_allow": ("localhost",), "read_timeout": 2}
    return HttpPolicy(**{"connect_timeout": 2, **values, **changes})


def call(receiver, policy: HttpPolicy, url: str | None = None, *, tenant: bool = False) -> outbound.Response:
    manager = outbound.pool(outbound.server_context(policy))
    return outbound.request(manager, "GET", url or receiver.url + "/hello", policy, tenant=tenant)


def test_proxy_netrc_and_ca_settings_in_the_environment_are_ignored(receiver, monkeypatch, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine localhost login intruder password netrc-secret\n")
    netrc.chmod(0o600)
    with socket.create_server(("127.0.0.1", 0)) as proxy:
        proxy_url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy_url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("NETRC", str(netrc))

        response = call(receiver, receiver_policy(receiver))

        proxy.settimeout(0.1)
        try:
            proxy.accept()[0].close()
            proxied = True
        except TimeoutError:
            proxied = False

    assert response.status == 200
    assert proxied is False
    [delivery] = receiver.deliveries
    assert delivery.headers["Authorization"] is None  # netrc would have sent Basic credentials


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_named_in_the_environment_does_not_make_a_server_trusted(receiver, monkeypatch, variable):
    monkeypatch.setenv(variable, str(receiver.ca_file))

    with pytest.raises(OutboundError) as caught:
        call(receiver, receiver_policy(receiver, ca_bundle=None))

    assert caught.value.code == "untrusted_server"
    assert receiver.deliveries == []


def test_cookies_are_not_kept_from_one_call_to_the_next(receiver, monkeypatch):
    resolve_to_loopback(monkeypatch, "backend.example.com")
    receiver.answer((200, b"{}", {"Set-Cookie": "session=from-the-first-call; Path=/"}))
    policy = receiver_policy(receiver, outbound_allow=("backend.example.com",))
    manager = outbound.pool(outbound.server_context(policy))
    url = f"https://backend.example.com:{receiver.port}/hello"

    first = outbound.request(manager, "GET", url, policy, tenant=False)
    outbound.request(manager, "GET", url, policy, tenant=False)

    assert "session=from-the-first-call" in first.headers["Set-Cookie"]
    assert [d.headers["Cookie"] for d in receiver.deliveries] == [None, None]


def resolve_to_loopback(monkeypatch, name: str) -> None:
    real = socket.getaddrinfo

    def lookup(host, *args, **kwargs):
        return real("127.0.0.1" if host == name else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)


class RawTls:
    """One HTTPS connection on 127.0.0.1 answered with ``parts``, sent ``gap`` seconds apart; then,
    with ``hold``, the connection stays open (up to 10 s) until the client leaves."""

    def __init__(self, context: ssl.SSLContext, parts: list[bytes], gap: float, hold: bool):
        self.parts, self.gap, self.hold = parts, gap, hold
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context = context
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        raw, _ = self.listener.accept()
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                tls.settimeout(10)
                while b"\r\n\r\n" not in tls.recv(65536):
                    pass
                for part in self.parts:
                    tls.sendall(part)
                    time.sleep(self.gap)
                if self.hold:
                    tls.recv(1)  # until the client closes (or 10 s)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=15)


@pytest.fixture
def raw_tls(tmp_path):
    from tests.receivers import server_context

    context = server_context(tmp_path)
    started = []

    def start(parts: list[bytes], gap: float = 0.0, hold: bool = False) -> RawTls:
        started.append(RawTls(context, parts, gap, hold))
        return started[-1]

    start.policy = HttpPolicy(ca_bundle=str(tmp_path / "receiver-ca.pem"), outbound_allow=("localhost",))
    yield start
    for server in started:
        server.close()


def test_a_redirect_is_refused_without_reading_its_body(raw_tls):
    # requests reads a redirect's whole body to prepare the next hop: here it never ends.
    head = b"HTTP/1.1 302 Found\r\nLocation: https://elsewhere.example/\r\nContent-Length: 50000000\r\n\r\n"
    server = raw_tls([head + b"x" * 1000], hold=True)
    policy = dataclasses.replace(raw_tls.policy, read_timeout=3)

    with pytest.raises(OutboundError) as caught:
        call(None, policy, f"https://localhost:{server.port}/hello")

    assert (caught.value.code, caught.value.status) == ("redirect", 302)
    assert "redirecting to https://elsewhere.example/: not followed" in caught.value.diagnosis


def test_a_body_trickling_in_past_the_read_timeout_is_cut_off(raw_tls):
    # Each piece arrives within the socket's read timeout; the whole body does not.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"
    server = raw_tls([head, *[b"x" * 10] * 4], gap=0.3)
    policy = dataclasses.replace(raw_tls.policy, read_timeout=0.5)

    with pytest.raises(OutboundError) as caught:
        call(None, policy, f"https://localhost:{server.port}/slow")

    assert caught.value.code == "timeout"
    assert "took longer than 0.5 s" in caught.value.diagnosis


def test_a_server_that_does_not_answer_in_time_is_a_timeout(receiver):
    receiver.delay = 1.5

    with pytest.raises(OutboundError) as caught:
        call(receiver, receiver_policy(receiver, read_timeout=0.3))

    assert caught.value.code == "timeout"
    assert "did not answer within 0.3 s" in caught.value.diagnosis


def test_a_pool_still_works_after_clear(receiver):
    policy = receiver_policy(receiver)
    manager = outbound.pool(outbound.server_context(policy))

    assert outbound.request(manager, "GET", receiver.url + "/a", policy, tenant=False).status == 200
    manager.clear()
    assert outbound.request(manager, "GET", receiver.url + "/b", policy, tenant=False).status == 200
