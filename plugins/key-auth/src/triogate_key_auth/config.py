"""Settings of the key-auth plugin."""

from __future__ import annotations

import attrs
import triogate
from triogate import fields


@attrs.define(frozen=True)
class KeyAuthConfig:
    key_names: list[str] = triogate.setting(
        factory=lambda: ["apikey", "x-api-key"], description="header and/or query parameter names that carry the key",
        validator=fields.each(fields.is_header_name, "a header/parameter name"))
    key_in_header: bool = triogate.setting(True, description="look for the key in the request headers")
    key_in_query: bool = triogate.setting(
        False, description="look for the key in the query string (after the headers; URLs end up in logs)")
    strip_credential: bool = triogate.setting(True, description="remove the key from the request before forwarding")
    anonymous: str | None = triogate.setting(
        None, description="consumer used when no key is presented (instead of 401); must exist in [consumers]")
    consumer_headers: bool = triogate.setting(
        True, description="tell the upstream x-consumer-username / x-consumer-custom-id / x-anonymous-consumer (client copies are always dropped)")
    realm: str = triogate.setting(
        "triogate", description="realm in the WWW-Authenticate challenge", validator=fields.realm)

    def __attrs_post_init__(self) -> None:
        if not self.key_names:
            raise ValueError("key_names: expected at least one name")
        if not (self.key_in_header or self.key_in_query):
            raise ValueError("key_in_header, key_in_query: at least one must be true")
