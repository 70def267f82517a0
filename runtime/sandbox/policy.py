"""Which destinations a sandboxed process may reach through the proxy.

Pattern semantics follow Perstack's Squid rules (§12.1): ``example.com`` matches exactly that
host; ``*.example.com`` matches every subdomain and ``example.com`` itself (Squid's
``.example.com``). Matching is case-insensitive and ignores one trailing dot.

Addresses are checked after resolution: a name on the list that resolves to a loopback, private,
link-local (the cloud metadata service at 169.254.169.254), shared, multicast or otherwise
non-global address is refused, so a DNS answer cannot turn an allowed name into a way to reach
the host, the LAN or the metadata service.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["AllowList", "ProxyDecision", "is_ip_literal", "is_public_address", "normalize_host"]

_HOST_RE = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


@dataclass(frozen=True)
class ProxyDecision:
    """One allow or block decision of the proxy; the caller turns it into a ``proxyAccess`` event.

    Attributes:
        action: ``"allowed"`` or ``"blocked"``.
        domain: The host the sandboxed process asked for, as it asked (lower-cased).
        port: The destination port.
        reason: Why it was blocked (None when allowed).
    """

    action: Literal["allowed", "blocked"]
    domain: str
    port: int
    reason: str | None = None


def normalize_host(host: str) -> str:
    """Lower-case, strip IPv6 brackets and one trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    return host


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4 or IPv6 address rather than a name."""
    try:
        ipaddress.ip_address(normalize_host(host))
    except ValueError:
        return False
    return True


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address; False for anything local or special.

    IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) are judged by the IPv4 address they carry.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class AllowList:
    """A set of domain patterns (``example.com``, ``*.example.com``).

    Args:
        patterns: The skill's ``allowedDomains``.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        suffixes: set[str] = set()
        for raw in patterns:
            pattern = normalize_host(raw)
            if not pattern:
                continue
            if pattern.startswith("*."):
                suffixes.add(pattern[2:])
            else:
                exact.add(pattern)
        self._exact = frozenset(exact)
        self._suffixes = tuple(sorted(suffixes))

    def __bool__(self) -> bool:
        return bool(self._exact or self._suffixes)

    @property
    def patterns(self) -> list[str]:
        """The normalized patterns, wildcards written ``*.domain``."""
        return sorted(self._exact) + [f"*.{suffix}" for suffix in self._suffixes]

    def allows(self, host: str) -> bool:
        """Whether ``host`` (a name or, when listed literally, an address) is on the list."""
        host = normalize_host(host)
        if host in self._exact:
            return True
        if not _HOST_RE.fullmatch(host):
            return False
        return any(host == suffix or host.endswith("." + suffix) for suffix in self._suffixes)
