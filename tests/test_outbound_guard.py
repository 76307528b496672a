"""The connect-time address guard: a backend or notification URL reaches public addresses only,
unless CERTMGR_OUTBOUND_ALLOW names the host or its network (loopback also in development).

DNS is a test resolver (socket.getaddrinfo replaced): names resolve to the addresses a test gives
them. Every call that gets through goes to a real HTTPS receiver on 127.0.0.1; every refused call
is shown to open no connection at all.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from certmgr.core import outbound
from certmgr.core.addresses import address_class, clean_allow_list, refusal
from certmgr.core.outbound import HttpPolicy, OutboundError

NAME = "backend.example.com"


# --- address classes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "unique-local"),
        ("fc00::1", "unique-local"),
        ("fec0::1", "unique-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, nothing binds
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),  # documentation
        ("198.18.0.1", "reserved"),  # benchmarking
        ("2001:db8::1", "reserved"),
        ("2001::1", "reserved"),  # Teredo
        ("64:ff9b:1::1", "reserved"),  # local-use NAT64
        # IPv6 forms of IPv4 addresses are judged by the IPv4 address they reach.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:a9fe:a9fe", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("::10.0.0.1", "private"),  # IPv4-compatible
        ("::127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:c0a8:0101::1", "private"),  # 6to4 of 192.168.1.1
    ],
)
def test_non_public_addresses_are_named_by_their_class(address, kind):
    assert address_class(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "52.29.1.2", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_have_no_class(address):
    assert address_class(ipaddress.ip_address(address)) is None
    assert refusal(address, (), allow_loopback=False) is None


def test_refusal_says_which_class_and_the_ipv4_address_inside():
    assert refusal("10.0.0.1", (), allow_loopback=True) == "a private address"
    assert refusal("::ffff:a9fe:a9fe", (), allow_loopback=False) == (
        "a link-local address (IPv4 169.254.169.254 in IPv6 form)"
    )


def test_the_allow_list_opens_its_networks_and_debug_opens_loopback_only():
    assert refusal("10.1.2.3", ("10.0.0.0/8",), allow_loopback=False) is None
    assert refusal("::ffff:10.1.2.3", ("10.0.0.0/8",), allow_loopback=False) is None
    assert refusal("10.1.2.3", ("10.1.2.3",), allow_loopback=False) is None
    assert refusal("10.1.2.4", ("10.1.2.3", "*.internal", "backend"), allow_loopback=False) is not None
    assert refusal("127.0.0.1", (), allow_loopback=True) is None
    assert refusal("::1", (), allow_loopback=True) is None
    assert refusal("::ffff:127.0.0.1", (), allow_loopback=True) is None
    for address in ("10.0.0.1", "169.254.169.254", "192.168.0.1", "fd00::1", "0.0.0.0"):  # noqa: S104
        assert refusal(address, (), allow_loopback=True) is not None, address


def test_clean_allow_list_accepts_hosts_wildcards_addresses_and_networks():
    entries = [
        " Backend.Internal ",
        "*.apps.internal",
        "10.0.0.0/8",
        "fd00::/8",
        "[::1]",
        "127.0.0.1",
        "",
        "x.",
    ]

    assert clean_allow_list(entries) == (
        "backend.internal",
        "*.apps.internal",
        "10.0.0.0/8",
        "fd00::/8",
        "::1",
        "127.0.0.1",
        "x",
    )


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("10.0.0.1/8", ("not a network", "host bits")),
        ("10.0.0.0/33", ("not a network",)),
        ("*", ("not a host name",)),
        ("*.", ("not a host name",)),
        ("a..b", ("not a host name",)),
        ("https://backend.internal", ("not a host name",)),
        ("back end", ("not a host name",)),
        ("*.*.internal", ("not a host name",)),
    ],
)
def test_clean_allow_list_names_a_bad_entry(entry, words):
    with pytest.raises(ValueError) as caught:
        clean_allow_list(["ok.example", entry])

    for word in words:
        assert word in str(caught.value)


# --- at connect time, against a real receiver on 127.0.0.1 -------------------------------------------


@pytest.fixture
def receiver(tmp_path):
    """An HTTPS receiver on 127.0.0.1; its certificate names backend.example.com."""
    from tests.receivers import HttpsReceiver

    with HttpsReceiver(tmp_path, sans=(NAME, "other.example.com")) as running:
        yield running


def policy_for(receiver, **changes) -> HttpPolicy:
    return HttpPolicy(
        **{"ca_bundle": str(receiver.ca_file), "connect_timeout": 2, "read_timeout": 2, **changes}
    )


def get(receiver, policy: HttpPolicy, host: str = NAME, *, tenant: bool = False) -> outbound.Response:
    manager = outbound.pool(outbound.server_context(policy))
    url = f"https://{host}:{receiver.port}/hello"
    return outbound.request(manager, "GET", url, policy, tenant=tenant)


def refused(receiver, policy: HttpPolicy, host: str = NAME) -> OutboundError:
    with pytest.raises(OutboundError) as caught:
        get(receiver, policy, host)
    return caught.value


REFUSED = [
    ("10.1.2.3", "a private address"),
    ("172.16.5.4", "a private address"),
    ("192.168.0.10", "a private address"),
    ("169.254.169.254", "a link-local address"),
    ("100.64.0.1", "a carrier-grade NAT address"),
    ("0.0.0.0", "an unspecified address"),  # noqa: S104 - connecting there reaches this machine
    ("224.0.0.1", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("127.0.0.1", "a loopback address"),
    ("::1", "a loopback address"),
    ("fe80::1", "a link-local address"),
    ("fd00::1", "a unique-local address"),
    ("::ffff:127.0.0.1", "a loopback address (IPv4 127.0.0.1 in IPv6 form)"),
    ("::ffff:169.254.169.254", "a link-local address (IPv4 169.254.169.254 in IPv6 form)"),
    ("64:ff9b::a00:1", "a private address (IPv4 10.0.0.1 in IPv6 form)"),
]


@pytest.mark.parametrize(("address", "said"), REFUSED, ids=[a for a, _ in REFUSED])
def test_a_name_resolving_to_a_non_public_address_is_refused_before_connecting(
    receiver, dns, connects, address, said
):
    dns[NAME] = [address]

    error = refused(receiver, policy_for(receiver))

    assert error.code == "address_not_allowed"
    assert f"Refused {NAME}: it resolves to {address}, {said}." in error.diagnosis
    assert "CERTMGR_OUTBOUND_ALLOW" in error.diagnosis
    assert connects == [] and receiver.deliveries == []


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::ffff:127.0.0.1]", "10.0.0.1", "169.254.169.254", "localhost"]
)
def test_an_address_or_local_name_in_the_url_itself_is_refused_too(receiver, connects, host):
    error = refused(receiver, policy_for(receiver), host)

    assert error.code == "address_not_allowed"
    assert connects == [] and receiver.deliveries == []


def test_a_refused_call_opens_no_connection_to_a_loopback_listener(dns):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        dns[NAME] = ["127.0.0.1"]
        policy = HttpPolicy(connect_timeout=0.5, read_timeout=0.5)
        with pytest.raises(OutboundError) as caught:
            url = f"https://{NAME}:{listener.getsockname()[1]}/"
            outbound.request(outbound.pool(outbound.server_context(policy)), "GET", url, policy, tenant=False)
        listener.settimeout(0.2)
        accepted = 0
        try:
            listener.accept()[0].close()
            accepted += 1
        except TimeoutError:
            pass

    assert caught.value.code == "address_not_allowed"
    assert accepted == 0


def test_the_allow_list_lets_a_host_through_by_name(receiver, dns):
    dns[NAME] = ["127.0.0.1"]

    response = get(receiver, policy_for(receiver, outbound_allow=("*.example.com",)))

    assert response.status == 200
    assert receiver.deliveries[0].headers["Host"] == f"{NAME}:{receiver.port}"


def test_the_allow_list_lets_an_address_through_by_its_network(receiver, dns, connects):
    dns[NAME] = ["127.0.0.1"]

    response = get(receiver, policy_for(receiver, outbound_allow=("127.0.0.0/8",)))

    assert response.status == 200
    assert connects == [("127.0.0.1", receiver.port)]
    # TLS and HTTP still speak to the name: certificate checked for it, Host header for it.
    assert receiver.deliveries[0].headers["Host"] == f"{NAME}:{receiver.port}"
    assert dns.lookups == [NAME]


def test_a_network_outside_the_allow_list_stays_refused(receiver, dns, connects):
    dns[NAME] = ["127.0.0.1"]

    error = refused(
        receiver, policy_for(receiver, outbound_allow=("127.0.0.2/32", "10.0.0.0/8", "*.example.org"))
    )

    assert error.code == "address_not_allowed"
    assert connects == []


def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(receiver, dns, connects):
    # DNS rebinding: the first answer is allowed; a second lookup would get 127.0.0.2, where
    # nothing listens. The call works only if it connects to the address that was checked.
    dns.answers[NAME] = [["127.0.0.1"], ["127.0.0.2"]]

    response = get(receiver, policy_for(receiver, outbound_allow=("127.0.0.1",)))

    assert response.status == 200
    assert dns.lookups == [NAME]
    assert connects == [("127.0.0.1", receiver.port)]


def test_of_several_addresses_only_an_allowed_one_is_connected_to(receiver, dns, connects):
    dns[NAME] = ["10.0.0.1", "169.254.169.254", "127.0.0.1"]

    response = get(receiver, policy_for(receiver, outbound_allow=("127.0.0.0/8",)))

    assert response.status == 200
    assert connects == [("127.0.0.1", receiver.port)]


def test_a_checked_address_still_needs_a_certificate_for_the_name(receiver, dns):
    dns["wrong.example.net"] = ["127.0.0.1"]

    error = refused(receiver, policy_for(receiver, outbound_allow=("127.0.0.0/8",)), "wrong.example.net")

    assert error.code == "untrusted_server"
    assert "wrong.example.net" in error.diagnosis
    assert receiver.deliveries == []


def test_in_development_loopback_is_allowed_and_private_networks_are_not(receiver, dns, connects):
    debug = policy_for(receiver, allow_loopback=True)
    dns[NAME] = ["127.0.0.1"]
    assert get(receiver, debug).status == 200

    for address in ("10.0.0.1", "192.168.1.1", "169.254.169.254", "fd00::1", "0.0.0.0"):  # noqa: S104
        dns[NAME] = [address]
        assert refused(receiver, debug).code == "address_not_allowed", address

    assert connects == [("127.0.0.1", receiver.port)]


def test_a_tenant_host_is_no_allowance_for_other_calls(receiver, dns):
    dns[NAME] = ["127.0.0.1"]
    policy = policy_for(receiver, tenant_hosts=(NAME,))

    assert get(receiver, policy, tenant=True).status == 200  # the tenant allow-list decides tenant calls
    with pytest.raises(OutboundError) as caught:
        get(receiver, policy, tenant=False)

    assert caught.value.code == "address_not_allowed"
    assert len(receiver.deliveries) == 1


def test_a_url_with_a_user_name_or_password_is_refused_without_quoting_it():
    for url in ("https://user:pa55word@backend.example.com/", "https://user@backend.example.com/"):
        with pytest.raises(OutboundError) as caught:
            outbound.check_url(url, HttpPolicy(outbound_allow=("backend.example.com",)), tenant=False)

        assert caught.value.code == "bad_url"
        assert "backend.example.com" in caught.value.diagnosis
        assert "pa55word" not in caught.value.diagnosis and "user@" not in caught.value.diagnosis
