"""Settings of the oauth2-introspection plugin."""

from __future__ import annotations

from typing import Literal

import attrs
import triogate
from triogate import fields


@attrs.define(frozen=True)
class IntrospectionConfig(fields.TokenLocation):
    """Where the token is comes from :class:`triogate.fields.TokenLocation` (header_names, cookie_names, ...)."""

    introspection_url: str = triogate.setting(
        description="the authorization server's RFC 7662 introspection endpoint", validator=fields.http_url)
    client_id: str | None = triogate.setting(None, description="client id the gateway authenticates with")
    client_secret: str | None = triogate.setting(None, description="its secret (use ${ENV})", secret=True)
    auth_method: Literal["client_secret_basic", "client_secret_post"] = triogate.setting(
        "client_secret_basic", description="how the client authenticates to the endpoint (RFC 6749 §2.3.1)")
    token_type_hint: str | None = triogate.setting("access_token", description="token_type_hint sent along; unset sends none")
    timeout: float = triogate.setting(
        3.0, description="seconds an introspection may take; beyond it the request fails closed with 503",
        validator=fields.duration)
    cache_ttl: float = triogate.setting(
        60.0, description="seconds an active result is reused (never past the token's exp); 0 disables",
        validator=fields.duration_or_zero)
    negative_cache_ttl: float = triogate.setting(
        5.0, description="seconds an inactive result is reused; 0 disables", validator=fields.duration_or_zero)
    cache_size: int = triogate.setting(
        10000, description="most cached results (least recently used are dropped)", validator=fields.at_least(1))
    scopes: list[str] = triogate.setting(factory=list, description="scopes the token must all have; 403 otherwise")
    audience: list[str] = triogate.setting(
        factory=list, description="accepted aud values (the token's aud, string or list, must contain one); empty: no check")
    client_ids: list[str] = triogate.setting(
        factory=list, description="accepted client_id values (the client the token was issued to); empty: any")
    issuer: str | None = triogate.setting(None, description="required iss, when the server returns one")
    max_token_bytes: int = triogate.setting(4096, description="longer tokens are rejected without a lookup")
    forward_headers: dict[str, str] = triogate.setting(
        factory=dict, description="introspection field (sub, client_id, scope, username, ...) -> upstream header; client-sent copies are dropped",
        validator=fields.header_name_values)
    consumer_claim: str = triogate.setting(
        "client_id", description='introspection field (client_id, sub, username, ...; dotted path) naming the consumer; "" disables consumer mapping')
    consumer_by: Literal["credential", "name", "custom_id"] = triogate.setting(
        "credential", description="what the field is matched against: [consumers.*.credentials.oauth2-introspection] <consumer_claim> = \"...\" (credential), the consumer's name, or its custom_id")
    require_consumer: bool = triogate.setting(
        False, description="an active token that maps to no consumer is a 403 (false: it passes with a principal without consumer)")
    consumer_headers: bool = triogate.setting(
        True, description="tell the upstream x-consumer-username / x-consumer-custom-id / x-anonymous-consumer (client copies are always dropped)")
    anonymous: str | None = triogate.setting(
        None, description="consumer used when no token is presented (instead of 401); must exist in [consumers]")
    realm: str = triogate.setting(
        "triogate", description="realm in the WWW-Authenticate challenge", validator=fields.realm)

    def __attrs_post_init__(self) -> None:
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("client_id, client_secret: set both or neither")
        if self.require_consumer and not self.consumer_claim:
            raise ValueError('require_consumer: needs consumer_claim (it is "")')
