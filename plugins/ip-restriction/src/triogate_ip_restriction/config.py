"""Settings of the ip-restriction plugin."""

from __future__ import annotations

import ipaddress

import attrs
import triogate


@attrs.define(frozen=True)
class IpRestrictionConfig:
    allow: list[str] = triogate.setting(
        factory=list, description="client addresses or CIDRs (IPv4/IPv6) let through; when set, everyone else gets 403")
    deny: list[str] = triogate.setting(
        factory=list, description="client addresses or CIDRs refused with 403 (checked first: deny wins over allow)")
    status: int = triogate.setting(403, description="status of the refusal (a problem+json answer)")
    message: str = triogate.setting("your IP address is not allowed", description="detail of the refusal")

    def __attrs_post_init__(self) -> None:
        if not self.allow and not self.deny:
            raise ValueError("allow/deny: give at least one address or CIDR in allow or deny")
        for field in ("allow", "deny"):
            for i, cidr in enumerate(getattr(self, field)):
                try:
                    ipaddress.ip_network(cidr, strict=True)
                except ValueError as exc:
                    raise ValueError(f"{field}[{i}]: expected an IP address or CIDR, got {cidr!r} ({exc})") from None
        if not 400 <= self.status <= 499:
            raise ValueError(f"status: expected a 4xx status, got {self.status}")
