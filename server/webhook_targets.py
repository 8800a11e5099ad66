"""Where a webhook may point: the URL's syntax and the addresses a delivery may connect to.

* A URL is ``http://`` or ``https://``, has a host, carries no user name or password, and holds
  printable ASCII only (no space, no control character: a name in another script is written in
  its ``xn--`` form, anything else percent-encoded), at most ``MAX_URL`` characters.
* An address is allowed when it is a public unicast one: not loopback, private, link-local,
  multicast, unspecified, shared (``100.64.0.0/10``), documentation, benchmarking or otherwise
  reserved, for IPv4 and IPv6 alike. An IPv6 address that carries an IPv4 one (mapped
  ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4, Teredo) is judged by the IPv4 address too.
* The operator's allow-list (``PATROLSYNC_WEBHOOK_ALLOW_HOSTS``: host names, addresses and
  networks, comma-separated) lifts the address rule for what it names. ``localhost`` and names
  under ``.localhost`` are loopback by definition and refused unless allow-listed.

Pure functions of their arguments: no name is resolved here.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL = 2000

_DENIED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-_")


class UrlRefused(ValueError):
    """The URL breaks a rule of this module; the message names the rule."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    """Lower case, without brackets or a final dot."""
    port: int
    literal: Address | None
    """The address when the host is written as one (also ``127.1``-style IPv4 forms)."""
    target: str
    """The path and query to request (``/`` at least)."""

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


@dataclass(frozen=True, slots=True)
class AllowList:
    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @staticmethod
    @functools.cache
    def parse(text: str) -> AllowList:
        """``"hooks.internal, 127.0.0.1, 10.1.0.0/16"``; raises ``ValueError`` naming a bad
        entry."""
        names: set[str] = set()
        networks: list[Network] = []
        for raw in text.split(","):
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or not all(c.isalnum() or c in "-._" for c in entry):
                raise ValueError(f"not a host name, address or network: {raw.strip()!r}")
            names.add(entry)
        return AllowList(frozenset(names), tuple(networks))

    def allows_name(self, host: str) -> bool:
        return host in self.names

    def allows_address(self, address: Address) -> bool:
        return any(address in n for n in self.networks if n.version == address.version) or any(
            inner in n for inner in _embedded(address) for n in self.networks if n.version == 4
        )


NOTHING = AllowList()
"""The empty allow-list: the address rule holds everywhere."""


def _embedded(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, NAT64, 6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: Address) -> bool:
    """True for a public unicast address (the rule of the module docstring)."""
    for one in (address, *_embedded(address)):
        if any(one in n for n in _DENIED if n.version == one.version):
            return False
        if not one.is_global or one.is_multicast or one.is_reserved:
            return False
    return True


def address_allowed(address: Address, allow: AllowList) -> bool:
    return allow.allows_address(address) or is_public(address)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host):
        try:  # 127.1, 2130706433, 0x7f.0.0.1: what the C resolver reads as IPv4
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def parse(url: str) -> Target:
    """The URL's target, or ``UrlRefused`` naming the first rule it breaks."""
    if len(url) > MAX_URL:
        raise UrlRefused(f"url: longer than {MAX_URL} characters")
    if any(not "!" <= c <= "~" for c in url):
        raise UrlRefused(
            "url: only printable ASCII, no spaces or control characters "
            "(percent-encode the rest; write host names in their xn-- form)"
        )
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("url: not a valid URL (bad host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("url: the scheme must be http or https")
    if "@" in parts.netloc:
        raise UrlRefused("url: must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("url: a host is required")
    bracketed = "[" in parts.netloc
    if bracketed:
        try:
            valid = ipaddress.ip_address(host).version == 6
        except ValueError:  # a zone (fe80::1%eth0) or no address at all
            valid = False
    else:
        valid = set(host) <= _HOST_CHARS
    if not valid or port == 0:
        raise UrlRefused("url: not a valid URL (bad host or port)")
    return Target(
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        literal=_literal(host),
        target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    )


def check_registration(url: str, allow: AllowList) -> Target:
    """What registration checks without resolving a name: the syntax, then a host written as an
    address (or ``localhost``) against the address rule."""
    target = parse(url)
    if allow.allows_name(target.host):
        return target
    if target.literal is not None and not address_allowed(target.literal, allow):
        raise UrlRefused("url: the address is not allowed (loopback, private or reserved)")
    local_name = target.host == "localhost" or target.host.endswith(".localhost")
    if target.literal is None and local_name:
        raise UrlRefused("url: the address is not allowed (loopback, private or reserved)")
    return target
