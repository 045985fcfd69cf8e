"""Membership of a client address in a list of CIDRs, precomputed at config load."""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetworkSet:
    """IPv4 and IPv6 networks kept apart; IPv4-mapped IPv6 clients (::ffff:a.b.c.d) count as IPv4."""

    __slots__ = ("v4", "v6")

    def __init__(self, cidrs: list[str]) -> None:
        nets = [ipaddress.ip_network(c, strict=True) for c in cidrs]
        self.v4 = [n for n in nets if n.version == 4]
        self.v6 = [n for n in nets if n.version == 6]

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def __contains__(self, ip: Address) -> bool:
        if ip.version == 4:
            return any(ip in n for n in self.v4)
        return any(ip in n for n in self.v6)


def parse_client(value: str) -> Address | None:
    """The client address as an ``ip_address``; None when it is not one (the plugin then refuses)."""
    try:
        ip = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
