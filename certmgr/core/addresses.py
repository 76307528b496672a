"""Which network addresses an outbound call may reach: public ones, and what the allow-list names.

Owners set backend and notification URLs. Without this, "send test notice" and the health check
would reach this machine, the cloud metadata service (169.254.169.254) and the private network
around the portal, and carry a Bearer token there. An IPv6 address that embeds an IPv4 one
(IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4) is
judged by the IPv4 address it reaches.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_CLASSES = (
    ("unspecified", ("0.0.0.0/8", "::/128")),
    ("loopback", ("127.0.0.0/8", "::1/128")),
    ("link-local", ("169.254.0.0/16", "fe80::/10")),
    ("private", ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")),
    ("unique-local", ("fc00::/7", "fec0::/10")),  # fec0::/10: the deprecated site-local block
    ("carrier-grade NAT", ("100.64.0.0/10",)),
    ("multicast", ("224.0.0.0/4", "ff00::/8")),
)
_NETWORKS = tuple(
    (name, ipaddress.ip_network(network)) for name, networks in _CLASSES for network in networks
)
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST = re.compile(r"(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


def address_class(address: Address) -> str | None:
    """The kind of non-public address this is ("loopback", "private", …), or None for a public one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return address_class(embedded)
    for name, network in _NETWORKS:
        if address.version == network.version and address in network:
            return name
    # Documentation, benchmarking, protocol assignments, 240/4, Teredo, 100::/64 …
    if not address.is_global or address.is_reserved:
        return "reserved"
    return None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if address.version == 4:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if (address in _COMPATIBLE and int(address) > 1) or address in _NAT64:  # :: and ::1 are themselves
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class AddressRefused(Exception):
    """No address of the host may be called; the message says which class and how to allow it."""


def checked_address(host: str, port: int, allow: tuple[str, ...], *, allow_loopback: bool) -> str:
    """The address to connect to: ``host`` resolved once, its first address that may be called.

    The caller connects to exactly this address (no second lookup that could answer otherwise).
    socket.gaierror when the name does not resolve; AddressRefused before any connection.
    """
    found = [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, "no addresses")
    reasons = []
    for address in found:
        reason = refusal(address, allow, allow_loopback=allow_loopback)
        if reason is None:
            return address
        reasons.append(reason)
    said = reasons[0] if found[0] == host else f"it resolves to {found[0]}, {reasons[0]}"
    debug = "; loopback also in development (DJANGO_DEBUG=1)" if "loopback" in reasons[0] else ""
    raise AddressRefused(
        f"Refused {host}: {said}. Only public addresses are called unless CERTMGR_OUTBOUND_ALLOW "
        f"lists the host or its network{debug}."
    )


def refusal(address: str, allow: tuple[str, ...], *, allow_loopback: bool) -> str | None:
    """Why ``address`` may not be called ("a private address"), or None when it may.

    ``allow`` holds CERTMGR_OUTBOUND_ALLOW's entries; its networks and addresses count here (its
    host names are matched against the URL's host by the caller, before anything is resolved).
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    kind = address_class(parsed)
    embedded = _embedded_ipv4(parsed)
    reached = [a for a in (parsed, embedded) if a is not None]
    if kind is None or any(
        a in n for a in reached for n in _allowed_networks(allow) if a.version == n.version
    ):
        return None
    if kind == "loopback" and allow_loopback:
        return None
    inside = f" (IPv4 {embedded} in IPv6 form)" if embedded is not None else ""
    return f"{'an' if kind == 'unspecified' else 'a'} {kind} address{inside}"


@lru_cache(maxsize=32)
def _allowed_networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for entry in allow:
        try:
            networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
        except ValueError:
            continue  # a host name or *.domain
    return tuple(networks)


def clean_allow_list(entries: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """CERTMGR_OUTBOUND_ALLOW's entries, lower-cased; ValueError names the first that is none of
    a host name, ``*.domain``, an IP address or a CIDR network."""
    cleaned = []
    for entry in entries:
        entry = entry.strip().lower().rstrip(".")
        if entry:
            cleaned.append(_clean_entry(entry))
    return tuple(cleaned)


def _clean_entry(entry: str) -> str:
    address, _, prefix = entry.strip("[]").partition("/")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if len(entry) <= 253 and _HOST.fullmatch(entry):
            return entry
        raise ValueError(f"{entry!r} is not a host name, *.domain, IP address or CIDR network") from None
    if not prefix:
        return str(ipaddress.ip_address(address))
    try:
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=True))
    except ValueError as exc:
        raise ValueError(f"{entry!r} is not a network ({exc})") from None
