"""Settings of the key-auth plugin."""

from __future__ import annotations

import re

import attrs
import triogate

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@attrs.define(frozen=True)
class KeyAuthConfig:
    key_names: list[str] = triogate.setting(
        factory=lambda: ["apikey", "x-api-key"], description="header and/or query parameter names that carry the key")
    key_in_header: bool = triogate.setting(True, description="look for the key in the request headers")
    key_in_query: bool = triogate.setting(
        False, description="look for the key in the query string (after the headers; URLs end up in logs)")
    strip_credential: bool = triogate.setting(True, description="remove the key from the request before forwarding")
    anonymous: str | None = triogate.setting(
        None, description="consumer used when no key is presented (instead of 401); must exist in [consumers]")
    consumer_headers: bool = triogate.setting(
        True, description="tell the upstream x-consumer-username / x-consumer-custom-id / x-anonymous-consumer (client copies are always dropped)")
    realm: str = triogate.setting("triogate", description="realm in the WWW-Authenticate challenge")

    def __attrs_post_init__(self) -> None:
        if not self.key_names:
            raise ValueError("key_names: expected at least one name")
        if not (self.key_in_header or self.key_in_query):
            raise ValueError("key_in_header, key_in_query: at least one must be true")
        for n in self.key_names:
            if not _HEADER_NAME.fullmatch(n):
                raise ValueError(f"key_names: expected a header/parameter name, got {n!r}")
        if '"' in self.realm or "\\" in self.realm:
            raise ValueError("realm: must not contain quotes or backslashes")
