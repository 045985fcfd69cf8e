"""Settings of the ip-restriction plugin."""

from __future__ import annotations

import attrs
import triogate
from triogate import fields


@attrs.define(frozen=True)
class IpRestrictionConfig:
    allow: list[str] = triogate.setting(
        factory=list, description="client addresses or CIDRs (IPv4/IPv6) let through; when set, everyone else gets 403",
        validator=fields.cidrs(strict=True))
    deny: list[str] = triogate.setting(
        factory=list, description="client addresses or CIDRs refused with 403 (checked first: deny wins over allow)",
        validator=fields.cidrs(strict=True))
    status: int = triogate.setting(
        403, description="status of the refusal (a problem+json answer)",
        validator=fields.check(lambda s: 400 <= s <= 499, "a 4xx status"))
    message: str = triogate.setting("your IP address is not allowed", description="detail of the refusal")

    def __attrs_post_init__(self) -> None:
        if not self.allow and not self.deny:
            raise ValueError("allow/deny: give at least one address or CIDR in allow or deny")
