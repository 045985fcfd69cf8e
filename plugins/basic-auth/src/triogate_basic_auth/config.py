"""Settings of the basic-auth plugin."""

from __future__ import annotations

import attrs
import triogate


@attrs.define(frozen=True)
class BasicAuthConfig:
    realm: str = triogate.setting("triogate", description="realm in the WWW-Authenticate challenge")
    strip_credential: bool = triogate.setting(True, description="remove the Authorization header before forwarding")
    anonymous: str | None = triogate.setting(
        None, description="consumer used when no credentials are presented (instead of 401); must exist in [consumers]")
    consumer_headers: bool = triogate.setting(
        True, description="tell the upstream x-consumer-username / x-consumer-custom-id / x-anonymous-consumer (client copies are always dropped)")
    cache_ttl: float = triogate.setting(
        60.0, description="seconds a verified username/password pair skips the slow hash check (keyed by an HMAC, never stored); 0 disables")
    cache_size: int = triogate.setting(10000, description="most remembered verified pairs")
    max_concurrent_checks: int = triogate.setting(
        4, description="most password hash checks running at once (each takes a thread and tens of ms of CPU)")

    def __attrs_post_init__(self) -> None:
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm: must not contain quotes or backslashes")
        if self.cache_ttl < 0:
            raise ValueError("cache_ttl: expected 0 or more seconds")
        if self.cache_size < 1:
            raise ValueError("cache_size: expected at least 1")
        if self.max_concurrent_checks < 1:
            raise ValueError("max_concurrent_checks: expected at least 1")
