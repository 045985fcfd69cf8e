"""Settings of the basic-auth plugin."""

from __future__ import annotations

import attrs
import triogate
from triogate import fields


@attrs.define(frozen=True)
class BasicAuthConfig:
    realm: str = triogate.setting(
        "triogate", description="realm in the WWW-Authenticate challenge", validator=fields.realm)
    strip_credential: bool = triogate.setting(True, description="remove the Authorization header before forwarding")
    anonymous: str | None = triogate.setting(
        None, description="consumer used when no credentials are presented (instead of 401); must exist in [consumers]")
    consumer_headers: bool = triogate.setting(
        True, description="tell the upstream x-consumer-username / x-consumer-custom-id / x-anonymous-consumer (client copies are always dropped)")
    cache_ttl: float = triogate.setting(
        60.0, description="seconds a verified username/password pair skips the slow hash check (keyed by an HMAC, never stored); 0 disables",
        validator=fields.duration_or_zero)
    cache_size: int = triogate.setting(
        10000, description="most remembered verified pairs", validator=fields.at_least(1))
    max_concurrent_checks: int = triogate.setting(
        4, description="most password hash checks running at once (each takes a thread and tens of ms of CPU)",
        validator=fields.at_least(1))
